"""``SessionRows``: a list reply's sessions kept as rows behave like the list of decoded
records, and a ``Brief`` reads the same fields from a kept row as from its record."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translators.contract import SessionRecord
from translators.session_rows import BRIEF_FIELDS, Brief, SessionRows


class Codec:
    """Rows are ``{"n": int, "who": str}``; the context is the node. Counts decodings."""

    brief_fields = {
        "id": 'str(row["n"])',
        "user": 'row["who"]',
        "client_address": '""',
        "service": '""',
        "database": '""',
        "state": '""',
        "idle_seconds": "0.0",
        "last_command": '""',
        "node_id": "context",
        "description": "f\"#{row['n']}\"",
    }

    def __init__(self) -> None:
        self.decoded = 0

    def decode(self, row: dict[str, Any], node: str) -> SessionRecord:
        self.decoded += 1
        return SessionRecord(
            id=str(row["n"]), user=row["who"], node_id=node, description=f"#{row['n']}"
        )


def _rows(count: int, decoded_at: set[int]) -> tuple[Codec, SessionRows, list[SessionRecord]]:
    """``count`` rows; those at ``decoded_at`` are records from the start (irregular rows)."""
    codec = Codec()
    raw = [{"n": i, "who": f"user{i % 3}"} for i in range(count)]
    nodes = [f"node-{i % 2}" for i in range(count)]
    eager = [codec.decode(r, n) for r, n in zip(raw, nodes, strict=True)]
    records: list[SessionRecord | None] = [
        eager[i] if i in decoded_at else None for i in range(count)
    ]
    codec.decoded = 0
    return codec, SessionRows(codec, raw, nodes, records), eager


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=0, max_value=12).flatmap(
        lambda n: st.tuples(st.just(n), st.sets(st.integers(0, max(n - 1, 0))))
    ),
    st.one_of(st.integers(-15, 15), st.slices(15)),
)
def test_rows_behave_like_the_list_of_records(
    shape: tuple[int, set[int]], index: int | slice
) -> None:
    count, decoded_at = shape
    _, rows, eager = _rows(count, decoded_at)
    assert len(rows) == len(eager)
    assert bool(rows) == bool(eager)
    if isinstance(index, slice):
        assert list(rows[index]) == eager[index]
    elif -count <= index < count:
        assert rows[index] == eager[index]
    else:
        with pytest.raises(IndexError):
            rows[index]
    assert list(rows) == eager
    assert rows == eager and eager == rows


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=0, max_value=12).flatmap(
        lambda n: st.tuples(st.just(n), st.sets(st.integers(0, max(n - 1, 0))))
    ),
    st.lists(st.sampled_from(BRIEF_FIELDS), min_size=2, max_size=5),
)
def test_a_brief_reads_the_same_fields_from_rows_and_from_records(
    shape: tuple[int, set[int]], names: list[str]
) -> None:
    count, decoded_at = shape
    codec, rows, eager = _rows(count, decoded_at)
    brief = Brief(*names)
    assert brief(rows) == brief(eager) == [tuple(getattr(r, n) for n in names) for r in eager]
    assert codec.decoded == 0  # no record was built for the kept rows


def test_a_record_is_decoded_once_and_then_kept() -> None:
    codec, rows, _ = _rows(3, set())
    first = rows[1]
    assert rows[1] is first and codec.decoded == 1
    first.description = "changed"  # what a later stage changes stays changed
    assert rows[1].description == "changed"
    assert Brief("id", "description")(rows)[1] == ("1", "changed")


def test_a_slice_keeps_rows_undecoded() -> None:
    codec, rows, eager = _rows(6, {4})
    page = rows[2:5]
    assert isinstance(page, SessionRows) and len(page) == 3
    assert Brief("id", "user")(page) == [(r.id, r.user) for r in eager[2:5]]
    assert codec.decoded == 0


@pytest.mark.parametrize("names", [(), ("id",), ("id", "connected_at"), ("id", "extras")])
def test_a_brief_picks_two_or_more_plain_fields(names: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="two or more"):
        Brief(*names)
