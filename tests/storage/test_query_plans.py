"""Every query the request path runs uses an index at 100,000 tenants (PostgreSQL).

The queries are not restated here: the stores run them for real against a seeded, ANALYZEd
database while a listener records each statement with its parameters, and then each one is
EXPLAINed as it ran. A sequential scan of a big table fails the test.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from provider_gateway.config import Secret, load_settings
from provider_gateway.gateway import Gateway, open_gateway
from provider_gateway.models import Recipient
from provider_gateway.storage.audit import AuditQuery
from provider_gateway.storage.blind_index import BlindIndex
from tests.conftest import KEY_A

pytestmark = pytest.mark.postgres

TENANTS = 100_000
AUDIT_EVENTS = 100_000
BIG_TABLES = ("channel_data", "audit_events")
NOW = datetime(2027, 1, 1, tzinfo=UTC)


@pytest.fixture
async def seeded(postgres_url: str, tmp_path: Any) -> AsyncIterator[tuple[Gateway, dict[str, Any]]]:
    settings = load_settings(
        {
            "GATEWAY_DATA_DIR": str(tmp_path),
            "GATEWAY_DATABASE_URL": postgres_url,
            "GATEWAY_ENCRYPTION_KEYS": KEY_A,
        }
    )
    async with open_gateway(settings, run_migrations=True) as gateway:
        world = await _seed(gateway)
        yield gateway, world


async def _seed(gateway: Gateway) -> dict[str, Any]:
    environment = await gateway.environments.create("production", actor="test")
    others = [await gateway.environments.create(f"env-{i}", actor="test") for i in range(3)]
    keys = await gateway.credentials.issue(environment, actor="test")
    slack = await gateway.channels.add(
        provider="slack",
        client_id="1.2",
        client_secret=_secret(),
        environment_id=None,
        actor="test",
    )
    teams = await gateway.channels.add(
        provider="ms-teams",
        client_id=str(uuid.uuid4()),
        client_secret=_secret(),
        environment_id=None,
        actor="test",
    )
    # One real ciphertext for every row (the planner does not look inside it), written by
    # PostgreSQL itself: a bulk insert of 100,000 rows in well under a second.
    payload = gateway.key_ring.encrypt(b'{"connections":[],"token":{"access_token":"xoxb-1"}}')
    key_id = BlindIndex(gateway.key_ring).current_key_id
    environment_ids = [environment.id, *(other.id for other in others)]
    async with gateway.engine.begin() as connection:
        await connection.execute(
            text(
                """
                INSERT INTO channel_data (environment_id, channel_id, recipient_kind, collection,
                    recipient_id, payload_encrypted, version, created_at, updated_at,
                    slack_team_hmac, key_id)
                SELECT (CAST(:environments AS text[]))[1 + g % 4],
                    CASE WHEN g % 2 = 0 THEN CAST(:slack AS text) ELSE CAST(:teams AS text) END,
                    'object', '$tenants', 'tenant-' || g, CAST(:payload AS text), 1,
                    CAST(:now AS timestamptz), CAST(:now AS timestamptz),
                    CASE WHEN g % 2 = 0 THEN left(md5(g::text), 32) END, CAST(:key_id AS text)
                FROM generate_series(1, CAST(:tenants AS integer)) AS g
                """
            ),
            {
                "environments": environment_ids,
                "slack": slack.id,
                "teams": teams.id,
                "payload": payload,
                "now": NOW,
                "key_id": key_id,
                "tenants": TENANTS,
            },
        )
        await connection.execute(
            text(
                """
                INSERT INTO audit_events (occurred_at, environment_id, actor, action, channel_id,
                    target, details)
                SELECT CAST(:now AS timestamptz) - make_interval(mins => g),
                    (CAST(:environments AS text[]))[1 + g % 4], 'test', 'channel_data.set',
                    CAST(:slack AS text),
                    'objects/$tenants/tenant-' || (g % CAST(:tenants AS integer)), '{}'
                FROM generate_series(1, CAST(:events AS integer)) AS g
                """
            ),
            {
                "now": NOW,
                "environments": environment_ids,
                "slack": slack.id,
                "tenants": TENANTS,
                "events": AUDIT_EVENTS,
            },
        )
    async with gateway.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(
            text("ANALYZE channel_data, audit_events, api_keys, channels, environments")
        )
    return {
        "environment": environment.id,
        "slack": slack.id,
        "teams": teams.id,
        "secret_key": keys.secret_key,
        "public_key": keys.public_key,
    }


def _secret() -> Secret:
    return Secret(uuid.uuid4().hex)


async def _statements(
    engine: AsyncEngine, run: Callable[[], Awaitable[object]]
) -> list[tuple[str, Any]]:
    """The statements `run()` sent to the database, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if re.match(r"\s*(SELECT|UPDATE|DELETE)\b", statement, re.IGNORECASE):
            seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        await run()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    return seen


async def _plans(engine: AsyncEngine, statements: list[tuple[str, Any]]) -> list[str]:
    plans = []
    async with engine.connect() as connection:
        for statement, parameters in statements:
            rows = await connection.exec_driver_sql("EXPLAIN " + statement, parameters)
            plans.append("\n".join(row[0] for row in rows))
    return plans


def _sequential_scans(plan: str) -> list[str]:
    return [table for table in BIG_TABLES if re.search(rf"Seq Scan on {table}\b", plan)]


async def test_request_path_queries_use_indexes(seeded: tuple[Gateway, dict[str, Any]]) -> None:
    gateway, world = seeded
    environment, slack, teams = world["environment"], world["slack"], world["teams"]
    tenant = Recipient.object("$tenants", "tenant-4")  # a Slack tenant of `environment`
    since = NOW - timedelta(days=2)
    operations: dict[str, Callable[[], Awaitable[object]]] = {
        "api key lookup": lambda: gateway.credentials.find(world["secret_key"]),
        "channel lookup": lambda: gateway.channels.get(teams),
        "channel data get": lambda: gateway.channel_data.get(environment, slack, tenant),
        "channel data update": lambda: gateway.channel_data.update(
            environment, slack, tenant, lambda data: {**(data or {}), "connections": []}
        ),
        "channel data remove": lambda: gateway.channel_data.update(
            environment, teams, Recipient.object("$tenants", "tenant-5"), lambda _: None
        ),
        "slack event lookup": lambda: gateway.channel_data.for_slack_install(
            slack, team_id="T0NOBODY", enterprise_id="E0NOBODY"
        ),
        "audit newest": lambda: gateway.audit.search(AuditQuery(environment_id=environment)),
        "audit next page": lambda: gateway.audit.search(
            AuditQuery(environment_id=environment, before_id=AUDIT_EVENTS // 2)
        ),
        "audit by target": lambda: gateway.audit.search(
            AuditQuery(environment_id=environment, target="objects/$tenants/tenant-8")
        ),
        "audit by time": lambda: gateway.audit.search(
            AuditQuery(environment_id=environment, starting_at=since, ending_at=NOW)
        ),
    }
    failures = {}
    for name, operation in operations.items():
        statements = await _statements(gateway.engine, operation)
        assert statements, name
        for plan in await _plans(gateway.engine, statements):
            if _sequential_scans(plan):
                failures[name] = plan
    assert failures == {}
