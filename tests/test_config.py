from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from provider_gateway.config import ConfigError, Secret, load_settings
from provider_gateway.shared.redis_client import describe_redis


def test_defaults_are_the_embedded_ones() -> None:
    settings = load_settings({})
    assert settings.data_dir == Path.cwd() / ".provider-gateway"
    assert settings.database_url.reveal() == f"sqlite:///{Path.cwd()}/.provider-gateway/gateway.db"
    assert settings.redis_url is None
    assert settings.encryption_keys == ()
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.ms_login_url == "https://login.microsoftonline.com"
    assert settings.ms_graph_url == "https://graph.microsoft.com"
    assert settings.cache_ttl_seconds == 60
    assert (settings.log_level, settings.log_format) == ("info", "json")
    assert settings.auto_migrate is True


def test_every_contract_variable_is_read(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    channels = tmp_path / "channels.toml"
    channels.write_text("")
    key = Fernet.generate_key().decode()
    settings = load_settings(
        {
            "GATEWAY_DATABASE_URL": "postgresql://gw:pw@db:5432/gw",
            "GATEWAY_REDIS_URL": "redis://cache:6379/0",
            "GATEWAY_DATA_DIR": str(tmp_path),
            "GATEWAY_ENCRYPTION_KEYS": f"{key}, {Fernet.generate_key().decode()}",
            "GATEWAY_PUBLIC_URL": "https://gw.example.com/",
            "GATEWAY_ALLOWED_ORIGINS": "https://app.example.com,http://localhost:3000",
            "GATEWAY_CA_BUNDLE": str(bundle),
            "SLACK_API_URL": "http://127.0.0.1:9000/api",
            "MS_LOGIN_URL": "https://login.microsoftonline.us/",
            "MS_GRAPH_URL": "https://graph.microsoft.us/",
            "GATEWAY_CACHE_TTL_SECONDS": "0",
            "GATEWAY_LOG_LEVEL": "DEBUG",
            "GATEWAY_LOG_FORMAT": "text",
            "GATEWAY_CHANNELS_FILE": str(channels),
            "GATEWAY_AUTO_MIGRATE": "false",
        }
    )
    assert settings.encryption_keys[0] == Secret(key)
    assert len(settings.encryption_keys) == 2
    assert settings.public_url == "https://gw.example.com"
    assert settings.allowed_origins == ("https://app.example.com", "http://localhost:3000")
    assert settings.ca_bundle == bundle
    assert settings.slack_api_url == "http://127.0.0.1:9000/api/"
    assert settings.ms_login_url == "https://login.microsoftonline.us"
    assert settings.ms_graph_url == "https://graph.microsoft.us"
    assert settings.cache_ttl_seconds == 0
    assert (settings.log_level, settings.log_format) == ("debug", "text")
    assert settings.channels_file == channels
    assert settings.auto_migrate is False


def test_secrets_are_masked_in_repr() -> None:
    key = Fernet.generate_key().decode()
    settings = load_settings(
        {
            "GATEWAY_DATABASE_URL": "postgresql://gw:hunter2@db:5432/gw",
            "GATEWAY_REDIS_URL": "redis://:redispass@cache:6379/0",
            "GATEWAY_ENCRYPTION_KEYS": key,
        }
    )
    shown = repr(settings) + str(settings)
    for secret in ("hunter2", "redispass", key):
        assert secret not in shown


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_DATABASE_URL", "mysql://db/gw"),
        ("GATEWAY_DATABASE_URL", "sqlite://relative"),
        ("GATEWAY_REDIS_URL", "http://cache"),
        ("GATEWAY_ENCRYPTION_KEYS", "not-a-key"),
        ("GATEWAY_PUBLIC_URL", "gw.example.com"),
        ("GATEWAY_PUBLIC_URL", "https://gw.example.com/path"),
        ("GATEWAY_ALLOWED_ORIGINS", "https://ok.example.com,ftp://bad"),
        ("GATEWAY_CA_BUNDLE", "/nonexistent/ca.pem"),
        ("SLACK_API_URL", "slack.com/api"),
        ("MS_LOGIN_URL", "not a url"),
        ("MS_GRAPH_URL", "ftp://graph"),
        ("GATEWAY_CACHE_TTL_SECONDS", "-1"),
        ("GATEWAY_CACHE_TTL_SECONDS", "soon"),
        ("GATEWAY_UPSTREAM_TIMEOUT_SECONDS", "0"),
        ("GATEWAY_UPSTREAM_PACING", "sometimes"),
        ("GATEWAY_UPSTREAM_MAX_WAIT_SECONDS", "-1"),
        ("GATEWAY_UPSTREAM_MAX_WAIT_SECONDS", "nan"),
        ("GATEWAY_LOG_LEVEL", "loud"),
        ("GATEWAY_LOG_FORMAT", "xml"),
        ("GATEWAY_CHANNELS_FILE", "/nonexistent/channels.toml"),
        ("GATEWAY_AUTO_MIGRATE", "maybe"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({variable: value})
    message = str(raised.value)
    assert message.startswith(f"{variable}: ")
    assert "\n" not in message


def test_redis_topologies_are_read() -> None:
    sentinel = load_settings(
        {
            "GATEWAY_REDIS_SENTINELS": "10.0.0.1:26379, sentinel-b:26380,[::1]:26381",
            "GATEWAY_REDIS_SENTINEL_MASTER": "gateway",
            "GATEWAY_REDIS_URL": "redis://:pw@ignored/2",
        }
    )
    assert sentinel.redis_topology.mode == "sentinel"
    assert sentinel.redis_topology.sentinels == (
        ("10.0.0.1", 26379),
        ("sentinel-b", 26380),
        ("::1", 26381),
    )
    assert sentinel.redis_topology.sentinel_master == "gateway"
    assert sentinel.uses_redis
    without_url = load_settings(
        {"GATEWAY_REDIS_SENTINELS": "s:26379", "GATEWAY_REDIS_SENTINEL_MASTER": "m"}
    )
    assert without_url.uses_redis
    assert without_url.redis_url is None
    cluster = load_settings(
        {"GATEWAY_REDIS_CLUSTER": "true", "GATEWAY_REDIS_URL": "redis://node-1:6379"}
    )
    assert cluster.redis_topology.mode == "cluster"
    assert load_settings({"GATEWAY_REDIS_URL": "rediss://r:6380/0"}).redis_topology.mode == "node"
    assert not load_settings({}).uses_redis


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEWAY_REDIS_SENTINELS": "s:26379"}, "GATEWAY_REDIS_SENTINEL_MASTER: required"),
        ({"GATEWAY_REDIS_SENTINEL_MASTER": "m"}, "GATEWAY_REDIS_SENTINEL_MASTER: needs"),
        (
            {"GATEWAY_REDIS_SENTINELS": "s", "GATEWAY_REDIS_SENTINEL_MASTER": "m"},
            "GATEWAY_REDIS_SENTINELS: 's' is not host:port",
        ),
        (
            {"GATEWAY_REDIS_SENTINELS": "s:1,s:99999", "GATEWAY_REDIS_SENTINEL_MASTER": "m"},
            "GATEWAY_REDIS_SENTINELS: 's:99999'",
        ),
        (
            {"GATEWAY_REDIS_SENTINELS": "s:1", "GATEWAY_REDIS_SENTINEL_MASTER": "a b"},
            "GATEWAY_REDIS_SENTINEL_MASTER:",
        ),
        (
            {
                "GATEWAY_REDIS_SENTINELS": "s:1",
                "GATEWAY_REDIS_SENTINEL_MASTER": "m",
                "GATEWAY_REDIS_CLUSTER": "true",
                "GATEWAY_REDIS_URL": "redis://n:6379",
            },
            "GATEWAY_REDIS_CLUSTER: cannot be combined",
        ),
        ({"GATEWAY_REDIS_CLUSTER": "true"}, "GATEWAY_REDIS_CLUSTER: needs GATEWAY_REDIS_URL"),
        ({"GATEWAY_REDIS_CLUSTER": "maybe"}, "GATEWAY_REDIS_CLUSTER: must be true or false"),
        (
            {"GATEWAY_REDIS_CLUSTER": "true", "GATEWAY_REDIS_URL": "rediss://n:6379"},
            "GATEWAY_REDIS_CLUSTER: needs GATEWAY_REDIS_URL, a redis:// node",
        ),
        (
            {"GATEWAY_REDIS_CLUSTER": "true", "GATEWAY_REDIS_URL": "redis://n:6379/3"},
            "GATEWAY_REDIS_URL: a Redis Cluster has database 0 only",
        ),
        (
            {"GATEWAY_REDIS_URL": "rediss://r:6380/0?ssl_cert_reqs=none"},
            "GATEWAY_REDIS_URL: TLS is always verified",
        ),
        (
            {
                "GATEWAY_REDIS_SENTINELS": "s:1",
                "GATEWAY_REDIS_SENTINEL_MASTER": "m",
                "GATEWAY_REDIS_URL": "unix:///run/redis.sock",
            },
            "GATEWAY_REDIS_URL: with Sentinel",
        ),
    ],
)
def test_invalid_redis_topologies_stop_with_one_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    assert str(raised.value).startswith(message), raised.value
    assert "\n" not in str(raised.value)


