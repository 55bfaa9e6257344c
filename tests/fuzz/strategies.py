"""Hostile input for the property tests: text with NUL and control characters, values past
every length limit, JSON nested past the depth limit, and re-encodings of a real state."""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st


def scaled(examples: int) -> settings:
    """`examples` in the suite; the explore profile's count when exploring."""
    current = settings.default
    if os.environ.get("HYPOTHESIS_PROFILE", "suite") != "suite":
        return settings(current)
    return settings(current, max_examples=examples)


# Characters a browser or SDK can put in a query string, plus the ones that hurt: NUL, line
# breaks, C1 controls, surrogates' neighbours, and the JSON and bracket punctuation our
# parsers split on.
_HOSTILE_CHARACTERS = st.sampled_from(
    ["\x00", "\n", "\r", "\t", "\x7f", "\x85", "\u2028", "\ufeff", "[", "]", "{", "}", '"', "\\"]
)
hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.one_of(st.characters(codec="utf-8"), _HOSTILE_CHARACTERS), max_size=80),
    st.sampled_from(["", " ", "null", "true", "[]", "{}", "0", "-1", "1e999", "NaN", "$tenants"]),
)
# Just past the limits that matter: 255 (ids), 4096 (state fields), 8 KiB (a whole state).
huge_text = st.sampled_from([255, 256, 4096, 4097, 8192, 8193]).flatmap(
    lambda size: st.sampled_from(["x", "\x00", "é", "["]).map(lambda char: char * size)
)
any_text = st.one_of(hostile_text, huge_text)


def _deep(depth: int, opener: str) -> str:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return opener * depth + "1" + closer * depth


deep_json = st.builds(
    _deep, st.sampled_from([31, 32, 33, 100, 1200, 3000]), st.sampled_from(["[", '{"a":'])
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
json_text = st.one_of(json_values.map(json.dumps), deep_json, any_text)


def object_reference(values: st.SearchStrategy[Any] = json_values) -> st.SearchStrategy[Any]:
    """`{"collection": …, "object_id": …}` with arbitrary field values, or anything at all."""
    return st.one_of(
        st.fixed_dictionaries({"collection": values, "object_id": values}),
        st.fixed_dictionaries({"collection": st.just("$tenants"), "object_id": values}),
        values,
    )


def state_documents(reference_key: str) -> st.SearchStrategy[str]:
    """A component state as JSON text: each field absent, wrong-typed or hostile."""
    fields = st.fixed_dictionaries(
        {},
        optional={
            "nonce": json_values,
            "redirect_url": st.one_of(json_values, st.just("http://app.example.test/x")),
            reference_key: object_reference(),
            "channel_id": json_values,
            "public_key": json_values,
            "user_token": json_values,
            "branch_slug": json_values,
        },
    )
    return st.one_of(fields.map(json.dumps), json_text)
