"""Logging for every service: text for people (`make run`), or one JSON object a line for log
collectors (`STT_LOG_FORMAT=json`), carrying the service, the job and the event being handled,
and any durations a message reports."""

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# The job and event a worker is handling, set by the broker around each message.
current_job: ContextVar[str | None] = ContextVar("current_job", default=None)
current_event: ContextVar[str | None] = ContextVar("current_event", default=None)

# Fields a log call may add with `extra=`, copied into the JSON line.
EXTRA_FIELDS = ("duration_seconds", "audio_seconds", "engine")


class JsonLines(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        job_id = getattr(record, "job_id", None) or current_job.get()
        if job_id is not None:
            line["job_id"] = job_id
        if (event := current_event.get()) is not None:
            line["event"] = event
        line.update({name: getattr(record, name) for name in EXTRA_FIELDS if hasattr(record, name)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(service: str, level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonLines(service))
    else:
        text = f"%(asctime)s {service:<10} %(levelname)-7s %(name)s: %(message)s"
        handler.setFormatter(logging.Formatter(text))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # Keep the AMQP wire library's routine messages out of service logs; its warnings still show.
    logging.getLogger("aiormq").setLevel(logging.WARNING)
