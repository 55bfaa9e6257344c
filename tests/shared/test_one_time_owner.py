"""One-time keys with an owner: usable again by the owner that first claimed them, by no one
else (TeamsKit's nonce-less state, see tests/ms_teams/test_reconnect.py)."""

from __future__ import annotations

import asyncio

from provider_gateway.shared.state import SharedOneTimeKeys, SharedState


async def test_an_owned_key_is_claimed_again_only_by_its_owner(shared_state: SharedState) -> None:
    keys = SharedOneTimeKeys(shared_state)
    results = await asyncio.gather(*(keys.claim("s", 60, owner=f"o{i % 2}") for i in range(20)))
    first = "o0" if results[0] else "o1"
    assert all(result == (f"o{i % 2}" == first) for i, result in enumerate(results))
    assert await keys.claim("s", 60, owner=first) is True


async def test_an_unowned_claim_never_matches_an_owned_one(shared_state: SharedState) -> None:
    keys = SharedOneTimeKeys(shared_state)
    assert await keys.claim("plain", 60) is True
    assert await keys.claim("plain", 60) is False
    assert await keys.claim("plain", 60, owner="1") is False
    assert await keys.claim("owned", 60, owner="x") is True
    assert await keys.claim("owned", 60) is False
