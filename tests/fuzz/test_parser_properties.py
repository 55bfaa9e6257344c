"""The parsers of what browsers, SDKs and callbacks send, over arbitrary input: each returns
or raises only the typed error it documents (never a RecursionError, TypeError, …), and what
it returns satisfies the rules the storage and upstream layers rely on."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from multidict import MultiDict

from provider_gateway import inputs
from provider_gateway.errors import InvalidParams
from provider_gateway.install import allowed_redirect, state_fields
from provider_gateway.ms_teams.models import (
    TeamsState,
    odata_options,
    required_team_id,
    tenant_guid,
)
from provider_gateway.ms_teams.signin import is_signin_state
from provider_gateway.slack.models import ChannelQuery, SlackState
from provider_gateway.state_claims import state_material, user_token_id
from provider_gateway.web import wire
from tests.fuzz.strategies import (
    any_text,
    deep_json,
    json_text,
    object_reference,
    scaled,
    state_documents,
)

ORIGINS = frozenset({"http://app.example.test"})

query_keys = st.one_of(
    st.sampled_from(
        [
            "access_token_object",
            "access_token_object[collection]",
            "access_token_object[object_id]",
            "query_options[limit]",
            "query_options.limit",
            "query_options[cursor]",
            "query_options.types",
            "query_options[",
            "query_options.",
            "query_options[]",
        ]
    ),
    any_text,
)
queries = st.lists(st.tuples(query_keys, st.one_of(any_text, json_text)), max_size=6).map(MultiDict)


@given(st.one_of(json_text, any_text, st.binary(max_size=64)))
def test_loads_returns_shallow_json_or_raises_value_error(raw: str | bytes) -> None:
    try:
        document = inputs.loads(raw)
    except ValueError:
        return
    json.dumps(document)  # what it returns re-serialises without recursing


@given(deep_json)
def test_loads_refuses_every_document_past_the_depth_limit_as_value_error(raw: str) -> None:
    depth = raw.count("[") or raw.count("{")
    if depth <= inputs.MAX_JSON_DEPTH:
        inputs.loads(raw)
    else:
        with pytest.raises(ValueError, match="nested"):
            inputs.loads(raw)


@given(any_text)
def test_an_identifier_is_bounded_and_free_of_control_characters(value: str) -> None:
    problem = inputs.identifier_problem(value)
    assert (problem is None) == inputs.is_identifier(value)
    if problem is None:
        assert 0 < len(value) <= inputs.MAX_ID_LENGTH
        assert not inputs.has_control_characters(value)
        assert "\x00" not in value


@given(queries, st.one_of(object_reference(), any_text))
def test_object_reference_is_a_valid_recipient_or_invalid_params(
    query: MultiDict[str], reference: object
) -> None:
    query.add("access_token_object", json.dumps(reference))
    for candidate in (query, MultiDict(list(query.items())[:-1])):
        try:
            recipient = wire.object_reference(candidate, "access_token_object")
        except InvalidParams as error:
            fields = [entry["field"] for entry in error.errors]
            assert all(field.startswith("access_token_object") for field in fields)
            continue
        assert recipient.collection is not None
        assert inputs.is_identifier(recipient.collection)
        assert inputs.is_identifier(recipient.id)


@given(queries)
def test_query_options_never_raises_and_the_dotted_form_wins(query: MultiDict[str]) -> None:
    options = wire.query_options(query)
    dotted = {
        key[len("query_options.") :]: value
        for key, value in query.items()
        if key.startswith("query_options.")
    }
    for name, value in dotted.items():
        assert options[name] == value


@given(st.dictionaries(st.sampled_from(["limit", "exclude_archived", "types"]), any_text))
def test_typed_options_parse_or_raise_invalid_params(options: dict[str, str]) -> None:
    for parse in (
        lambda: wire.boolean(options, "exclude_archived", True),
        lambda: wire.integer(options, "limit", 10, low=1, high=1000),
        lambda: ChannelQuery.from_options(options),
    ):
        with contextlib.suppress(InvalidParams):
            parse()


@given(st.dictionaries(st.sampled_from(["$top", "$filter", "$select", "$skiptoken"]), any_text))
def test_odata_options_parse_or_raise_invalid_params(options: dict[str, str]) -> None:
    try:
        forwarded = odata_options(options, ("$top", "$filter", "$select"))
    except InvalidParams:
        return
    if "$top" in forwarded:
        assert 1 <= int(forwarded["$top"]) <= 999


@given(st.one_of(any_text, st.uuids().map(str), st.uuids().map(lambda u: u.hex.upper())))
def test_team_and_tenant_ids_are_canonical_guids_or_refused(value: str) -> None:
    guid = tenant_guid(value)
    if guid is not None:
        assert guid == guid.lower()
        assert len(guid) == 36
    try:
        assert required_team_id({"team_id": value}) == guid
    except InvalidParams:
        assert guid is None


@scaled(150)
@given(st.one_of(state_documents("access_token_object"), any_text))
def test_slack_state_parses_to_clean_fields_or_none(raw: str) -> None:
    state = SlackState.parse(raw)
    if state is None:
        return
    _assert_clean_state(state)
    assert state_fields(raw, "access_token_object") is not None


@scaled(150)
@given(st.one_of(state_documents("ms_teams_tenant_object"), any_text))
def test_teams_state_parses_to_clean_fields_or_none(raw: str) -> None:
    state = TeamsState.parse(raw)
    if state is None:
        assert not is_signin_state(raw) or raw.isascii()
        return
    _assert_clean_state(state)


def _assert_clean_state(state: SlackState | TeamsState) -> None:
    for value in (state.redirect_url, state.channel_id, state.public_key, state.user_token):
        assert value is None or (
            0 < len(value) <= 4096 and not inputs.has_control_characters(value)
        )
    if state.tenant is not None:
        assert inputs.is_identifier(state.tenant.collection)
        assert inputs.is_identifier(state.tenant.id)
        # What a used state is remembered by never fails to build, whatever the fields hold.
        assert state.channel_id is None or state_material(
            "slack", state.channel_id, state.tenant, None, state.user_token
        )


@given(st.one_of(any_text, json_text, st.lists(any_text, min_size=3, max_size=3).map(".".join)))
def test_a_user_token_id_is_always_found(token: str) -> None:
    identifier = user_token_id(token)
    assert identifier == "" if not token else identifier.split(":")[0] in {"jti", "sig", "raw"}


@given(
    st.one_of(
        any_text,
        st.builds(lambda tail: "http://app.example.test" + tail, any_text),
        st.builds(lambda scheme, rest: f"{scheme}://{rest}", any_text, any_text),
    )
)
def test_a_redirect_is_to_an_allowed_origin_or_none(url: str) -> None:
    allowed = allowed_redirect(url, ORIGINS)
    if allowed is not None:
        assert allowed.startswith("http://app.example.test")


@given(st.one_of(any_text, st.from_regex(r"\A[A-Za-z0-9_-]{43}\Z")))
def test_our_own_signin_state_is_never_a_state_teamskit_could_have_built(raw: str) -> None:
    if is_signin_state(raw):
        assert len(raw) == 43
        assert TeamsState.parse(raw) is None


def test_the_state_strategy_also_builds_states_that_parse() -> None:
    """Guard against a strategy that only ever produces rejected input: it must reach states
    that name a tenant, or the properties above check nothing past the first guard."""

    def names_a_tenant(raw: str) -> bool:
        state = SlackState.parse(raw)
        return state is not None and state.tenant is not None

    found = find(
        state_documents("access_token_object"),
        names_a_tenant,
        settings=settings(max_examples=2000, derandomize=True, database=None),
    )
    assert names_a_tenant(found)


def test_an_honest_state_parses() -> None:
    raw = json.dumps(
        {
            "access_token_object": {"collection": "$tenants", "object_id": "acme"},
            "channel_id": "c",
            "public_key": "pk_x",
        }
    )
    state = SlackState.parse(raw)
    assert state is not None
    assert state.tenant is not None
    assert (state.tenant.collection, state.tenant.id) == ("$tenants", "acme")
