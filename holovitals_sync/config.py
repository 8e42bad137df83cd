"""Settings for every process of HoloVitals Sync (UI/API backend, workers, CLI).

One `Settings` object, read from `HOLOVITALS_*` environment variables and a `.env` file in the
working directory. Nothing else in the code base reads `os.environ` for configuration.
A bad value stops start-up with one line naming the variable and what it accepts
(`ConfigError`), never a pydantic traceback.
"""

from __future__ import annotations

import os
import re
import secrets
from base64 import urlsafe_b64encode
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "HOLOVITALS_"
SECRET_KEY_FILE = "secret.key"
AUDIT_KEY_FILE = "audit.key"

# The four queue families and the priorities each one has. A family's workers listen on
# its queues in this order, so a high-priority job is always taken first.
QUEUE_FAMILIES = ("sync", "webhooks", "conflicts", "transformations")
PRIORITIES = ("high", "default", "low")


class ConfigError(Exception):
    """A setting has a value HoloVitals Sync cannot use; the message is one line."""


def _int_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """All settings, with the defaults an embedded single-machine install uses."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: str = Field("development", pattern="^(development|production|test)$")
    data_dir: Path = Path("./data")
    database_url: str | None = None
    redis_url: str | None = None
    secret_key: str | None = None
    # Keys the audit chain (HMAC); never stored in the database. Unset: <data dir>/audit.key.
    audit_key: str | None = None

    sync_batch_size: int = Field(100, ge=1, le=10_000)
    # A full sync (Bulk Data NDJSON or pages) reads a whole population: larger batches
    # amortise each batch's fixed work and commit (services/orchestration/inbound.py).
    sync_bulk_batch_size: int = Field(1000, ge=1, le=10_000)
    # A full sync larger than this (resources, estimated) is cut into child jobs that every
    # free sync worker helps with: per type, per block of patients, per export files.
    sync_split_above: int = Field(100_000, ge=1)  # below it parts cost more than they give
    sync_split_patient_block: int = Field(250, ge=1, le=100_000)
    # Parts run one at a time on a lone worker, each with one stream: slower than the whole
    # job's parallel streams. Split only when this many sync workers are there to share it.
    sync_split_min_workers: int = Field(2, ge=0, le=1000)
    retry_attempts: int = Field(3, ge=0, le=20)
    retry_backoff: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [2, 4, 8])

    # Sized to the machine: 28 processes on two cores once starved the webhook receiver.
    # Syncs and deliveries mostly wait on the network (two per core); conflicts and
    # revalidations are rare and short (one).
    workers_sync: int = Field(default_factory=lambda: 2 * cores(), ge=0, le=64)
    workers_webhooks: int = Field(default_factory=lambda: 2 * cores(), ge=0, le=64)
    workers_conflicts: int = Field(1, ge=0, le=64)
    workers_transformations: int = Field(1, ge=0, le=64)
    # Workers run at a lower CPU priority than the backend (nice), so a backlog being
    # worked never slows intake or the dashboard; 0 turns it off.
    worker_nice: int = Field(10, ge=0, le=19)
    # Backend processes of `up --prod` (Reflex serves UI, API and websocket from them):
    # fewer beat more on a small machine (two outran five on two cores, measured).
    backend_workers: int = Field(default_factory=lambda: cores(), ge=1, le=64)
    # How long `up` gives its workers, once asked to stop, to bring running jobs to a
    # checkpoint (sync jobs stop after the batch they write) before it kills them.
    stop_grace: float = Field(30.0, ge=1, le=3600)

    webhook_signature_tolerance: int = Field(300, ge=1, le=86_400)
    webhook_max_body_bytes: int = Field(1_048_576, ge=1024)
    # Outbound targets that may resolve to loopback/private/link-local addresses (SSRF
    # guard): host names, IPs or CIDR networks, comma-separated. Empty refuses them all.
    webhook_allow_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    webhook_slots_per_subscription: int = Field(2, ge=1, le=64)
    webhook_disable_after_seconds: int = Field(86_400, ge=1)
    webhook_rotation_grace_seconds: int = Field(86_400, ge=0, le=30 * 86_400)
    # Refused inbound requests are counted; the newest few per connection are kept as a
    # sample (time and reason only), for this many days.
    inbound_rejection_sample: int = Field(100, ge=1, le=10_000)
    inbound_rejection_retention_days: int = Field(7, ge=1, le=365)

    # Alert thresholds (services.alerts); `alert_threshold` rows override them per connection
    # or per queue family.
    alert_queue_depth: int = Field(1000, ge=1, le=10_000_000)  # waiting jobs per family
    alert_failure_streak: int = Field(3, ge=1, le=100)  # failed runs in a row
    alert_slow_factor: float = Field(3.0, gt=1, le=100)  # x the median of recent runs
    alert_slow_floor_seconds: int = Field(300, ge=1, le=7 * 86_400)  # never slow below this
    alert_conflict_backlog: int = Field(50, ge=1, le=1_000_000)  # open high-severity conflicts
    # An HL7 v2 feed that talked in the last week and has been silent this long, within the
    # day hours (HH-HH in the time zone below), raises an alert.
    alert_feed_silence_minutes: int = Field(30, ge=1, le=7 * 24 * 60)
    alert_feed_day_hours: str = Field("07-19", pattern=r"^([01]?[0-9]|2[0-4])-([01]?[0-9]|2[0-4])$")
    alert_feed_timezone: str = "UTC"

    http_connect_timeout: float = Field(10.0, gt=0, le=300)
    http_read_timeout: float = Field(60.0, gt=0, le=3600)
    # One whole exchange with an EHR, and the largest answer read (a bigger one is refused).
    http_total_timeout: float = Field(300.0, ge=1, le=6 * 3600)
    http_max_response_bytes: int = Field(64 * 1024 * 1024, ge=1024, le=4 * 1024**3)
    # An EHR whose paging never ends, or whose pages bring nothing, cannot hold a worker.
    sync_max_pages: int = Field(50_000, ge=10, le=10_000_000)  # pages of one search
    sync_stall_seconds: float = Field(900.0, ge=10, le=86_400)  # pages bringing nothing
    http_pool_size: int = Field(10, ge=1, le=200)

    frontend_port: int = Field(3000, ge=1, le=65535)
    backend_port: int = Field(8000, ge=1, le=65535)
    # Where the dashboard is served from, as browsers name it (scheme://host[:port]): the
    # only origins allowed to call the API with the user's cookie. Unset: this machine's
    # dashboard port (localhost and 127.0.0.1).
    dashboard_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    sandbox_port: int = Field(9100, ge=1, le=65535)
    # The MLLP listener for HL7 v2 ADT feeds (`holovitals-sync mllp`, started by `up`; port 0:
    # `up` starts none). 2575 is HL7's registered port.
    mllp_host: str = "127.0.0.1"
    mllp_port: int = Field(2575, ge=0, le=65535)
    mllp_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"]
    )
    mllp_tls_cert: Path | None = None
    mllp_tls_key: Path | None = None
    mllp_tls_client_ca: Path | None = None  # set: senders must present a certificate it signed
    mllp_max_message_bytes: int = Field(4 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    mllp_idle_seconds: float = Field(600.0, ge=1, le=86_400)
    mllp_max_connections: int = Field(500, ge=1, le=100_000)
    # Messages about one patient arriving this close together make one sync.
    mllp_coalesce_seconds: float = Field(0.5, ge=0, le=60)
    mllp_identifier_cache_seconds: int = Field(3600, ge=0, le=7 * 86_400)
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    # text: one readable line; json: one JSON object per line, for log shippers.
    log_format: str = Field("text", pattern="^(text|json)$")
    # The trace UI's address for one trace, with {trace_id} where the id goes (e.g.
    # http://jaeger:16686/trace/{trace_id}): the job page links its trace there.
    trace_url: str | None = Field(None, pattern=r"^https?://.*\{trace_id\}")

    @field_validator("retry_backoff", mode="before")
    @classmethod
    def _parse_backoff(cls, value: Any) -> Any:
        value = _int_list(value)
        if not value:
            raise ValueError("empty list")
        return value

    @field_validator("retry_backoff")
    @classmethod
    def _positive_backoff(cls, value: list[int]) -> list[int]:
        if any(v < 0 or v > 86_400 for v in value):
            raise ValueError("out of range")
        return value

    @field_validator("webhook_allow_hosts", mode="before")
    @classmethod
    def _parse_hosts(cls, value: Any) -> Any:
        return _int_list(value)

    @field_validator("mllp_allow", mode="before")
    @classmethod
    def _parse_networks(cls, value: Any) -> Any:
        import ipaddress

        value = _int_list(value)
        for network in value or []:
            ipaddress.ip_network(network, strict=False)  # ValueError names it
        return value

    @field_validator("alert_feed_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except (KeyError, ValueError):  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(value) from None
        return value

    @field_validator("dashboard_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip().rstrip("/") for v in value.split(",") if v.strip()]
        for origin in value or []:
            if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+", origin):
                raise ValueError(origin)
        return value

    @property
    def allowed_origins(self) -> list[str]:
        """The dashboard's origins: configured, or this machine's dashboard port."""
        if self.dashboard_origins:
            return list(self.dashboard_origins)
        return [f"http://{host}:{self.frontend_port}" for host in ("localhost", "127.0.0.1")]

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # Child processes (workers, the Reflex backend) may run from another directory.
        return value.expanduser().resolve()

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("unsupported scheme")
        return value

    @field_validator("redis_url")
    @classmethod
    def _known_redis(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("unsupported scheme")
        return value or None

    # -- derived values ------------------------------------------------------------------

    @property
    def effective_database_url(self) -> str:
        """The configured database, or a SQLite file in the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir / 'holovitals.db'}"

    def workers_for(self, family: str) -> int:
        """How many worker processes the given queue family runs."""
        return int(getattr(self, f"workers_{family}"))

    def queue_names(self, family: str) -> list[str]:
        """The RQ queues of a family, highest priority first."""
        return [f"{family}.{priority}" for priority in PRIORITIES]


