"""The CLI's commands, one module per noun; each handler takes the Gateway and parsed args
and returns what is printed as JSON. Imported only when its command runs."""

from __future__ import annotations

import sys
import uuid

from provider_gateway.config import Settings
from provider_gateway.gateway import Gateway
from provider_gateway.models import Channel, Environment

CLI_ACTOR = "cli"


class CommandError(Exception):
    """Bad input to a command; printed as one line."""


def first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def secret_value(value: str, flag: str) -> str:
    """`value`, or a line of stdin when it is `-` (so the secret stays out of shell history)."""
    read_stdin = value == "-"
    secret = sys.stdin.readline().strip() if read_stdin else value
    if not secret:
        raise CommandError(f"{flag} must not be empty")
    return secret


def entra_client_id(value: str, flag: str = "--client-id") -> str:
    """An Entra application (client) id is a GUID; anything else can never get a token."""
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise CommandError(
            f"{flag} {value!r} is not an Entra application (client) id, which is a GUID "
            "like 00000000-0000-0000-0000-000000000000"
        ) from None


async def environment_named(gateway: Gateway, name: str) -> Environment:
    environment = await gateway.environments.by_name(name)
    if environment is None:
        raise CommandError(f"no environment named {name!r}")
    return environment


async def channel_with_id(gateway: Gateway, channel_id: str) -> Channel:
    channel = await gateway.channels.get(channel_id)
    if channel is None:
        raise CommandError(f"no channel with id {channel_id!r} (see: channels list)")
    return channel


def require_existing_database(settings: Settings) -> None:
    """A read-only command never creates a SQLite database: a missing one means it runs in
    another directory than `serve` (or with another GATEWAY_DATA_DIR)."""
    from provider_gateway.storage.database import sqlite_path

    path = sqlite_path(settings)
    if path is not None and not path.exists():
        raise CommandError(
            f"no database at {path}: run this where `serve` runs, or set GATEWAY_DATA_DIR "
            "(default ./.provider-gateway, in the working directory) or GATEWAY_DATABASE_URL"
        )
