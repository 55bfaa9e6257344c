"""`environments create|list`."""

from __future__ import annotations

import argparse
import re
from typing import Any

from provider_gateway.commands import CLI_ACTOR, CommandError
from provider_gateway.gateway import Gateway
from provider_gateway.models import Environment

_ENVIRONMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


async def create(gateway: Gateway, args: argparse.Namespace) -> Any:
    if not _ENVIRONMENT_NAME.match(args.name):
        raise CommandError("an environment name is letters, digits, '.', '_' or '-' (1-100)")
    return describe(await gateway.environments.create(args.name, actor=CLI_ACTOR))


async def list_all(gateway: Gateway, _args: argparse.Namespace) -> Any:
    environments = sorted(await gateway.environments.all(), key=lambda e: e.created_at)
    return [describe(environment) for environment in environments]


def describe(environment: Environment) -> dict[str, Any]:
    return {
        "name": environment.name,
        "id": environment.id,
        "created_at": environment.created_at.isoformat(),
    }