# What each setting accepts, for the one-line error. Only fields whose constraint is not
# obvious from their type need an entry.
_ACCEPTS = {
    "environment": "one of development, production, test",
    "retry_backoff": "comma-separated whole seconds, e.g. 2,4,8",
    "database_url": "a sqlite:/// or postgresql:// URL",
    "redis_url": "a redis://, rediss:// or unix:// URL, or nothing for an embedded Redis",
    "log_level": "one of DEBUG, INFO, WARNING, ERROR",
    "log_format": "text or json",
    "trace_url": "an http(s) URL with {trace_id} in it, e.g. http://jaeger:16686/trace/{trace_id}",
    "webhook_allow_hosts": "comma-separated host names, IPs or CIDR networks",
    "dashboard_origins": "comma-separated origins, e.g. https://sync.example-hospital.org",
    "alert_slow_factor": "a number above 1 and at most 100, e.g. 3",
    "mllp_allow": "comma-separated IP addresses or CIDR networks, e.g. 10.20.0.0/16",
    "alert_feed_day_hours": "hours from-to, e.g. 07-19",
    "alert_feed_timezone": "an IANA time zone, e.g. America/New_York",
}


def _describe(field: str, settings_cls: type[BaseSettings] = Settings) -> str:
    if field in _ACCEPTS:
        return _ACCEPTS[field]
    info = settings_cls.model_fields[field]
    bounds = {}
    for meta in info.metadata:
        for attr in ("ge", "gt", "le", "lt"):
            if getattr(meta, attr, None) is not None:
                bounds[attr] = getattr(meta, attr)
    kind = {int: "a whole number", float: "a number"}.get(info.annotation, "a valid value")
    low = bounds.get("ge", bounds.get("gt"))
    high = bounds.get("le", bounds.get("lt"))
    if low is not None and high is not None:
        return f"{kind} from {low} to {high}"
    if low is not None:
        return f"{kind} of at least {low}"
    return kind


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning a validation failure into one clear `ConfigError` line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "?"
        shown = error.get("input")
        shown = shown if isinstance(shown, str | int | float) else None
        got = f" (got {shown!r})" if shown is not None else ""
        raise ConfigError(
            f"{ENV_PREFIX}{field.upper()}: expected {_describe(field)}{got}"
        ) from None


