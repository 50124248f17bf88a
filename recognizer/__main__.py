import functools

from recognizer.handler import subscriptions
from recognizer.settings import RecognizerSettings
from shared.worker import run_worker, start


async def run(settings: RecognizerSettings) -> None:
    await run_worker("recognizer", settings, functools.partial(subscriptions, settings))


if __name__ == "__main__":
    start("recognizer", RecognizerSettings, run)
