import logging


def configure_logging(service: str, level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s {service:<10} %(levelname)-7s %(name)s: %(message)s",
    )
    # Keep the AMQP wire library's routine messages out of service logs; its warnings still show.
    logging.getLogger("aiormq").setLevel(logging.WARNING)
