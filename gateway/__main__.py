import signal
from types import FrameType

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from shared.worker import start


def _already_drained(_signum: int, _frame: FrameType | None) -> None:
    """uvicorn drains on SIGTERM/SIGINT, then raises the signal again for the previous handler;
    this handler lets the process end with status 0 after that clean shutdown."""


async def run(settings: GatewaySettings) -> None:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _already_drained)
    await uvicorn.Server(config).serve()


if __name__ == "__main__":
    start("gateway", GatewaySettings, run)
