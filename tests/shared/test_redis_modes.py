"""The whole gateway on TLS, Sentinel and Cluster Redis: requests, replicas sharing the cache,
a Sentinel failover under load, key revocation, and what start-up and `doctor` report."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from provider_gateway.app import create_app
from provider_gateway.config import RedisTopology, Settings
from provider_gateway.doctor.local import redis as doctor_redis
from provider_gateway.serving import startup_summary
from provider_gateway.shared.backends import BackendUnavailable, RedisBackend
from provider_gateway.shared.state import SharedState
from provider_gateway.web.appkeys import GATEWAY, LISTINGS
from tests.fakes.slack import FakeSlack
from tests.shared.redis_servers import MASTER_NAME, Cluster, SentinelSet, TlsRedis, cli
from tests.slack.support import install_token, list_channels
from tests.support import World, object_uri, seed_world, serve

pytestmark = pytest.mark.redis_servers

TEAM = "T0001"
Replicas = list[TestClient]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: these tests are about Redis (PostgreSQL runs the same code elsewhere)."""
    return f"sqlite:///{tmp_path / 'gateway.db'}"


@pytest.fixture
async def fake_slack(aiohttp_server: Callable[..., Any]) -> FakeSlack:
    fake = FakeSlack()
    server = await aiohttp_server(fake.app)
    fake.api_url = str(server.make_url("/api/"))
    fake.add_workspace(TEAM, 30)
    return fake


async def _status(response: Any) -> int:
    async with response as answered:
        await answered.read()
        return int(answered.status)


async def _redis_check(client: TestClient) -> str:
    ready = await (await client.get("/readyz")).json()
    return str(ready["checks"]["redis"])


async def _replicas_with_a_tenant(
    aiohttp_client: Any, settings: Settings, fake_slack: FakeSlack, count: int = 2
) -> tuple[Replicas, World]:
    replicas = [await serve(aiohttp_client, create_app(settings)) for _ in range(count)]
    world = await seed_world(replicas[0].app[GATEWAY])
    fake_slack.register_app(world.slack.client_id, world.slack.client_secret.reveal())
    await install_token(replicas[0], world, fake_slack.mint_token(TEAM))
    return replicas, world


async def _one_upstream_call_for_both(replicas: Replicas, world: World, fake: FakeSlack) -> None:
    """A page listed by one replica is served to the other from Redis."""
    before = len(fake.calls_to("conversations.list"))
    limit = str(5 + before)  # a page no earlier request has cached
    assert await _status(list_channels(replicas[0], world, limit=limit)) == 200
    assert await _status(list_channels(replicas[1], world, limit=limit)) == 200
    assert len(fake.calls_to("conversations.list")) == before + 1


# TLS


async def test_tls_redis_with_the_ca_bundle_is_shared_by_replicas(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    fake_slack: FakeSlack,
    tls_redis: TlsRedis,
) -> None:
    settings = make_settings(
        SLACK_API_URL=fake_slack.api_url,
        GATEWAY_REDIS_URL=tls_redis.url,
        GATEWAY_CA_BUNDLE=str(tls_redis.ca_bundle),
    )
    replicas, world = await _replicas_with_a_tenant(aiohttp_client, settings, fake_slack)
    assert [await _redis_check(replica) for replica in replicas] == ["ok", "ok"]
    await _one_upstream_call_for_both(replicas, world, fake_slack)
    summary = await startup_summary(replicas[0].app)
    assert summary["redis_mode"] == f"node with TLS ({tls_redis.url})"
    check = await doctor_redis(settings)
    assert (check.status, check.detail) == (
        "ok",
        f"node with TLS ({tls_redis.url}) answers (key prefix provider-gateway)",
    )


async def test_tls_redis_without_the_ca_fails_closed_and_the_gateway_keeps_serving(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    fake_slack: FakeSlack,
    tls_redis: TlsRedis,
) -> None:
    """The server's certificate is not trusted: no Redis at all (never in clear), in-process."""
    settings = make_settings(SLACK_API_URL=fake_slack.api_url, GATEWAY_REDIS_URL=tls_redis.url)
    replicas, world = await _replicas_with_a_tenant(aiohttp_client, settings, fake_slack, 1)
    assert await _redis_check(replicas[0]) == "degraded"
    assert (await replicas[0].get("/readyz")).status == 200
    assert [await _status(list_channels(replicas[0], world)) for _ in range(3)] == [200] * 3
    check = await doctor_redis(settings)
    assert check.status == "fail"
    assert "does not answer (ConnectionError)" in check.detail


# Sentinel


def _sentinel_settings(
    make_settings: Callable[..., Settings], sentinels: SentinelSet, **env: str
) -> Settings:
    return make_settings(
        GATEWAY_REDIS_SENTINELS=sentinels.setting,
        GATEWAY_REDIS_SENTINEL_MASTER=MASTER_NAME,
        **env,
    )


