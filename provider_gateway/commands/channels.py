"""`channels add|list|show|update|remove`: registered Slack and Entra apps, never their secrets."""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path
from typing import Any

from provider_gateway.commands import (
    CLI_ACTOR,
    CommandError,
    channel_with_id,
    entra_client_id,
    environment_named,
    first_line,
    secret_value,
)
from provider_gateway.config import Secret
from provider_gateway.gateway import Gateway
from provider_gateway.models import Channel, Provider
from provider_gateway.storage.channels import CHANNEL_CACHE_SECONDS


async def add(gateway: Gateway, args: argparse.Namespace) -> Any:
    provider: Provider = args.provider
    if (args.client_secret is None) == (args.client_certificate is None):
        raise CommandError("give exactly one of --client-secret and --client-certificate")
    credential = _client_credential(provider, args)
    client_id = _client_id(provider, args.client_id)
    if args.signing_secret is not None and provider != "slack":
        raise CommandError("--signing-secret is for slack channels")
    channel_id = None
    if args.channel_id is not None:
        try:
            channel_id = str(uuid.UUID(args.channel_id))
        except ValueError:
            raise CommandError(f"--id {args.channel_id!r} is not a UUID") from None
    environment_id = None
    if args.environment is not None:
        environment_id = (await environment_named(gateway, args.environment)).id
    channel = await gateway.channels.add(
        provider=provider,
        client_id=client_id,
        client_secret=Secret(credential),
        app_id=args.app_id,
        channel_id=channel_id,
        environment_id=environment_id,
        signing_secret=_signing_secret(args),
        actor=CLI_ACTOR,
    )
    return await describe(gateway, channel)


async def list_all(gateway: Gateway, _args: argparse.Namespace) -> Any:
    return [await describe(gateway, channel) for channel in await gateway.channels.all()]


async def show(gateway: Gateway, args: argparse.Namespace) -> Any:
    return await describe(gateway, await channel_with_id(gateway, args.id))


async def update(gateway: Gateway, args: argparse.Namespace) -> Any:
    channel = await channel_with_id(gateway, args.id)
    if args.client_secret is not None and args.client_certificate is not None:
        raise CommandError("give one of --client-secret and --client-certificate, not both")
    if args.client_secret == "-" and args.signing_secret == "-":  # noqa: S105 - stdin marker
        raise CommandError("only one of --client-secret and --signing-secret can read stdin")
    if args.signing_secret is not None and channel.provider != "slack":
        raise CommandError("--signing-secret is for slack channels")
    changes = (args.client_id, args.client_secret, args.client_certificate, args.app_id)
    if all(value is None for value in (*changes, args.signing_secret)):
        raise CommandError(
            "nothing to change: give --client-id, --client-secret, --app-id or --signing-secret"
        )
    credential = None
    if args.client_secret is not None or args.client_certificate is not None:
        credential = Secret(_client_credential(channel.provider, args))
    updated = await gateway.channels.update(
        channel,
        client_id=_client_id(channel.provider, args.client_id) if args.client_id else None,
        client_secret=credential,
        app_id=args.app_id,
        signing_secret=_signing_secret(args),
        actor=CLI_ACTOR,
    )
    # Running replicas keep a channel for CHANNEL_CACHE_SECONDS; msal and the Graph token
    # cache are keyed by the secret's hash, so a new secret gets new tokens at once.
    return {
        **await describe(gateway, updated),
        "seen_everywhere_within_seconds": CHANNEL_CACHE_SECONDS,
    }


async def remove(gateway: Gateway, args: argparse.Namespace) -> Any:
    from provider_gateway.storage.connections import ChannelInUse, Connections

    channel = await channel_with_id(gateway, args.id)
    connections = Connections(gateway.engine, gateway.key_ring)
    try:
        removal = await connections.remove_channel(channel, force=args.force, actor=CLI_ACTOR)
    except ChannelInUse as in_use:
        noun = "tenant is" if in_use.count == 1 else "tenants are"
        raise CommandError(
            f"{in_use.count} {noun} connected through channel {channel.id} "
            "(see: tenants list --channel ID); --force removes it anyway, with their data"
        ) from None
    gateway.channels.forget(channel.id)
    return {
        "id": channel.id,
        "removed": True,
        "channel_data_removed": removal.channel_data_removed,
        "connected_tenants_removed": removal.connected,
    }


async def describe(gateway: Gateway, channel: Channel) -> dict[str, Any]:
    environment = (
        await gateway.environments.by_id(channel.environment_id) if channel.environment_id else None
    )
    return {
        "id": channel.id,
        "provider": channel.provider,
        "client_id": channel.client_id,
        "app_id": channel.app_id,
        "events": channel.signing_secret is not None,
        "environment": environment.name if environment else None,
        "created_at": channel.created_at.isoformat(),
    }


def _client_id(provider: Provider, value: str) -> str:
    if not value.strip():
        raise CommandError("--client-id must not be empty")
    return entra_client_id(value) if provider == "ms-teams" else value.strip()


def _client_credential(provider: Provider, args: argparse.Namespace) -> str:
    if args.client_certificate is None:
        return secret_value(args.client_secret, "--client-secret")
    if provider != "ms-teams":
        raise CommandError("--client-certificate is for ms-teams channels")
    from provider_gateway.ms_teams.credentials import certificate_credential

    try:
        pem = Path(args.client_certificate).read_text(encoding="ascii")
        credential = certificate_credential(pem)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CommandError(f"--client-certificate: {first_line(exc)}") from None
    if credential is None:
        raise CommandError("--client-certificate: not a PEM file")
    return pem


def _signing_secret(args: argparse.Namespace) -> Secret | None:
    if args.signing_secret is None:
        return None
    return Secret(secret_value(args.signing_secret, "--signing-secret"))
