"""Settings: every environment variable of CONTRACT §2, parsed and validated in one place."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, TypeVar

from yarl import URL

T = TypeVar("T")

LogFormat = Literal["json", "text"]
LogLevel = Literal["debug", "info", "warning", "error"]


class ConfigError(Exception):
    """A setting is invalid; the message is one line naming the variable."""


class Revealable(Protocol):
    """A secret whose value is only read on purpose."""

    def reveal(self) -> str: ...


class Secret:
    """A string that never shows itself in `repr`, `str` or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class DatabasePool:
    """PostgreSQL connection pool and statement limits, per replica."""

    size: int = 10
    max_overflow: int = 10
    timeout_seconds: float = 10.0  # waiting for a free connection, or for a new one to connect
    statement_timeout_seconds: float = 30.0  # 0: none

    def describe(self) -> str:
        return (
            f"pool_size={self.size} max_overflow={self.max_overflow} "
            f"pool_timeout={self.timeout_seconds:g}s "
            f"statement_timeout={self.statement_timeout_seconds:g}s"
        )


@dataclass(frozen=True)
class RedisTopology:
    """How GATEWAY_REDIS_URL is reached: one node (redis:// or rediss://), the master a set
    of Sentinels names (the URL then only gives password and db), or a Redis Cluster."""

    sentinels: tuple[tuple[str, int], ...] = ()
    sentinel_master: str | None = None
    cluster: bool = False

    @property
    def mode(self) -> Literal["node", "sentinel", "cluster"]:
        return "sentinel" if self.sentinels else "cluster" if self.cluster else "node"


