"""Hypothesis profiles, and a gateway wired to both fake upstreams (Slack, Entra and Graph)
with one tenant connected to each, so fuzzed requests reach the code past the guards."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, Phase, settings

from provider_gateway.config import Secret, Settings
from provider_gateway.web.appkeys import GATEWAY
from tests.fakes.microsoft import FakeMicrosoft
from tests.fakes.slack import FakeSlack
from tests.ms_teams.conftest import (  # noqa: F401  (fixtures, used by name)
    TENANT_ID,
    ca_bundle,
    certificate_authority,
    fake_microsoft,
    popup,
)
from tests.ms_teams.support import connect_tenant
from tests.slack.conftest import TEAM, fake_slack  # noqa: F401
from tests.slack.support import install_token
from tests.slack.test_events import SIGNING_SECRET
from tests.support import World, seed_world

# The suite runs the same examples every time (a fuzz test must not turn CI red by chance);
# HYPOTHESIS_PROFILE=explore draws new ones, many more, to go hunting.
_QUIET = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
settings.register_profile(
    "suite",
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=_QUIET,
    # No shrinking in the suite: a failure is reported at once with the example that failed
    # (shrinking one that sends 18 requests took minutes); explore shrinks.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
settings.register_profile("explore", max_examples=1000, deadline=None, suppress_health_check=_QUIET)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))

CONNECTED = "acme"  # the tenant object that holds a Slack token and a Teams tenant id


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings],
    fake_slack: FakeSlack,  # noqa: F811
    fake_microsoft: FakeMicrosoft,  # noqa: F811
    ca_bundle: Path,  # noqa: F811
) -> Settings:
    return make_settings(
        SLACK_API_URL=fake_slack.api_url,
        MS_LOGIN_URL=fake_microsoft.login_url,
        MS_GRAPH_URL=fake_microsoft.graph_url,
        GATEWAY_CA_BUNDLE=str(ca_bundle),
        GATEWAY_UPSTREAM_TIMEOUT_SECONDS="5",
    )


@pytest.fixture
async def world(
    client: TestClient,
    fake_slack: FakeSlack,  # noqa: F811
    fake_microsoft: FakeMicrosoft,  # noqa: F811
) -> World:
    seeded = await seed_world(client.app[GATEWAY])
    fake_slack.register_app(
        seeded.slack.client_id, seeded.slack.client_secret.reveal(), seeded.slack.app_id or "A0TEST"
    )
    fake_microsoft.register_app(seeded.teams.client_id, seeded.teams.client_secret.reveal())
    fake_microsoft.consent(seeded.teams.client_id, TENANT_ID)
    fake_microsoft.add_teams(TENANT_ID, 2)
    await client.app[GATEWAY].channels.add(  # a Slack app with the Events API on
        provider="slack",
        client_id="events.app",
        client_secret=Secret("events-client-secret"),
        app_id="A0EVENTS",
        environment_id=seeded.slack.environment_id,
        signing_secret=Secret(SIGNING_SECRET),
        actor="test",
    )
    await install_token(client, seeded, fake_slack.mint_token(TEAM), tenant=CONNECTED)
    await connect_tenant(client, seeded, TENANT_ID, tenant=CONNECTED)
    return seeded


@pytest.fixture(autouse=True)
def _no_errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A 5xx is one failure; an exception logged while answering 4xx is another."""
    caplog.set_level(logging.WARNING)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
