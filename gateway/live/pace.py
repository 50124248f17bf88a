"""How much audio a live session may send: a client streams at most `pace` times real time, and
may run `burst` seconds ahead of that. Counted on the wall clock as the gateway reads, so a flood
of audio (cheap to send: silence compresses well) costs the gateway no more than a fast client.
"""

import time
from collections.abc import Callable


class AudioPace:
    """A session's allowance of audio, in seconds: it refills at `pace` seconds per second up to
    `burst`, and each message's audio is taken from it."""

    def __init__(
        self, burst: float, pace: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._burst = burst
        self._pace = pace
        self._clock = clock
        self._allowance = burst
        self._counted_at = clock()

    def allowance(self) -> float:
        """The seconds of audio the session may send now."""
        now = self._clock()
        refilled = self._allowance + (now - self._counted_at) * self._pace
        # What was credited beyond the burst (held_back) is kept, but the clock adds no more.
        self._allowance = max(self._allowance, min(refilled, self._burst))
        self._counted_at = now
        return self._allowance

    def take(self, seconds: float) -> None:
        self.allowance()
        self._allowance -= seconds

    def until_whole(self) -> float:
        """Seconds until the allowance is the whole burst again."""
        return max(0.0, (self._burst - self.allowance()) / self._pace)

    def held_back(self, seconds: float) -> None:
        """The gateway stopped reading the session for `seconds` (back-pressure): a client kept
        waiting may catch up on what it could have sent meanwhile, up to twice the burst: waits
        it brings on itself must not earn it a flood."""
        self._allowance = min(self.allowance() + seconds * self._pace, 2 * self._burst)
