"""The usual JUMP list reply, read and type-checked in one pass.

JUMP servers answer ``listSessions`` with one envelope: ``sid``, ``oid``, ``svcVersion``,
``invId``, ``version``, the caller's ``header.map`` (``currentUser``, ``sessionTimeout``,
``serviceHeader.map``), empty ``error`` and ``errorCode``, perhaps ``appId``, and
``response``: the sessions (or ``{"sessions": [...]}``), each with the eleven canonical keys,
an optional ``sessionTimeout`` and ``connections``. msgspec decodes such a body straight into
``UsualSession`` structs, checking every type on the way, in under a third of the time that
parsing it with orjson and then checking each session in Python takes. The sessions are kept
as ``SessionRows`` (``TypedRows`` reads them), like the sessions of the usual shape the
general path keeps.

``typed_list`` answers ``None`` for a body that is not of that shape in every detail: a key
missing where the general path needs it, of another type (a float ``idleSeconds``, a number
for a string) or unknown at any level (so nothing nests deeper than six levels and
``parse_json``'s depth limit holds), an error, an empty ``sessionId``, a ``connectedAt`` not
written as ``format_rfc3339`` writes one, anything that is not JSON. Such a body takes the
general path (``parse_json`` and ``session_rows``), which gives the answer or error for any
body. Keys may come in any order: the general path renders a session of another order the
way ``encode`` writes a struct. ``tests/jump/test_typed.py`` holds the two paths to the same
answers.
"""

from __future__ import annotations

import msgspec

from translators.jump.records import NO_TIMEOUT, TypedRows, all_as_written
from translators.session_rows import SessionRows


class UsualConnection(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One connection of a session; the fields in ``records.CONNECTION_KEYS`` order."""

    server: str
    state: str
    role: str
    reads: int
    writes: int


class UsualSession(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, gc=False):
    """One session as JUMP servers send it; the fields in the order ``session_to_jump``
    writes them, so encoding one gives what rendering its record gives."""

    sessionId: str
    user: str
    clientAddress: str
    service: str
    database: str
    state: str
    connectedAt: str | None
    idleSeconds: int
    lastCommand: str
    nodeId: str
    description: str
    sessionTimeout: str | msgspec.UnsetType = NO_TIMEOUT
    connections: list[UsualConnection]


class _Sessions(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    sessions: list[UsualSession]


class _ServiceHeader(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    map: dict[str, str]


class _HeaderValues(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    currentUser: str | None = None
    sessionTimeout: str | None = None
    serviceHeader: _ServiceHeader | None = None


class _Header(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    map: _HeaderValues


class _Envelope(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    sid: str
    response: list[UsualSession] | _Sessions
    oid: str | None = None
    svcVersion: str | None = None
    invId: str | None = None
    version: str | None = None
    appId: str | None = None
    header: _Header | None = None
    error: str | None = None
    errorCode: str | None = None


_DECODER = msgspec.json.Decoder(_Envelope)
_TYPED_ROWS = TypedRows()


class TypedList:
    """A usual list reply: its sessions kept as rows, and what its header says."""

    __slots__ = ("current_user", "session_timeout", "sessions", "total_count")

    def __init__(self, envelope: _Envelope, rows: list[UsualSession]) -> None:
        self.sessions = SessionRows(_TYPED_ROWS, rows, [None] * len(rows), [None] * len(rows))
        values = envelope.header.map if envelope.header is not None else None
        self.current_user = values.currentUser if values is not None else None
        self.session_timeout = values.sessionTimeout if values is not None else None
        service = values.serviceHeader if values is not None else None
        self.total_count = service.map.get("totalCount") if service is not None else None


def typed_list(body: bytes) -> TypedList | None:
    """A list reply of the usual shape, its sessions kept as ``UsualSession`` rows; ``None``
    when the body is anything else (see the module docstring)."""
    try:
        envelope = _DECODER.decode(body)
    except (msgspec.DecodeError, ValueError, RecursionError):
        return None
    if envelope.error:
        return None
    response = envelope.response
    rows = response if isinstance(response, list) else response.sessions
    if rows:
        ids, moments = zip(*[(row.sessionId, row.connectedAt) for row in rows], strict=True)
        if "" in ids or not all_as_written(moments):
            return None
    return TypedList(envelope, rows)
