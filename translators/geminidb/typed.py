"""The usual GeminiDB list reply, read and type-checked in one pass.

Real GeminiDB servers answer "list instance sessions" in one shape: ``node_sessions`` groups,
each with a ``node_id`` and ``sessions`` holding exactly the eleven fields, strings and
integers. msgspec decodes such a body straight into ``UsualSession`` structs, checking every
type on the way, in about a third of the time that parsing it with orjson and then checking
each session in Python takes. The sessions are kept as ``SessionRows`` (``TypedRows`` reads
them), like the sessions of the usual shape the general path keeps.

``typed_rows`` answers ``None`` for a body that is not of that shape in every detail: a field
missing, of another type or unknown (at any level, so nothing nests deeper than five levels
and ``parse_json``'s depth limit holds), a group without ``node_id``, an age beyond the
calendar, anything that is not JSON. Such a body takes the general path (``parse_json`` and
``ReplyRows``), which gives the answer or error for any body;
``tests/geminidb/test_typed.py`` holds the two paths to the same sessions.
"""

from __future__ import annotations

from datetime import datetime
from operator import attrgetter

import msgspec

from translators.contract import SessionRecord
from translators.geminidb.sessions import AGE_LIMIT, brief_fields_of, usual_record
from translators.session_rows import SessionRows


class UsualSession(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One session as real servers send it; the fields in ``sessions.FIELDS`` order."""

    addr: str
    id: int
    name: str
    cmd: str
    age: int
    idle: int
    db: int
    fd: int
    sub: int
    psub: int
    multi: int


class _Group(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    node_id: str
    sessions: list[UsualSession]
    total_count: int | str | None = None  # the general path does not read it either


class _Reply(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    node_sessions: list[_Group]


_DECODER = msgspec.json.Decoder(_Reply)
_AGE = attrgetter("age")
_astuple = msgspec.structs.astuple


class TypedRows:
    """How ``UsualSession`` rows are read later: the ``RowCodec`` of their ``SessionRows``.
    ``now`` is when the reply came."""

    __slots__ = ("now",)
    brief_fields = brief_fields_of("row.{}")
    row_age = staticmethod(_AGE)

    def __init__(self, now: datetime) -> None:
        self.now = now

    def decode(self, row: UsualSession, node_id: str) -> SessionRecord:
        return usual_record(_astuple(row), node_id, self.now)


def typed_rows(body: bytes, now: datetime) -> SessionRows | None:
    """The sessions of a list reply of the usual shape, kept as ``UsualSession`` rows; ``None``
    when the body is anything else (see the module docstring)."""
    try:
        reply = _DECODER.decode(body)
    except (msgspec.DecodeError, ValueError, RecursionError):
        return None
    rows: list[UsualSession] = []
    contexts: list[str] = []
    for group in reply.node_sessions:
        rows += group.sessions
        contexts += [group.node_id] * len(group.sessions)
    if rows:
        ages = list(map(_AGE, rows))
        if min(ages) <= -AGE_LIMIT or max(ages) >= AGE_LIMIT:
            return None
    return SessionRows(TypedRows(now), rows, contexts, [None] * len(rows))
