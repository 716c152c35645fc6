"""``parse_json``: integers of any size stay exact, nesting is bounded, bad JSON is a
bad_request whatever the input looks like."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translators.contract import ErrorKind, RosettaError
from translators.wire import MAX_JSON_DEPTH, parse_json, text_depth

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**90), max_value=2**90)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_json_values)
def test_what_is_parsed_is_what_the_standard_library_reads(value: Any) -> None:
    text = json.dumps(value)
    assert parse_json(text.encode()) == json.loads(text)
    assert parse_json(text) == json.loads(text)


@pytest.mark.parametrize(
    "number",
    [2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**19, 10**30, -(10**40)],
)
def test_integers_beyond_64_bits_stay_exact(number: int) -> None:
    parsed = parse_json(f'{{"id": {number}, "ids": [1, {number}]}}'.encode())
    assert parsed == {"id": number, "ids": [1, number]}
    assert type(parsed["id"]) is int


def test_digits_inside_strings_do_not_change_the_result() -> None:
    raw = b'{"token": "12345678901234567890123", "n": 5}'
    assert parse_json(raw) == {"token": "12345678901234567890123", "n": 5}


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_nesting_is_bounded(opening: str) -> None:
    closing = "]" if opening == "[" else "}"
    deep = opening * (MAX_JSON_DEPTH + 1) + "1" + closing * (MAX_JSON_DEPTH + 1)
    with pytest.raises(RosettaError) as caught:
        parse_json(deep.encode(), what="upstream reply")
    assert caught.value.kind is ErrorKind.BAD_REQUEST
    assert "upstream reply is nested deeper" in caught.value.message
    ok = opening * MAX_JSON_DEPTH + "1" + closing * MAX_JSON_DEPTH
    assert parse_json(ok.encode()) is not None


def test_many_containers_side_by_side_are_not_deep() -> None:
    wide = "[" + ",".join(['{"a":[1]}'] * (MAX_JSON_DEPTH * 2)) + "]"
    assert len(parse_json(wide.encode())) == MAX_JSON_DEPTH * 2


def _tree_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_tree_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_tree_depth, value), default=0)
    return 0


_awkward_text = st.text(alphabet='[]{}"\\/ab\n\u00e9', max_size=8)
_nested = st.recursive(
    st.none() | st.integers() | _awkward_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_awkward_text, inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(_nested, st.booleans())
def test_depth_read_from_the_text_is_the_depth_of_the_value(value: Any, ascii_only: bool) -> None:
    """Brackets, quotes and backslashes inside strings never change the depth read."""
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert text_depth(raw) == _tree_depth(value)


@pytest.mark.parametrize("raw", [b"", b"{", b"NaN", b"[1,]", b"\xff", b'{"a": Infinity}'])
def test_invalid_json_is_a_bad_request(raw: bytes) -> None:
    with pytest.raises(RosettaError) as caught:
        parse_json(raw)
    assert caught.value.kind is ErrorKind.BAD_REQUEST
    assert "is not valid JSON" in caught.value.message
