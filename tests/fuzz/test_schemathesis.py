"""schemathesis against the OpenAPI document the gateway serves, on PostgreSQL, with a real
secret key and with a public key plus a user token: no operation answers a 5xx, every answer's
body matches the document, and the gateway's own /v1/ operations answer only the statuses the
document lists. (Knock's seed operations list only 200 and 403 and take the tenant reference
as any string: their 401s and 422s are Knock's behaviour, not the gateway's to re-document.)"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.schemas import APIOperation

import provider_gateway
from tests.conftest import ADMIN_POSTGRES_URL, _admin
from tests.fuzz.served import CONNECTED, ServedGateway, served_gateway
from tests.fuzz.strategies import scaled
from tests.support import tenant_uri

pytestmark = pytest.mark.postgres
USER = "user-1"  # the `sub` of the public-key caller's user token
TEAM_GUID = "00000000-0000-4000-8000-000000000000"  # the fake Graph's first team


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    """One database and one served gateway for every operation of the module."""
    name = f"gateway_test_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        base = ADMIN_POSTGRES_URL.rsplit("/", 1)[0]
        with served_gateway(f"{base}/{name}", tmp_path_factory.mktemp("served")) as gateway:
            yield gateway
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _headers(served: ServedGateway, caller: str) -> dict[str, str]:
    world = served.world
    if caller == "secret":
        return world.secret_headers()
    every_grant = {
        grant: [{}]
        for grant in (
            "slack/channels_read",
            "ms_teams/channels_read",
            "channel_data/read",
            "channel_data/write",
        )
    }
    token = world.user_token(USER, grants={tenant_uri(CONNECTED): every_grant})
    return world.public_headers(token)


ADDITIONS = Path(provider_gateway.__file__).parent / "openapi" / "gateway-additions.yml"
OWN_PATHS = {path for path in yaml.safe_load(ADDITIONS.read_text())["paths"] if path[:4] == "/v1/"}


def _checks(operation: APIOperation, caller: str) -> list[Any]:
    checks: list[Any] = [not_a_server_error]
    # revoke_access answers a public-key caller the bare string "ok", which SlackKit and
    # TeamsKit compare against, not the seed's {"ok": "ok"} (CONTRACT §3).
    if not (caller == "public" and operation.path.endswith("/revoke_access")):
        checks.append(response_schema_conformance)
    if operation.path in OWN_PATHS:
        checks.append(status_code_conformance)
    return checks


def _operations(served: ServedGateway) -> list[APIOperation]:
    """Every operation of the document as the gateway serves it."""
    schema = schemathesis.openapi.from_url(f"{served.base_url}/openapi.json", timeout=30)
    return [result.ok() for result in schema.get_all_operations()]


def _steer(case: schemathesis.Case, served: ServedGateway) -> None:
    """Point the case at what exists (the seeded channels, the connected tenant, its user),
    leaving schemathesis the other values: random ids mostly stop at a 404 or 422."""
    world, path = served.world, case.operation.path
    reference = json.dumps({"collection": "$tenants", "object_id": CONNECTED})
    known = {
        "channel_id": world.teams.id if "/ms-teams/" in path else world.slack.id,
        "collection": "$tenants",
        "object_id": CONNECTED,
        "user_id": USER,
    }
    case.path_parameters = {
        name: known.get(name, value) for name, value in (case.path_parameters or {}).items()
    }
    query = dict(case.query or {})
    if path.startswith("/v1/providers/slack/"):
        query["access_token_object"] = reference
    elif path.startswith("/v1/providers/ms-teams/"):
        query["ms_teams_tenant_object"] = reference
        if path.endswith("/channels"):
            query["team_id"] = TEAM_GUID
    case.query = query


def _failures(served: ServedGateway, caller: str, statuses: Counter[str]) -> list[str]:
    """Run each operation's examples (valid and invalid by the schema) and collect, per
    operation, what failed a check: a 5xx, a body off the document, an unlisted status."""
    found: list[str] = []
    served.reconnect()
    for operation in _operations(served):
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        # Negative cases for a document this strict are mostly filtered: fine, not a failure.
        @settings(scaled(25), suppress_health_check=list(HealthCheck))
        @given(case=cases, steer=st.booleans())
        def check(case: schemathesis.Case, steer: bool) -> None:
            if steer:
                _steer(case, served)
            with requests.Session() as session:
                response = case.call_and_validate(
                    base_url=served.base_url,
                    session=session,
                    headers=_headers(served, caller),
                    checks=_checks(case.operation, caller),
                    timeout=30,
                )
            statuses[f"{case.operation.label} {response.status_code}"] += 1

        try:
            check()
        except (Exception, BaseExceptionGroup) as failure:  # schemathesis: FailureGroup
            found.append(f"{operation.label}: {failure}")
    return found


def _reached(statuses: Counter[str]) -> set[str]:
    """The operations that answered 2xx at least once: the run got past auth and validation."""
    return {label.rsplit(" ", 1)[0] for label in statuses if label.rsplit(" ", 1)[1][0] == "2"}


def test_every_operation_keeps_to_the_document_for_a_secret_key(served: ServedGateway) -> None:
    statuses: Counter[str] = Counter()
    assert _failures(served, "secret", statuses) == []
    assert len(_reached(statuses)) >= 12, sorted(statuses.items())


def test_every_operation_keeps_to_the_document_for_a_public_key_and_user_token(
    served: ServedGateway,
) -> None:
    statuses: Counter[str] = Counter()
    assert _failures(served, "public", statuses) == []
    assert len(_reached(statuses)) >= 8, sorted(statuses.items())
