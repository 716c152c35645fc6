"""The bytes of a BlobCity success reply: the fast writer gives what ``wire.dump_json`` gives
for any body, including ones orjson cannot write without help (non-string keys, huge
integers, naive times)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from translators.blobcity import reply_json
from translators.wire import dump_json


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
def test_the_reply_writer_writes_what_dump_json_writes(body: dict[str, Any]) -> None:
    assert _written(reply_json, body) == _written(dump_json, body)


def test_a_usual_reply_is_written_by_orjson_alone() -> None:
    body = {
        "ack": "1",
        "time": 3,
        "rows": 1,
        "p": {"sessions": [{"id": "1", "at": datetime(2025, 1, 2, 3, 4, 5), "n": 2**63 - 1}]},
    }
    assert reply_json(body) == dump_json(body)
    assert b'"at":"2025-01-02T03:04:05+00:00"' in reply_json(body)
    assert _written(reply_json, {1: time(1, 2), Key("k"): date(2025, 1, 2)}) == _written(
        dump_json, {1: time(1, 2), Key("k"): date(2025, 1, 2)}
    )
