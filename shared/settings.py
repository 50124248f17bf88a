"""Settings shared by every service, read once from the environment (prefix ``STT_``) or ``.env``."""

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AmqpDsn,
    BeforeValidator,
    Field,
    MongoDsn,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.engines import ENGINE_SPECS, OFFLINE_ENGINES, WHISPER_BASE, supported_languages


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def location(url: AmqpDsn | MongoDsn) -> str:
    """Where a URL points, for logs and messages: its hosts and path, never its user name,
    password or options."""
    if isinstance(url, MongoDsn):
        hosts = [(host["host"], host["port"]) for host in url.hosts()]
    else:
        hosts = [(url.host, url.port)]
    shown = ",".join(f"{host}:{port}" if port else str(host) for host, port in hosts)
    return shown + (url.path or "").rstrip("/")


StoreKind = Literal["folder", "gridfs"]

# Five replicas survive two lost nodes; more only slow every write down.
MAX_DEFAULT_REPLICAS = 5

# A list setting, written in the environment as one comma-separated variable: "a, b".
CommaSeparated = (NoDecode, BeforeValidator(_split_commas))


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STT_", env_file=".env", extra="ignore", frozen=True
    )

    broker_url: AmqpDsn = Field(
        AmqpDsn("amqp://guest:guest@127.0.0.1:5672/"),
        description="RabbitMQ. Logs and messages name only its host, never the password.",
    )
    broker_urls: Annotated[tuple[AmqpDsn, ...], *CommaSeparated] = Field(
        (),
        description="Comma-separated nodes of one RabbitMQ cluster; when set, it replaces"
        " STT_BROKER_URL. A service connects to the first that answers and moves to the next"
        " when its node goes away.",
    )
    quorum_group_size: int | None = Field(
        None,
        ge=1,
        description="Replicas of each queue created from now on; unset, the number of"
        " STT_BROKER_URLS (at most 5), or with one node, every node of its cluster. Queues that"
        " exist keep theirs (`rabbitmq-queues grow` adds replicas).",
    )
    mongodb_url: MongoDsn = Field(
        MongoDsn("mongodb://127.0.0.1:27017"),
        description="MongoDB; when unset, `make run` starts the embedded stand-in here.",
    )
    mongodb_database: str = Field("stt", description="The MongoDB database of jobs and pieces.")
    namespace: str = Field(
        "stt",
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="Prefix of every exchange and queue name, so several deployments share a broker.",
    )
    media_store: StoreKind = Field(
        "folder",
        description="Where media lives between services: `folder` (STT_MEDIA_DIR, shared by all)"
        " or `gridfs` (MongoDB; STT_MEDIA_DIR is then each service's private scratch folder).",
    )
    media_dir: Path = Field(
        Path("var/media"),
        description="With `folder`, the uploads and WAV pieces, shared by every service; with"
        " `gridfs`, each service's private scratch folder.",
    )
    max_upload_bytes: int = Field(
        1024**3,
        gt=0,
        description="Larger uploads get 413; larger media fetched from a URL fails `too_large`.",
    )
    cleanup_delay_seconds: float = Field(
        300,
        gt=0,
        description="How long a finished job's files are kept before the janitor deletes them.",
    )
    retention_days: float = Field(
        30,
        ge=0,
        description="Finished jobs (their transcripts) and their pieces are deleted this many days"
        " after they ended; 0 keeps them forever.",
    )
    delivery_limit: int = Field(
        5, ge=1, description="Failed deliveries of one message before it is parked as poison."
    )
    retry_delays_seconds: Annotated[tuple[float, ...], *CommaSeparated] = Field(
        (1, 2, 5, 10, 20, 30, 60, 60, 60, 60),
        description="Comma-separated waits before each retry of a transient failure.",
    )
    job_deadline_seconds: float = Field(
        3600,
        gt=0,
        description="A job not finished this long after upload (plus the allowance per audio"
        " second) fails as `expired`.",
    )
    deadline_seconds_per_audio_second: float = Field(
        1.0,
        ge=0,
        description="What each second of audio adds to the job's deadline once its length is known.",
    )
    fair_share_per_key: int | None = Field(
        None,
        gt=0,
        description="With API keys, how many jobs of one key may be in the queues at once;"
        " the rest wait in the database and go on, oldest first, as its earlier ones finish."
        " Set it to the fleet's slots, so that a key alone still uses them all.",
    )
    max_audio_seconds: float = Field(
        4 * 3600, gt=0, description="Longer media fails with `too_long` before any work is done."
    )
    engines: Annotated[tuple[str, ...], *CommaSeparated] = Field(
        OFFLINE_ENGINES,
        description="Comma-separated engines. A recognizer loads and serves these; the gateway"
        " accepts them even while no recognizer of theirs runs (scaled to zero, say): the job"
        " waits in the engine's queue until one starts.",
    )
    default_engine: str = Field(
        WHISPER_BASE,
        description="The engine of a job that names none: whisper-base, the most accurate"
        " offline model (faster-whisper, tiny.en, is the fast English one); unset while"
        " STT_ENGINES leaves whisper-base out, the first of STT_ENGINES.",
    )
    default_language: str = Field(
        "en",
        description="The language of a job that names none: a code such as `de`, or `auto`;"
        " the default engine must transcribe it.",
    )
    whisper_model: str = Field(
        "tiny.en",
        description="'tiny.en' (installed from PyPI), a local faster-whisper model folder, or a model name.",
    )
    log_level: str = Field(
        "INFO", description="The least severe log level written: DEBUG, INFO, WARNING or ERROR."
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="`json` writes one JSON object a line, for log collectors."
    )
    metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="A worker serves Prometheus metrics on this port, and its probes /livez (its"
        " event loop turns) and /readyz (it consumes); 0 turns them off (the gateway serves"
        " /metrics, /healthz and /readyz on its own port).",
    )
    startup_timeout_seconds: float = Field(
        60, gt=0, description="How long a starting service waits for the broker and the database."
    )
    shutdown_grace_seconds: float = Field(
        30, ge=0, description="On SIGTERM, how long work in hand may take before it is handed back."
    )

    @property
    def broker_nodes(self) -> tuple[AmqpDsn, ...]:
        """The broker's nodes, in the order services try them."""
        return self.broker_urls or (self.broker_url,)

    @property
    def queue_replicas(self) -> int | None:
        """How many nodes a new queue lives on; None leaves it to RabbitMQ (every node)."""
        if self.quorum_group_size is not None:
            return self.quorum_group_size
        nodes = len(self.broker_nodes)
        return min(nodes, MAX_DEFAULT_REPLICAS) if nodes > 1 else None

    @model_validator(mode="before")
    @classmethod
    def _default_engine_among_engines(cls, values: Any) -> Any:
        if not isinstance(values, dict) or values.get("default_engine") is not None:
            return values
        engines = _split_commas(values.get("engines", OFFLINE_ENGINES))
        if engines and WHISPER_BASE not in engines:
            return {**values, "default_engine": engines[0]}
        return values

    @field_validator("retry_delays_seconds")
    @classmethod
    def _positive_delays(cls, delays: tuple[float, ...]) -> tuple[float, ...]:
        if any(delay <= 0 for delay in delays):
            raise ValueError("retry delays must be positive")
        return delays

    @model_validator(mode="after")
    def _check_engines(self) -> "CommonSettings":
        unknown = set(self.engines) - set(ENGINE_SPECS)
        if unknown or not self.engines:
            raise ValueError(
                f"STT_ENGINES must name some of {', '.join(ENGINE_SPECS)}; got {self.engines}"
            )
        if self.default_engine not in self.engines:
            raise ValueError(f"STT_DEFAULT_ENGINE {self.default_engine!r} is not in STT_ENGINES")
        if self.default_language not in supported_languages(
            self.default_engine, self.whisper_model
        ):
            raise ValueError(
                f"STT_DEFAULT_LANGUAGE {self.default_language!r} is not one the default engine"
                " transcribes"
            )
        return self