def cores() -> int:
    """CPUs this process may run on (a container's limit, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()


def ensure_data_dir(settings: Settings) -> Path:
    """Create the data directory, mode 0700: it holds the database, the keys and the
    private Redis's files. A directory that others may read is closed to them."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if settings.data_dir.stat().st_mode & 0o077:
        settings.data_dir.chmod(0o700)
    return settings.data_dir


def _key_file(settings: Settings, name: str) -> bytes:
    """A random key generated once into `<data_dir>/<name>` (mode 0600) and reused."""
    path = ensure_data_dir(settings) / name
    if path.exists():
        return path.read_bytes().strip()
    key = urlsafe_b64encode(secrets.token_bytes(32))
    # O_EXCL: two processes starting at once must not each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as out:
        out.write(key + b"\n")
    return key


def audit_key(settings: Settings) -> bytes:
    """The key of the audit chain's HMAC: `HOLOVITALS_AUDIT_KEY`, else `<data_dir>/audit.key`.

    Apart from the secret key on purpose: rotating that one must not break the chain. Every
    process writing the audit log (backend, workers, on every machine) needs the same one.
    """
    if settings.audit_key:
        return settings.audit_key.encode()
    return _key_file(settings, AUDIT_KEY_FILE)


def secret_key(settings: Settings) -> bytes:
    """The Fernet key for encryption at rest.

    Taken from `HOLOVITALS_SECRET_KEY` when set; otherwise generated once into
    `<data_dir>/secret.key` with mode 0600 and reused on every later start.
    """
    if settings.secret_key:
        return settings.secret_key.encode()
    return _key_file(settings, SECRET_KEY_FILE)
