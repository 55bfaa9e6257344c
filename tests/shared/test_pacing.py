"""Budgets stay under the upstreams' documented limits in any window (GCRA's bound)."""

from __future__ import annotations

import pytest

from provider_gateway.ms_teams.client import TENANT_BUDGET
from provider_gateway.shared.gcra import Budget
from provider_gateway.shared.pacing import retry_after_header, within
from provider_gateway.slack.pacing import METHOD_BUDGETS

# The upstreams' own figures (Slack: calls per minute by tier; Graph: per second per tenant).
DOCUMENTED = [
    (METHOD_BUDGETS["conversations.list"], 20, 60.0),
    (METHOD_BUDGETS["auth.revoke"], 50, 60.0),
    (METHOD_BUDGETS["auth.test"], 100, 60.0),
    (TENANT_BUDGET, 30, 1.0),
]


def most_in_any_window(budget: Budget, window: float) -> float:
    """GCRA admits at most burst + window / interval requests in any window."""
    return budget.burst + window / budget.interval


@pytest.mark.parametrize(("budget", "limit", "window"), DOCUMENTED)
def test_each_budget_keeps_one_call_under_the_upstreams_limit(
    budget: Budget, limit: int, window: float
) -> None:
    assert most_in_any_window(budget, window) <= limit - 1 + 1e-9
    assert budget.burst > 1  # bursts are what makes a first page quick


def test_slack_tier_2_is_four_at_once_then_one_every_four_seconds() -> None:
    assert within(20, 60.0) == Budget(interval=4.0, burst=4)


@pytest.mark.parametrize(
    ("seconds", "header"), [(0.0, 1), (0.2, 1), (1.0, 1), (4.0004, 4), (4.2, 5)]
)
def test_retry_after_is_whole_seconds_never_early(seconds: float, header: int) -> None:
    assert retry_after_header(seconds) == header
