"""The canonical contract's helpers keep every field of a session record."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime

from translators.contract import Connection, SessionRecord


def test_refreshed_is_replace_with_the_live_values() -> None:
    record = SessionRecord(
        id="7",
        user="alice",
        client_address="10.0.0.1:5000",
        service="faircom",
        database="ctreeSQL",
        state="active",
        connected_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        idle_seconds=12.5,
        last_command="listSessions",
        node_id="node-1",
        description="batch job",
        connections=[Connection(server="s1", reads=1)],
        extras={"faircom": {"x": 1}},
    )
    # every field above differs from its default: a field added later must be set here too
    assert len(fields(SessionRecord)) == 13
    assert all(
        getattr(record, f.name) != getattr(SessionRecord(id=""), f.name) for f in fields(record)
    )
    live = [Connection(server="rosetta", reads=3, writes=3)]
    extras = {"rosetta": {"requests": 3}}
    refreshed = record.refreshed(idle_seconds=0.5, connections=live, extras=extras)
    assert refreshed == replace(record, idle_seconds=0.5, connections=live, extras=extras)
    assert refreshed is not record and record.idle_seconds == 12.5
