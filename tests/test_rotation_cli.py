"""`rotate-encryption-key` at scale, as an operator runs it: progress on a terminal, Ctrl+C
stops it cleanly between batches, and running it again resumes without redoing work."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

from sqlalchemy import func
from sqlalchemy import select as sql_select

from provider_gateway.config import Secret, Settings
from provider_gateway.crypto import KeyRing
from provider_gateway.gateway import open_gateway
from provider_gateway.storage.blind_index import BlindIndex
from provider_gateway.storage.clock import utcnow
from provider_gateway.storage.schema import channel_data
from tests.conftest import KEY_A, KEY_B

ROWS = 4000


async def _seed(settings: Settings, rows: int) -> None:
    """`rows` tenants holding Slack tokens under KEY_A, written in one bulk insert."""
    async with open_gateway(settings, run_migrations=True) as gateway:
        environment = await gateway.environments.create(f"env-{uuid.uuid4().hex[:8]}", actor="t")
        channel = await gateway.channels.add(
            provider="slack",
            client_id="1.2",
            client_secret=Secret("s"),
            environment_id=environment.id,
            actor="t",
        )
        index, now = BlindIndex(gateway.key_ring), utcnow()
        values = []
        for number in range(rows):
            payload = {"token": {"access_token": f"xoxb-{number}", "team_id": f"T{number}"}}
            values.append(
                {
                    "environment_id": environment.id,
                    "channel_id": channel.id,
                    "recipient_kind": "object",
                    "collection": "$tenants",
                    "recipient_id": f"tenant-{number}",
                    "payload_encrypted": gateway.key_ring.encrypt(json.dumps(payload).encode()),
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                    **index.columns(payload),
                }
            )
        async with gateway.engine.begin() as connection:
            await connection.execute(channel_data.insert(), values)


async def _under(settings: Settings, key: str) -> int:
    key_id = BlindIndex(KeyRing((Secret(key),))).current_key_id
    async with (
        open_gateway(settings, run_migrations=False) as gateway,
        gateway.engine.connect() as connection,
    ):
        query = sql_select(func.count()).where(channel_data.c.key_id == key_id)
        return int((await connection.execute(query)).scalar_one())


def _environ(settings: Settings, keys: str) -> dict[str, str]:
    return {
        **os.environ,
        "GATEWAY_DATA_DIR": str(settings.data_dir),
        "GATEWAY_DATABASE_URL": settings.database_url.reveal(),
        "GATEWAY_ENCRYPTION_KEYS": keys,
        "GATEWAY_LOG_LEVEL": "warning",
    }


def _interrupt_once_progress_shows(environ: dict[str, str]) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal; Ctrl+C as soon as some rows are done."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "provider_gateway", "rotate-encryption-key", "--batch-size", "5"],
        stdout=subprocess.PIPE,
        stderr=terminal,
        env=environ,
        text=True,
    )
    os.close(terminal)
    shown, deadline = "", time.monotonic() + 60
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if select.select([controller], [], [], 0.1)[0]:
                shown += os.read(controller, 4096).decode(errors="replace")
            if re.search(r"\r[1-9][\d,]*/[\d,]+ rows", shown):
                process.send_signal(signal.SIGINT)
                break
        out, _ = process.communicate(timeout=60)
        while select.select([controller], [], [], 0.2)[0]:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            shown += chunk.decode(errors="replace")
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
    return process.returncode, out, shown


def test_interrupted_rotation_resumes_where_it_stopped(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(GATEWAY_ENCRYPTION_KEYS=KEY_A)
    asyncio.run(_seed(settings, ROWS))

    code, out, terminal = _interrupt_once_progress_shows(_environ(settings, f"{KEY_B},{KEY_A}"))
    assert code == 130, terminal
    assert out == ""
    assert "Traceback" not in terminal
    assert re.search(r"rows \(\d+%\), [\d,]+ rows/s, about .+ left", terminal), terminal
    interrupted = re.search(r"interrupted after ([\d,]+) of ([\d,]+) rows", terminal)
    assert interrupted, terminal
    done_before = asyncio.run(_under(settings, KEY_B))
    assert 0 < done_before < ROWS
    assert done_before % 5 == 0  # whole batches only: the one in flight rolled back

    resumed = subprocess.run(
        [sys.executable, "-m", "provider_gateway", "rotate-encryption-key"],
        capture_output=True,
        text=True,
        env=_environ(settings, f"{KEY_B},{KEY_A}"),
        timeout=120,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr == ""  # no terminal: no progress drawn
    report = json.loads(resumed.stdout)
    assert report["rotated"] == ROWS - done_before  # the channel's secret went first
    assert report["already_current"] == done_before + 1
    assert asyncio.run(_under(settings, KEY_B)) == ROWS
