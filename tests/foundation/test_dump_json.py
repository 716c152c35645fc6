"""``wire.dump_json`` tries orjson without ``OPT_NON_STR_KEYS`` first, for speed: it still
writes what the option writes for any body, including ones orjson cannot write without help
(non-string and ``str``-subclass keys, huge integers, naive times), and fails alike."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from translators.wire import RawJson, dump_json


def _with_the_option(value: Any) -> bytes:
    """What dump_json wrote when every body went through ``OPT_NON_STR_KEYS``."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_NAIVE_UTC)
    except TypeError:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
        return text.encode("utf-8")


class Key(str):
    """A ``str`` subclass (a key some Python code, not JSON, could put in an extras dict)."""


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.integers(-(2**80), 2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
    st.datetimes(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=-3))])),
    st.dates(),
    st.times(),
    st.text(max_size=3).map(Key),
)
_keys = st.one_of(
    st.text(max_size=4),
    st.text(max_size=4),
    st.integers(-5, 5),
    st.text(max_size=3).map(Key),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.dates(),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(_keys, inner, max_size=3),
    ),
    max_leaves=8,
)


def _written(writer: Any, body: dict[str, Any]) -> Any:
    try:
        return writer(body)
    except Exception as exc:  # both must fail alike, if at all
        return type(exc)


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=4))
def test_dump_json_writes_what_the_non_string_key_option_writes(body: dict[str, Any]) -> None:
    assert _written(dump_json, body) == _written(_with_the_option, body)


def test_a_usual_reply_and_an_odd_one() -> None:
    body = {
        "ack": "1",
        "time": 3,
        "rows": 1,
        "p": {"sessions": [{"id": "1", "at": datetime(2025, 1, 2, 3, 4, 5), "n": 2**63 - 1}]},
    }
    assert dump_json(body) == _with_the_option(body)
    assert b'"at":"2025-01-02T03:04:05+00:00"' in dump_json(body)
    odd = {1: time(1, 2), Key("k"): date(2025, 1, 2)}
    assert _written(dump_json, odd) == _written(_with_the_option, odd)


def test_raw_json_is_embedded_as_written_and_as_plain_data_when_the_rest_needs_it() -> None:
    """A list another encoder wrote (typed upstream rows) goes in as its text; when the body
    also holds an integer orjson cannot write, the standard library writes the list's plain
    value instead, so the body is still the same JSON."""
    plain = [{"id": 2**70, "name": "a"}]
    raw = RawJson(b'[{"id":1180591620717411303424,"name":"a"}]', lambda: plain)
    assert (
        dump_json({"rows": raw, "n": 1})
        == b'{"rows":[{"id":1180591620717411303424,"name":"a"}],"n":1}'
    )
    body = {"rows": raw, "request": 2**65}
    assert json.loads(dump_json(body)) == {"rows": plain, "request": 2**65}
