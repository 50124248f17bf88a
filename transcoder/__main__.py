import functools

from shared.worker import run_worker, start
from transcoder.handler import subscriptions
from transcoder.settings import TranscoderSettings


async def run(settings: TranscoderSettings) -> None:
    await run_worker("transcoder", settings, functools.partial(subscriptions, settings))


if __name__ == "__main__":
    start("transcoder", TranscoderSettings, run)