@dataclass(frozen=True)
class Settings:
    """The service's whole configuration; built once by `load_settings`."""

    data_dir: Path
    database_url: Secret
    redis_url: Secret | None
    redis_prefix: str
    encryption_keys: tuple[Secret, ...]
    public_url: str | None
    allowed_origins: tuple[str, ...]
    ca_bundle: Path | None
    slack_api_url: str
    ms_login_url: str
    ms_graph_url: str
    cache_ttl_seconds: int
    # Knock tier -> requests per second; empty: not limited. Public keys are limited per
    # environment and user (a browser's abuse), secret keys per environment (the owner's own
    # backend: not limited unless the operator asks).
    rate_limits: dict[int, int]
    secret_key_rate_limits: dict[int, int]
    upstream_timeout_seconds: float
    user_token_max_lifetime_seconds: int  # 0: no maximum
    log_level: LogLevel
    log_format: LogFormat
    channels_file: Path | None
    auto_migrate: bool
    audit_retention_days: int = 365  # 0: keep audit events forever
    database_pool: DatabasePool = field(default_factory=DatabasePool)
    redis_topology: RedisTopology = field(default_factory=RedisTopology)
    max_body_bytes: int = field(default=256 * 1024)
    # The Entra login host as browsers reach it, for the Teams sign-in hop; None: MS_LOGIN_URL.
    # Deliberately not an environment variable: in every real cloud the browser and msal use
    # the same host, and a second one would only be a way to send admins to the wrong page.
    # Only the demo sets it, because a visitor's browser does not trust the demo's own CA.
    ms_browser_login_url: str | None = None
    # Calls to Slack and Graph for a tenant keep within each account's rate limits (waiting
    # up to upstream_wait_seconds for a slot); False: sent as they come.
    upstream_pacing: bool = True
    upstream_max_wait_seconds: float = 5.0

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.reveal().startswith("sqlite")

    @property
    def uses_redis(self) -> bool:
        """Redis is configured (with Sentinel, GATEWAY_REDIS_URL is optional)."""
        return self.redis_url is not None or bool(self.redis_topology.sentinels)

    @property
    def upstream_wait_seconds(self) -> float:
        """How long a request may wait for upstream slots: the setting, capped by the timeout
        of one upstream call (a caller waiting longer than that would take it for a hang)."""
        return min(self.upstream_max_wait_seconds, self.upstream_timeout_seconds)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings from `environ` (default: the process environment)."""
    env = os.environ if environ is None else environ
    reader = _Reader(env)
    data_dir = reader.get("GATEWAY_DATA_DIR", Path, default=Path("./.provider-gateway"))
    assert data_dir is not None
    # Made absolute once, at start-up (and logged): nothing later can move it.
    data_dir = data_dir.absolute()
    database_url = reader.get(
        "GATEWAY_DATABASE_URL",
        _database_url,
        default=Secret(f"sqlite:///{data_dir / 'gateway.db'}"),
    )
    assert database_url is not None
    redis_url = reader.get("GATEWAY_REDIS_URL", _redis_url)
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        redis_topology=_redis_topology(reader, redis_url),
        redis_prefix=_required(
            reader.get("GATEWAY_REDIS_PREFIX", _redis_prefix, "provider-gateway")
        ),
        encryption_keys=reader.get("GATEWAY_ENCRYPTION_KEYS", _fernet_keys, default=()) or (),
        public_url=reader.get("GATEWAY_PUBLIC_URL", _origin),
        allowed_origins=reader.get("GATEWAY_ALLOWED_ORIGINS", _origins, default=()) or (),
        ca_bundle=reader.get("GATEWAY_CA_BUNDLE", _existing_file),
        slack_api_url=_required(reader.get("SLACK_API_URL", _slack_base, "https://slack.com/api/")),
        ms_login_url=_required(
            reader.get("MS_LOGIN_URL", _host_url, "https://login.microsoftonline.com")
        ),
        ms_graph_url=_required(
            reader.get("MS_GRAPH_URL", _host_url, "https://graph.microsoft.com")
        ),
        cache_ttl_seconds=_required(reader.get("GATEWAY_CACHE_TTL_SECONDS", _non_negative_int, 60)),
        rate_limits=_required(reader.get("GATEWAY_RATE_LIMITS", _rate_limits, dict(KNOCK_TIERS))),
        secret_key_rate_limits=_required(
            reader.get("GATEWAY_SECRET_KEY_RATE_LIMITS", _rate_limits, dict[int, int]())
        ),
        upstream_timeout_seconds=_required(
            reader.get("GATEWAY_UPSTREAM_TIMEOUT_SECONDS", _positive_float, 10.0)
        ),
        upstream_pacing=_required(reader.get("GATEWAY_UPSTREAM_PACING", _boolean, True)),
        upstream_max_wait_seconds=_required(
            reader.get("GATEWAY_UPSTREAM_MAX_WAIT_SECONDS", _non_negative_float, 5.0)
        ),
        user_token_max_lifetime_seconds=_required(
            reader.get("GATEWAY_USER_TOKEN_MAX_LIFETIME_SECONDS", _non_negative_int, 86_400)
        ),
        log_level=_required(reader.get("GATEWAY_LOG_LEVEL", _log_level, "info")),
        log_format=_required(reader.get("GATEWAY_LOG_FORMAT", _log_format, "json")),
        channels_file=reader.get("GATEWAY_CHANNELS_FILE", _existing_file),
        auto_migrate=_required(reader.get("GATEWAY_AUTO_MIGRATE", _boolean, True)),
        audit_retention_days=_required(
            reader.get("GATEWAY_AUDIT_RETENTION_DAYS", _non_negative_int, 365)
        ),
        database_pool=DatabasePool(
            size=_required(reader.get("GATEWAY_DATABASE_POOL_SIZE", _positive_int, 10)),
            max_overflow=_required(
                reader.get("GATEWAY_DATABASE_MAX_OVERFLOW", _non_negative_int, 10)
            ),
            timeout_seconds=_required(
                reader.get("GATEWAY_DATABASE_POOL_TIMEOUT_SECONDS", _positive_float, 10.0)
            ),
            statement_timeout_seconds=_required(
                reader.get("GATEWAY_DATABASE_STATEMENT_TIMEOUT_SECONDS", _non_negative_float, 30.0)
            ),
        ),
    )


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def get(self, name: str, parse: Callable[[str], T], default: T | None = None) -> T | None:
        raw = self._env.get(name, "").strip()
        if not raw:
            return default
        try:
            return parse(raw)
        except (ValueError, OSError) as exc:
            raise ConfigError(f"{name}: {exc}") from None


def _required(value: T | None) -> T:
    assert value is not None  # every caller passes a default
    return value


def _database_url(raw: str) -> Secret:
    scheme = raw.split("://", 1)[0] if "://" in raw else ""
    if scheme not in {"sqlite", "postgresql", "postgres"}:
        raise ValueError("must start with sqlite:/// or postgresql://")
    if scheme == "sqlite" and not raw.startswith("sqlite:///"):
        raise ValueError("a SQLite URL is sqlite:///relative/path or sqlite:////absolute/path")
    if scheme != "sqlite" and not URL(raw).host:
        raise ValueError("a PostgreSQL URL needs a host: postgresql://user:pass@host:5432/db")
    return Secret(raw)


# redis-py reads these from the URL's query; TLS to Redis is always verified (a private CA is
# trusted with GATEWAY_CA_BUNDLE), so the URL may not turn verification off.
_TLS_WEAKENING = {"ssl_cert_reqs", "ssl_check_hostname", "ssl_exclude_verify_flags"}


def _redis_url(raw: str) -> Secret:
    url = URL(raw)
    if url.scheme not in {"redis", "rediss", "unix"}:
        raise ValueError("must start with redis://, rediss:// or unix://")
    if _TLS_WEAKENING & set(url.query):
        raise ValueError("TLS is always verified: trust a private CA with GATEWAY_CA_BUNDLE")
    return Secret(raw)


def _redis_topology(reader: _Reader, url: Secret | None) -> RedisTopology:
    topology = RedisTopology(
        sentinels=reader.get("GATEWAY_REDIS_SENTINELS", _host_ports, ()) or (),
        sentinel_master=reader.get("GATEWAY_REDIS_SENTINEL_MASTER", _sentinel_master),
        cluster=_required(reader.get("GATEWAY_REDIS_CLUSTER", _boolean, False)),
    )
    scheme, db = (URL(url.reveal()).scheme, URL(url.reveal()).path.strip("/")) if url else ("", "")
    if topology.sentinels and topology.cluster:
        raise ConfigError("GATEWAY_REDIS_CLUSTER: cannot be combined with GATEWAY_REDIS_SENTINELS")
    if topology.sentinels and not topology.sentinel_master:
        raise ConfigError("GATEWAY_REDIS_SENTINEL_MASTER: required with GATEWAY_REDIS_SENTINELS")
    if topology.sentinel_master and not topology.sentinels:
        raise ConfigError("GATEWAY_REDIS_SENTINEL_MASTER: needs GATEWAY_REDIS_SENTINELS")
    if topology.sentinels and scheme not in {"", "redis"}:
        raise ConfigError("GATEWAY_REDIS_URL: with Sentinel, redis://[:password@]host/db only")
    if topology.cluster and scheme != "redis":
        raise ConfigError("GATEWAY_REDIS_CLUSTER: needs GATEWAY_REDIS_URL, a redis:// node")
    if topology.cluster and db not in {"", "0"}:
        raise ConfigError("GATEWAY_REDIS_URL: a Redis Cluster has database 0 only")
    return topology


def _host_ports(raw: str) -> tuple[tuple[str, int], ...]:
    """`host:port[,host:port...]` (IPv6 hosts in brackets)."""
    pairs = []
    for part in (part.strip() for part in raw.split(",")):
        host, _, port = part.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{part!r} is not host:port (list them as host:port,host:port)")
        pairs.append((host, int(port)))
    return tuple(pairs)


def _sentinel_master(raw: str) -> str:
    if not all(c.isalnum() or c in "-_." for c in raw):
        raise ValueError("the master's name as the Sentinels know it (letters, digits, - _ .)")
    return raw


# Knock's per-endpoint rate-limit tiers, in requests per second (docs: API rate limits).
KNOCK_TIERS: dict[int, int] = {1: 1, 2: 5, 3: 60, 4: 200, 5: 1000}


_RATE_LIMITS_SYNTAX = "knock, off, or tier=requests-per-second pairs like 2=20,3=100"


def _rate_limits(raw: str) -> dict[int, int]:
    """`knock` (Knock's tiers), `off`, or overrides of Knock's tiers such as `2=20,3=100`."""
    if raw.lower() == "knock":
        return dict(KNOCK_TIERS)
    if raw.lower() == "off":
        return {}
    limits = dict(KNOCK_TIERS)
    for part in raw.split(","):
        tier, equals, rate = (text.strip() for text in part.partition("="))
        if not (equals and _is_number(tier) and _is_number(rate)):
            raise ValueError(f"{part.strip()!r} is not tier=rate; use {_RATE_LIMITS_SYNTAX}")
        if int(tier) not in KNOCK_TIERS:
            raise ValueError(f"{part.strip()!r}: Knock's tiers are 1 to 5")
        if not 1 <= int(rate) <= _MAX_RATE:
            raise ValueError(
                f"{part.strip()!r}: a rate is 1 to {_MAX_RATE} requests per second "
                "(to lift every limit: off)"
            )
        limits[int(tier)] = int(rate)
    return limits


_MAX_RATE = 1_000_000


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 9


def _redis_prefix(raw: str) -> str:
    if not all(c.isalnum() or c in "-_:." for c in raw) or len(raw) > 64:
        raise ValueError("letters, digits and - _ : . only (at most 64)")
    return raw


def _fernet_keys(raw: str) -> tuple[Secret, ...]:
    import base64
    import binascii

    keys = [part.strip() for part in raw.split(",") if part.strip()]
    for index, key in enumerate(keys, start=1):
        try:
            decoded = base64.urlsafe_b64decode(key.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError):
            decoded = b""
        if len(decoded) != 32:
            raise ValueError(
                f"key {index} is not a Fernet key (32 bytes, url-safe base64; "
                "make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')"
            )
    return tuple(Secret(key) for key in keys)


def _origin(raw: str) -> str:
    url = URL(raw.rstrip("/"))
    if url.scheme not in {"http", "https"} or not url.host:
        raise ValueError(f"{raw!r} is not an http(s) origin like https://gateway.example.com")
    if url.path not in {"", "/"} or url.query_string or url.fragment:
        raise ValueError(f"{raw!r} must be a bare origin, without path or query")
    return str(url.origin())


def _origins(raw: str) -> tuple[str, ...]:
    return tuple(_origin(part.strip()) for part in raw.split(",") if part.strip())


def _http_url(raw: str) -> URL:
    url = URL(raw)
    if url.scheme not in {"http", "https"} or not url.host:
        raise ValueError(f"{raw!r} is not an http(s) URL")
    return url


def _slack_base(raw: str) -> str:
    _http_url(raw)
    return raw if raw.endswith("/") else raw + "/"


def _host_url(raw: str) -> str:
    _http_url(raw)
    return raw.rstrip("/")


def _existing_file(raw: str) -> Path:
    path = Path(raw)
    if not path.is_file():
        raise ValueError(f"{raw!r} is not a readable file")
    return path


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be 1 or more")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError("must be 0 or more")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be more than 0")
    return value


def _log_level(raw: str) -> LogLevel:
    levels: dict[str, LogLevel] = {
        "debug": "debug",
        "info": "info",
        "warning": "warning",
        "error": "error",
    }
    if raw.lower() not in levels:
        raise ValueError("must be one of debug, info, warning, error")
    return levels[raw.lower()]


def _log_format(raw: str) -> LogFormat:
    formats: dict[str, LogFormat] = {"json": "json", "text": "text"}
    if raw.lower() not in formats:
        raise ValueError("must be json or text")
    return formats[raw.lower()]


def _boolean(raw: str) -> bool:
    value = raw.lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")
