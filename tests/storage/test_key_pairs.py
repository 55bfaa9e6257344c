"""Key pairs: listed without secrets, revoked whole (API keys and signing key), kept revoked."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from provider_gateway.declared import (
    ChannelsFile,
    DeclaredEnvironment,
    DeclaredKeys,
    apply_channels_file,
)
from provider_gateway.errors import NotFound
from provider_gateway.gateway import Gateway
from provider_gateway.keys import new_api_key, new_signing_key
from provider_gateway.storage.schema import audit_events


async def test_a_listed_pair_shows_the_public_key_and_four_characters_of_the_secret(
    gateway: Gateway,
) -> None:
    environment = await gateway.environments.create("listing", actor="test")
    issued = await gateway.credentials.issue(environment, actor="test")
    [pair] = await gateway.key_pairs.for_environment(environment.id)
    assert pair.id == issued.pair_id
    assert pair.public_key == issued.public_key
    assert pair.secret_key_hint == issued.secret_key[-4:]
    assert pair.revoked_at is None


async def test_revoking_a_pair_stops_both_keys_and_its_signing_key(gateway: Gateway) -> None:
    environment = await gateway.environments.create("revoking", actor="test")
    kept = await gateway.credentials.issue(environment, actor="test")
    revoked = await gateway.credentials.issue(environment, actor="test")
    assert len(await gateway.credentials.signing_public_pems(environment.id)) == 2

    pair = await gateway.key_pairs.revoke(revoked.pair_id, actor="cli")

    assert pair.revoked_at is not None
    assert await gateway.credentials.find(revoked.public_key) is None
    assert await gateway.credentials.find(revoked.secret_key) is None
    assert await gateway.credentials.find(kept.secret_key) is not None
    [remaining] = await gateway.credentials.signing_public_pems(environment.id)
    assert remaining.strip() in _public_pems(kept.signing_key_pem)
    again = await gateway.key_pairs.revoke(revoked.pair_id, actor="cli")
    assert again.revoked_at == pair.revoked_at  # revoking twice changes nothing
    async with gateway.engine.connect() as connection:
        actions = (
            await connection.execute(
                select(audit_events.c.action, audit_events.c.details).where(
                    audit_events.c.action == "api_keys.revoked"
                )
            )
        ).all()
    assert len(actions) == 1
    details = actions[0][1]
    assert details["pair_id"] == revoked.pair_id
    assert revoked.secret_key not in repr(details)


async def test_revoking_an_unknown_pair_is_not_found(gateway: Gateway) -> None:
    with pytest.raises(NotFound):
        await gateway.key_pairs.revoke("no-such-pair", actor="cli")


async def test_a_revoked_declared_key_stays_revoked_when_the_file_is_applied_again(
    gateway: Gateway,
) -> None:
    public_key, secret_key = new_api_key("public"), new_api_key("secret")
    declared = ChannelsFile(
        environments=[
            DeclaredEnvironment(
                name="declared",
                keys=[
                    DeclaredKeys(
                        public_key=public_key,
                        secret_key=secret_key,
                        signing_key=new_signing_key().private_pem,
                    )
                ],
            )
        ]
    )
    await apply_channels_file(gateway, declared)
    environment = await gateway.environments.by_name("declared")
    assert environment is not None
    [pair] = await gateway.key_pairs.for_environment(environment.id)
    assert pair.public_key == public_key  # declared keys form one pair, like issued ones
    await gateway.key_pairs.revoke(pair.id, actor="cli")

    await apply_channels_file(gateway, declared)

    assert await gateway.credentials.find(secret_key) is None
    assert await gateway.credentials.signing_public_pems(environment.id) == []
    assert len(await gateway.key_pairs.for_environment(environment.id)) == 1


def _public_pems(private_pem: str) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from provider_gateway.keys import public_pem_of

    private = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    return public_pem_of(private)