async def test_the_gateway_follows_a_sentinel_failover_under_load(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    fake_slack: FakeSlack,
    own_sentinel_set: SentinelSet,
) -> None:
    sentinels = own_sentinel_set
    settings = _sentinel_settings(make_settings, sentinels, SLACK_API_URL=fake_slack.api_url)
    replicas, world = await _replicas_with_a_tenant(aiohttp_client, settings, fake_slack)
    assert [await _redis_check(replica) for replica in replicas] == ["ok", "ok"]
    await _one_upstream_call_for_both(replicas, world, fake_slack)
    old_master = sentinels.master_port()

    statuses: list[int] = []
    stop = asyncio.Event()
    user = "/v1/objects/$users/u1/channel_data/" + world.slack.id
    body = {"data": {"connections": [{"channel_id": "C1"}]}}
    assert await _status(replicas[0].put(user, json=body, headers=world.secret_headers())) == 200

    async def load() -> None:
        """Cached listings and channel data writes and reads, on both replicas."""
        while not stop.is_set():
            requests = [
                *(list_channels(replica, world) for replica in replicas),
                replicas[0].put(user, json=body, headers=world.secret_headers()),
                replicas[1].get(user, headers=world.secret_headers()),
            ]
            statuses.extend(await asyncio.gather(*(_status(r) for r in requests)))
            await asyncio.sleep(0.02)

    running = asyncio.ensure_future(load())
    await asyncio.sleep(0.3)
    sentinels.servers.kill(old_master)
    answered_before = len(statuses)
    deadline = time.monotonic() + 30
    while sentinels.master_port() in {0, old_master}:  # down after 1 s, then the election
        assert time.monotonic() < deadline, "no failover within 30 s"
        await asyncio.sleep(0.1)
    new_master = sentinels.master_port()
    assert len(statuses) > answered_before  # requests kept coming while there was no master
    while [await _redis_check(replica) for replica in replicas] != ["ok", "ok"]:
        assert time.monotonic() < deadline, "the replicas did not reach the new master"
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)  # and some load on the new master
    stop.set()
    await running

    assert statuses, "no load ran"
    assert set(statuses) == {200}, sorted(set(statuses))  # no 5xx (nor anything else) ever
    # Written after the failover by one replica, read by the other: through the new master
    # (the old one is gone), which is the promoted replica.
    await _one_upstream_call_for_both(replicas, world, fake_slack)
    assert "role:master" in cli(new_master, "INFO", "replication")
    # Each replica's announcement subscription followed the failover to the new master.
    for replica in replicas:
        while replica.app[LISTINGS].generations.subscriptions < 2:
            assert time.monotonic() < deadline, "announcements not resubscribed"
            await asyncio.sleep(0.1)
    subscribers = cli(new_master, "CLIENT", "LIST", "TYPE", "pubsub").splitlines()
    ours = [line for line in subscribers if " name=sentinel" not in line]  # Sentinels' hello
    assert len(ours) == 2, subscribers
    summary = await startup_summary(replicas[0].app)
    assert summary["redis"] == "ok"
    assert summary["redis_mode"] == f"sentinel (master 'gateway' via {sentinels.setting})"


async def test_sentinel_mode_takes_user_password_and_db_from_the_redis_url(
    sentinel_set: SentinelSet, redis_prefix: str
) -> None:
    master = sentinel_set.master_port()
    for port in sentinel_set.servers.processes:  # ACLs are not replicated
        if port not in sentinel_set.sentinels:
            assert cli(port, "ACL", "SETUSER", "gw", "on", ">s3cret", "~*", "+@all").strip() == "OK"
    topology = RedisTopology(
        sentinels=tuple(("127.0.0.1", port) for port in sentinel_set.sentinels),
        sentinel_master=MASTER_NAME,
    )
    # The host in the URL is ignored: the Sentinels name the master.
    backend = RedisBackend("redis://gw:s3cret@nowhere.invalid:1/5", redis_prefix, topology=topology)
    await backend.set("k", b"v", 60)
    await backend.close()
    scan = ("--scan", "--pattern", f"{redis_prefix}:*")
    assert cli(master, "-n", "5", *scan).split() == [f"{redis_prefix}:k"]
    assert cli(master, "-n", "0", *scan).split() == []
    wrong = RedisBackend("redis://gw:wrong@nowhere.invalid:1/5", redis_prefix, topology=topology)
    with pytest.raises(BackendUnavailable, match="AuthenticationError"):
        await wrong.ping()
    await wrong.close()


