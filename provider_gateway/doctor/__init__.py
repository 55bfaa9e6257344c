"""`provider-gateway doctor`: every misconfiguration it can detect, one line per check.

Read-only: it creates no database and generates no key, and the only upstream calls are
the ones that prove app credentials (a dummy code to Slack, a client-credentials token
from Entra), which change nothing anywhere.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from provider_gateway.config import Settings

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return f"{self.status:<5} {self.name}: {self.detail}"

    def as_json(self) -> dict[str, Any]:
        return {"check": self.name, "status": self.status, "detail": self.detail, **self.extra}


def run_doctor(settings: Settings, *, as_json: bool) -> int:
    """Print every check; exit 1 when any failed."""
    checks = asyncio.run(diagnose(settings))
    if as_json:
        print(json.dumps([check.as_json() for check in checks], indent=2))
    else:
        print("\n".join(check.line() for check in checks))
    return 1 if any(check.status == "fail" for check in checks) else 0


async def diagnose(settings: Settings) -> list[Check]:
    from provider_gateway.doctor.apps import app_credentials
    from provider_gateway.doctor.local import Local, public_url, redis

    checks = [*public_url(settings), await redis(settings)]
    async with Local.open(settings) as local:
        checks.extend(local.checks)
        if local.ready:
            checks.extend(await app_credentials(settings, local))
    order = ["database", "encryption_keys", "redis", "public_url", "allowed_origins"]
    return sorted(checks, key=lambda c: order.index(c.name) if c.name in order else len(order))
