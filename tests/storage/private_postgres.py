"""A PostgreSQL cluster of a test's own (initdb/pg_ctl on a free port), to stop and start.

The shared server on 5432 is every test's; an outage test needs one it may take down. The
cluster runs as the `postgres` user when the suite runs as root (PostgreSQL refuses root) from
a directory that user owns, listens on loopback only, and is removed afterwards.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support import free_port

_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)  # newest first
_OWNER = "postgres"
# PostgreSQL refuses to run as root: as root the cluster is the postgres user's.
_AS_ROOT = os.geteuid() == 0
# Generous: the machine running the suite is shared and may be loaded.
_START_TIMEOUT_SECONDS = 60


def server_binaries() -> Path | None:
    """The directory holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    for bin_dir in _BIN_DIRS:
        if (bin_dir / "initdb").exists() and (bin_dir / "pg_ctl").exists():
            return bin_dir
    return None


@dataclass
class PrivatePostgres:
    bin_dir: Path
    root: Path  # owned by `postgres`: data directory, socket and log live here
    port: int

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def url(self, password: str | None = None) -> str:
        """The cluster's `postgres` database; trust authentication takes any password."""
        auth = f"postgres:{password}" if password else "postgres"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._pg_ctl(
            "start",
            "-w",
            "-t",
            str(_START_TIMEOUT_SECONDS),
            "-l",
            str(self.log_file),
            "-o",
            options,
        )

    def stop(self) -> None:
        """A fast shutdown, as an operator's restart or a failover does: open connections are
        terminated, transactions in flight roll back, committed ones stay."""
        self._pg_ctl("stop", "-m", "fast", "-w", "-t", str(_START_TIMEOUT_SECONDS))

    def stop_now(self) -> None:
        """Clean-up: an immediate shutdown, and no complaint if it is already down."""
        self._pg_ctl("stop", "-m", "immediate", "-w", check=False)

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        _as_owner(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args, check=check)


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A running cluster, stopped and deleted on exit."""
    bin_dir = server_binaries()
    assert bin_dir is not None, "PostgreSQL server binaries not found under /usr/lib/postgresql"
    # Not pytest's tmp_path: its parent directories are root's (mode 0700), out of the
    # postgres user's reach.
    root = Path(tempfile.mkdtemp(prefix="gateway-outage-pg-"))
    if _AS_ROOT:
        owner = pwd.getpwnam(_OWNER)
        os.chown(root, owner.pw_uid, owner.pw_gid)
    cluster = PrivatePostgres(bin_dir, root, free_port())
    try:
        _as_owner(
            str(bin_dir / "initdb"),
            "-D", str(cluster.data_dir),
            "-U", "postgres",
            "-A", "trust",
            "-E", "UTF8",
            "--locale=C",
            "--no-sync",
        )  # fmt: skip
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop_now()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _as_owner(*command: str, check: bool = True) -> None:
    result = subprocess.run(
        ["runuser", "-u", _OWNER, "--", *command] if _AS_ROOT else list(command),
        capture_output=True,
        text=True,
        check=False,
        timeout=_START_TIMEOUT_SECONDS + 30,
        cwd="/",
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed: {result.stderr.strip()}")