async def test_doctor_names_the_sentinel_mode(
    make_settings: Callable[..., Settings], sentinel_set: SentinelSet
) -> None:
    check = await doctor_redis(_sentinel_settings(make_settings, sentinel_set))
    assert check.status == "ok", check.detail
    assert check.detail.startswith(f"sentinel (master 'gateway' via {sentinel_set.setting})")


# Cluster


async def test_cluster_replicas_share_cache_entries_and_refuse_a_revoked_key(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    fake_slack: FakeSlack,
    redis_cluster: Cluster,
    redis_prefix: str,
) -> None:
    settings = make_settings(
        SLACK_API_URL=fake_slack.api_url,
        GATEWAY_REDIS_URL=redis_cluster.url,
        GATEWAY_REDIS_CLUSTER="true",
        GATEWAY_REDIS_PREFIX=redis_prefix,
    )
    replicas, world = await _replicas_with_a_tenant(aiohttp_client, settings, fake_slack)
    assert [await _redis_check(replica) for replica in replicas] == ["ok", "ok"]
    burst = await asyncio.gather(
        *(_status(list_channels(replicas[i % 2], world, limit="150")) for i in range(40))
    )
    assert burst == [200] * 40
    assert len(fake_slack.calls_to("conversations.list")) == 1  # one call for both replicas
    await _one_upstream_call_for_both(replicas, world, fake_slack)

    token = world.user_token(grants={object_uri("projects", "p1"): {"channel_data/read": [{}]}})
    path = f"/v1/objects/projects/p1/channel_data/{world.slack.id}"
    headers = [world.secret_headers(), world.public_headers(token)]
    for replica in replicas:
        for header in headers:
            assert await _status(replica.get(path, headers=header)) == 404
    environment = await world.gateway.environments.by_name(world.environment_name)
    assert environment is not None
    [pair] = [
        pair
        for pair in await world.gateway.key_pairs.for_environment(environment.id)
        if pair.public_key == world.public_key
    ]
    await world.gateway.key_pairs.revoke(pair.id, actor="test")
    pending = {(index, kind) for index in range(2) for kind in range(2)}
    deadline = time.monotonic() + 5  # CONTRACT §4: every replica within 5 s
    while pending and time.monotonic() < deadline:
        for index, kind in sorted(pending):
            if await _status(replicas[index].get(path, headers=headers[kind])) == 401:
                pending.discard((index, kind))
        await asyncio.sleep(0.2)
    assert not pending
    assert [await _redis_check(replica) for replica in replicas] == ["ok", "ok"]
    kinds = {  # what the requests above left in the cluster, over its nodes
        key.split(":")[1]
        for port in redis_cluster.ports
        for key in cli(port, "--scan", "--pattern", f"{redis_prefix}:*").split()
    }
    # Rate-limit budgets live only as long as they are spent (milliseconds here);
    # test_gcra.py runs them on the cluster.
    assert {"generation", "listing"} <= kinds
    summary = await startup_summary(replicas[0].app)
    assert summary["redis_mode"] == f"cluster (startup node {redis_cluster.url})"


async def test_a_cluster_node_dying_under_load_fails_no_operation(
    own_cluster: Cluster, redis_prefix: str
) -> None:
    """Keys on the dead node's slots fail, then the cluster reports itself down (CLUSTERDOWN,
    on which redis-py closes every connection of its client): each operation either works or
    runs in-process; none raises."""
    topology = RedisTopology(cluster=True)
    states = [
        SharedState(RedisBackend(own_cluster.url, redis_prefix, topology=topology))
        for _ in range(2)
    ]
    errors: list[BaseException] = []
    done = 0
    stop = asyncio.Event()

    async def work(state: SharedState, worker: int) -> None:
        nonlocal done
        while not stop.is_set():
            key = f"k{worker}:{done % 16}"  # spread over every node's slots
            try:
                await state.set(key, b"v", 30)
                await state.get(key)
                await state.hit(key + ":n", 1)
                await state.add(key + ":once", b"1", 30)
            except Exception as error:  # what the gateway would have answered 500 for
                errors.append(error)
            done += 1
            await asyncio.sleep(0.005)

    workers = [asyncio.ensure_future(work(states[i % 2], i)) for i in range(40)]
    await asyncio.sleep(0.3)
    own_cluster.servers.kill(own_cluster.ports[1])
    before, survivor = done, own_cluster.ports[2]
    deadline = time.monotonic() + 20
    while "cluster_state:fail" not in cli(survivor, "CLUSTER", "INFO"):
        assert time.monotonic() < deadline, "the cluster never noticed the dead node"
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.5)  # operations against a cluster that says it is down
    stop.set()
    await asyncio.gather(*workers)
    for state in states:
        await state.close()
    assert errors == []
    assert done > before
    assert all(state.degraded_since is not None for state in states)
