"""Prometheus metrics of every service, in one place so their names stay consistent.

The gateway serves them at `/metrics`; each worker on `STT_METRICS_PORT` (off when 0). A
recognizer's slot processes measure nothing themselves: their parent times each request it
sends them, so one endpoint per recognizer covers all its slots.
"""

import logging
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# Seconds, from a fast upload to a 3-hour recording's queue wait.
SECONDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

KEY_LABEL = "key"
jobs_accepted = Counter(
    "stt_jobs_accepted",
    "Jobs accepted by the gateway, by engine and by the name of the API key (empty without keys;"
    " summed over keys for a scrape without an admin key).",
    ["engine", KEY_LABEL],
)
jobs_finished = Counter(
    "stt_jobs_finished",
    "Jobs that ended, as the gateway saw them announced (at least once).",
    ["engine", "status", "code"],
)
upload_seconds = Histogram(
    "stt_upload_accept_seconds", "From the upload's first byte to the 202.", buckets=SECONDS
)
queue_wait_seconds = Histogram(
    "stt_queue_wait_seconds",
    "How long a message waited in its queue before a worker took it (for the recognizers,"
    " which take work only with a slot free: until a slot started on it).",
    ["queue"],
    buckets=SECONDS,
)
conversion_seconds = Histogram(
    "stt_conversion_seconds", "Converting and cutting one upload.", buckets=SECONDS
)
recognition_ratio = Histogram(
    "stt_recognition_seconds_per_audio_second",
    "Engine time per second of audio, per piece (below 1 is faster than real time).",
    ["engine"],
    buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)
audio_recognized = Counter(
    "stt_audio_recognized_seconds", "Seconds of audio recognized.", ["engine"]
)
speech_recovered = Counter(
    "stt_speech_recovered_seconds",
    "Seconds of speech the first decoding left without words and a second decoding recovered.",
    ["engine"],
)
retries = Counter(
    "stt_retries", "Messages sent to a retry queue after a transient failure.", ["queue"]
)
parked = Counter("stt_parked_messages", "Parked messages the janitor handled.", ["queue"])
slots = Gauge("stt_slots", "A recognizer's engine slots.", ["state"])
queue_depth = Gauge(
    "stt_queue_messages", "Messages waiting in a work queue (read when scraped).", ["queue"]
)


class WithoutKeyNames(Collector):
    """The registry's metrics with the API keys' names summed away: who uses the service is
    not for everyone who can reach /metrics."""

    def __init__(self, registry: Collector = REGISTRY) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            summed: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
            for sample in family.samples:
                labels = tuple(sorted(sample.labels.items()))
                if KEY_LABEL in sample.labels:
                    labels = tuple(item for item in labels if item[0] != KEY_LABEL)
                kept = summed.get((sample.name, labels))
                if sample.name.endswith("_created"):  # when the first of them was created
                    summed[(sample.name, labels)] = min(sample.value, kept or sample.value)
                else:
                    summed[(sample.name, labels)] = sample.value + (kept or 0.0)
            family.samples = [
                family.samples[0]._replace(name=name, labels=dict(labels), value=value)
                for (name, labels), value in summed.items()
            ]
            yield family
