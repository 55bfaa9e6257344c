"""Real redis-server processes of a test's own: a TLS node, a Sentinel set, a Cluster.

Each runs on free loopback ports in a temporary directory and is killed by its fixture.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

from tests.support import free_port

MASTER_NAME = "gateway"
_START_SECONDS = 10.0


def _wait(condition: Callable[[], bool], what: str, seconds: float = _START_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def cli(port: int, *command: str) -> str:
    """`redis-cli -p PORT COMMAND...` (plain TCP), its output or "" when it cannot connect."""
    result = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *command],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return result.stdout if result.returncode == 0 else ""


@dataclass
class RedisProcesses:
    """Started redis-server processes by port; `stop()` kills every one still running."""

    directory: Path
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(
        self, *arguments: str, port: int | None = None, config: str | None = None, tls: bool = False
    ) -> int:
        """Start redis-server (a Sentinel with `config`; TLS only on `port` with `tls`)."""
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed (scripts/ensure-services needs it)")
        port = port or free_port()
        command = ["redis-server"]
        if config is not None:  # Sentinels rewrite their own configuration file
            path = self.directory / f"sentinel-{port}.conf"
            path.write_text(config.format(port=port, dir=self.directory))
            command += [str(path), "--sentinel"]
        else:
            plain = "0" if tls else str(port)
            command += ["--port", plain, *_EPHEMERAL, "--dir", str(self.directory)]
        with (self.directory / f"redis-{port}.log").open("ab") as log:  # to read on failure
            self.processes[port] = subprocess.Popen(
                [*command, *arguments], stdout=log, stderr=subprocess.STDOUT
            )
        return port

    def kill(self, port: int) -> None:
        process = self.processes.pop(port)
        process.kill()
        process.wait(timeout=10)

    def stop(self) -> None:
        for port in list(self.processes):
            self.kill(port)


_EPHEMERAL = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no")


@dataclass(frozen=True)
class TlsRedis:
    port: int
    ca_bundle: Path

    @property
    def url(self) -> str:
        return f"rediss://localhost:{self.port}/0"


def start_tls_redis(servers: RedisProcesses) -> TlsRedis:
    """A node that speaks TLS only (no plaintext port), its certificate from a test CA."""
    ca = trustme.CA()
    certificate = ca.issue_cert("localhost", "127.0.0.1")
    directory = servers.directory
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    certificate.cert_chain_pems[0].write_to_path(str(directory / "redis.crt"))
    certificate.private_key_pem.write_to_path(str(directory / "redis.key"))
    port = free_port()
    servers.start(
        *("--tls-port", str(port), "--tls-auth-clients", "no"),
        *("--tls-cert-file", str(directory / "redis.crt")),
        *("--tls-key-file", str(directory / "redis.key")),
        *("--tls-ca-cert-file", str(directory / "ca.pem")),
        port=port,
        tls=True,
    )
    _wait(lambda: _listening(port), "the TLS Redis")
    return TlsRedis(port, directory / "ca.pem")


_SENTINEL_CONFIG = """port {port}
bind 127.0.0.1
dir {dir}
sentinel monitor %(name)s 127.0.0.1 %(master)d 2
sentinel down-after-milliseconds %(name)s 1000
sentinel failover-timeout %(name)s 3000
sentinel parallel-syncs %(name)s 1
"""


@dataclass
class SentinelSet:
    servers: RedisProcesses
    sentinels: list[int]

    @property
    def setting(self) -> str:
        """GATEWAY_REDIS_SENTINELS"""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinels)

    def master_port(self) -> int:
        """The master the Sentinels name now (0 while none does)."""
        for port in self.sentinels:
            reply = cli(port, "SENTINEL", "get-master-addr-by-name", MASTER_NAME).split()
            if len(reply) == 2:
                return int(reply[1])
        return 0

    def settled(self, master: int) -> bool:
        """Every Sentinel sees `master`, one replica in sync and both other Sentinels."""
        for port in self.sentinels:
            fields = cli(port, "SENTINEL", "master", MASTER_NAME).split()
            state = dict(zip(fields[::2], fields[1::2], strict=False))
            if (
                state.get("port") != str(master)
                or state.get("num-slaves") != "1"
                or state.get("num-other-sentinels") != "2"
                or "s_down" in state.get("flags", "")
            ):
                return False
        return "master_link_status:up" in cli(_replica_of(self, master), "INFO", "replication")


def _replica_of(sentinels: SentinelSet, master: int) -> int:
    ports = [port for port in sentinels.servers.processes if port not in sentinels.sentinels]
    return next((port for port in ports if port != master), 0)


def start_sentinel_set(servers: RedisProcesses) -> SentinelSet:
    """A master, its replica and three Sentinels (quorum 2, down after 1 s)."""
    no_delay = ("--repl-diskless-sync-delay", "0")  # Redis waits 5 s for more replicas
    master = servers.start(*no_delay)
    _wait(lambda: cli(master, "PING").strip() == "PONG", "the master")
    replica = servers.start(*no_delay, "--replicaof", "127.0.0.1", str(master))
    # In sync before the Sentinels start: their first look at the master then lists the
    # replica (the next is 10 s later).
    _wait(lambda: "master_link_status:up" in cli(replica, "INFO", "replication"), "the replica")
    config = _SENTINEL_CONFIG % {"name": MASTER_NAME, "master": master}
    sentinels = SentinelSet(servers, [servers.start(config=config) for _ in range(3)])
    _wait(lambda: sentinels.settled(master), "the Sentinels to see each other and the replica")
    return sentinels


@dataclass(frozen=True)
class Cluster:
    ports: list[int]
    servers: RedisProcesses

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"


def start_cluster(servers: RedisProcesses, node_timeout_ms: int = 15_000) -> Cluster:
    """Three masters sharing the 16384 slots, no replicas."""
    ports = [free_port() for _ in range(3)]
    for port in ports:
        servers.start(
            *("--cluster-enabled", "yes"),
            *("--cluster-node-timeout", str(node_timeout_ms)),
            # The bus would be port + 10000 (too high for most free ports, or taken).
            *("--cluster-port", str(free_port())),
            *("--cluster-config-file", str(servers.directory / f"nodes-{port}.conf")),
            port=port,
        )
    for port in ports:
        _wait(lambda port=port: cli(port, "PING").strip() == "PONG", f"cluster node {port}")
    created = subprocess.run(
        [
            "redis-cli",
            "--cluster",
            "create",
            *(f"127.0.0.1:{port}" for port in ports),
            *("--cluster-replicas", "0", "--cluster-yes"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    for port in ports:
        _wait(lambda port=port: "cluster_state:ok" in cli(port, "CLUSTER", "INFO"), "the cluster")
    return Cluster(ports, servers)
