"""The GCRA budget, in-process and in Redis: the same answers from both."""

from __future__ import annotations

import asyncio

import pytest

from provider_gateway.shared.gcra import Budget
from provider_gateway.shared.state import SharedState


async def test_a_burst_is_admitted_then_one_request_per_interval(shared_state: SharedState) -> None:
    budget = Budget(interval=10.0, burst=3)
    answers = [await shared_state.gcra("k", budget) for _ in range(5)]
    assert [answer.admitted for answer in answers] == [True, True, True, False, False]
    assert [answer.remaining for answer in answers[:3]] == [2, 1, 0]
    refused = answers[3]
    # The next slot opens one interval after the first request.
    assert 9.0 < refused.delay <= 10.0
    assert 29.0 < answers[2].reset <= 30.0


async def test_budgets_refill_smoothly(shared_state: SharedState) -> None:
    budget = Budget(interval=0.05, burst=1)
    assert (await shared_state.gcra("k", budget)).admitted
    assert not (await shared_state.gcra("k", budget)).admitted
    await asyncio.sleep(0.08)
    assert (await shared_state.gcra("k", budget)).admitted


async def test_keys_have_separate_budgets(shared_state: SharedState) -> None:
    budget = Budget(interval=10.0, burst=1)
    assert (await shared_state.gcra("a", budget)).admitted
    assert (await shared_state.gcra("b", budget)).admitted
    assert not (await shared_state.gcra("a", budget)).admitted


async def test_pacing_reserves_slots_one_interval_apart(shared_state: SharedState) -> None:
    budget = Budget(interval=1.0, burst=2)
    answers = [await shared_state.gcra("k", budget, max_delay=2.5) for _ in range(5)]
    assert [answer.admitted for answer in answers] == [True, True, True, True, False]
    waits = [answer.delay for answer in answers[:4]]
    assert waits[:2] == [0.0, 0.0]
    assert 0.8 < waits[2] <= 1.0
    assert 1.8 < waits[3] <= 2.0
    # A refused reservation takes nothing: it says when the next slot opens, and a later
    # caller still gets that slot.
    assert 2.8 < answers[4].delay <= 3.0
    assert (await shared_state.gcra("k", budget, max_delay=3.5)).admitted


@pytest.mark.parametrize("burst", [1, 5])
async def test_concurrent_takers_never_exceed_the_burst(
    shared_state: SharedState, burst: int
) -> None:
    budget = Budget(interval=60.0, burst=burst)
    answers = await asyncio.gather(*(shared_state.gcra("k", budget) for _ in range(40)))
    assert sum(answer.admitted for answer in answers) == burst


async def test_a_deferral_holds_the_budget_then_it_refills_from_empty(
    shared_state: SharedState,
) -> None:
    budget = Budget(interval=2.0, burst=3)
    await shared_state.gcra_defer("k", budget, 5.0)
    refused = await shared_state.gcra("k", budget)
    assert not refused.admitted
    assert 4.0 < refused.delay <= 5.0
    # A pacing caller is given the first slot after the hold, and the next one an interval on.
    first = await shared_state.gcra("k", budget, max_delay=10.0)
    second = await shared_state.gcra("k", budget, max_delay=10.0)
    assert first.admitted
    assert 4.0 < first.delay <= 5.0
    assert second.admitted
    assert 6.0 < second.delay <= 7.0


async def test_a_shorter_deferral_never_shortens_a_longer_one(shared_state: SharedState) -> None:
    budget = Budget(interval=1.0, burst=2)
    await shared_state.gcra_defer("k", budget, 30.0)
    await shared_state.gcra_defer("k", budget, 1.0)
    refused = await shared_state.gcra("k", budget, max_delay=5.0)
    assert not refused.admitted
    assert 29.0 < refused.delay <= 30.0


async def test_a_deferral_touches_only_its_key(shared_state: SharedState) -> None:
    budget = Budget(interval=10.0, burst=1)
    await shared_state.gcra_defer("a", budget, 30.0)
    assert (await shared_state.gcra("b", budget)).admitted
    assert not (await shared_state.gcra("a", budget)).admitted
