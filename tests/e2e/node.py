"""Run a node script of the e2e suite while the gateway keeps serving on this event loop.

A script stops at each `@@checkpoint {json}` line until it reads "ok" (or "fail <why>") on
stdin: the test checks the gateway's storage there, at the moment the page shows a state.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tests.e2e.stack import E2E_DIR

Check = Callable[[str, dict[str, Any]], Awaitable[None]]
PREFIX = "@@checkpoint "


@dataclass
class NodeRun:
    returncode: int
    lines: list[str]
    checkpoints: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise AssertionError("node is not installed (Node 20+); tests/e2e/setup needs it too")
    return node


async def run_node(
    args: list[str], *, env: dict[str, str], check: Check | None = None, limit: float = 180
) -> NodeRun:
    """Run `node *args` in tests/e2e; a failed check fails the script and is raised here."""
    process = await asyncio.create_subprocess_exec(
        node_binary(),
        *args,
        cwd=E2E_DIR,
        env={**os.environ, **env},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    assert process.stdin is not None
    stdin = process.stdin
    run = NodeRun(returncode=-1, lines=[])
    failure: Exception | None = None

    async def answer(line: str) -> None:
        nonlocal failure
        payload = json.loads(line.removeprefix(PREFIX))
        name = payload.pop("name")
        run.checkpoints.append(name)
        reply = "ok"
        try:
            if check is not None:
                await check(name, payload)
        except Exception as error:
            failure = failure or error
            reply = "fail " + " ".join(str(error).split())[:300]
        stdin.write(reply.encode() + b"\n")
        await stdin.drain()

    async def pump() -> None:
        assert process.stdout is not None
        while raw := await process.stdout.readline():
            line = raw.decode(errors="replace").rstrip("\n")
            run.lines.append(line)
            if line.startswith(PREFIX):
                await answer(line)
        run.returncode = await process.wait()

    try:
        await asyncio.wait_for(pump(), limit)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"node {' '.join(args)} ran over {limit}s:\n{run.output}") from None
    finally:
        stdin.close()
    if failure is not None:
        raise AssertionError(f"{failure}\n--- node output ---\n{run.output}") from failure
    return run
