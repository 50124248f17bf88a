import functools

from janitor.handler import subscriptions
from janitor.settings import JanitorSettings
from shared.worker import run_worker, start


async def run(settings: JanitorSettings) -> None:
    await run_worker("janitor", settings, functools.partial(subscriptions, settings))


if __name__ == "__main__":
    start("janitor", JanitorSettings, run)