def test_the_redis_description_never_shows_a_password() -> None:
    node = load_settings({"GATEWAY_REDIS_URL": "rediss://:hunter2@cache:6380/0"})
    assert node.redis_url is not None
    shown = describe_redis(node.redis_url.reveal(), node.redis_topology)
    assert shown == "node with TLS (rediss://:***@cache:6380/0)"
    sentinel = load_settings(
        {
            "GATEWAY_REDIS_URL": "redis://gw:hunter2@x/2",
            "GATEWAY_REDIS_SENTINELS": "a:26379,b:26379",
            "GATEWAY_REDIS_SENTINEL_MASTER": "main",
        }
    )
    assert sentinel.redis_url is not None
    shown = describe_redis(sentinel.redis_url.reveal(), sentinel.redis_topology)
    assert shown == "sentinel (master 'main' via a:26379,b:26379)"


def test_upstream_pacing_is_on_and_waits_at_most_5_seconds_by_default() -> None:
    settings = load_settings({})
    assert settings.upstream_pacing is True
    assert settings.upstream_wait_seconds == 5.0


def test_the_upstream_wait_is_capped_by_the_upstream_timeout() -> None:
    settings = load_settings(
        {"GATEWAY_UPSTREAM_MAX_WAIT_SECONDS": "30", "GATEWAY_UPSTREAM_TIMEOUT_SECONDS": "8"}
    )
    assert settings.upstream_wait_seconds == 8.0
    assert load_settings({"GATEWAY_UPSTREAM_PACING": "off"}).upstream_pacing is False
