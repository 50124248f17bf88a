import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from shared.worker import start


async def run(settings: GatewaySettings) -> None:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
    )
    await uvicorn.Server(config).serve()


if __name__ == "__main__":
    start("gateway", GatewaySettings, run)
