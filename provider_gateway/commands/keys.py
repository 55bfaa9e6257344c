"""`keys create|list|revoke`: a key pair is a pk_, an sk_ and a user-token signing key."""

from __future__ import annotations

import argparse
from typing import Any

from provider_gateway.auth import LOOKUP_TTL_SECONDS
from provider_gateway.commands import CLI_ACTOR, CommandError, environment_named
from provider_gateway.errors import NotFound
from provider_gateway.gateway import Gateway
from provider_gateway.storage.key_pairs import KeyPair


async def create(gateway: Gateway, args: argparse.Namespace) -> Any:
    environment = await environment_named(gateway, args.environment)
    issued = await gateway.credentials.issue(environment, actor=CLI_ACTOR)
    return {
        "id": issued.pair_id,
        "environment": environment.name,
        "public_key": issued.public_key,
        "secret_key": issued.secret_key,
        "signing_key": issued.signing_key_pem,
    }


async def list_pairs(gateway: Gateway, args: argparse.Namespace) -> Any:
    environment = await environment_named(gateway, args.environment)
    return [describe(pair) for pair in await gateway.key_pairs.for_environment(environment.id)]


async def revoke(gateway: Gateway, args: argparse.Namespace) -> Any:
    try:
        pair = await gateway.key_pairs.revoke(args.id, actor=CLI_ACTOR)
    except NotFound:
        raise CommandError(f"no key pair with id {args.id!r} (see: keys list)") from None
    # Replicas trust a cached lookup this long: the pair stops working everywhere by then.
    return {**describe(pair), "refused_everywhere_within_seconds": LOOKUP_TTL_SECONDS + 1}


def describe(pair: KeyPair) -> dict[str, Any]:
    return {
        "id": pair.id,
        "public_key": pair.public_key,
        "secret_key_hint": pair.secret_key_hint,
        "created_at": pair.created_at.isoformat(),
        "revoked_at": pair.revoked_at.isoformat() if pair.revoked_at else None,
    }
