"""The usual FairCom ``listSessions`` reply, read and type-checked in one pass.

FairCom servers answer ``listSessions`` with ``result.sessions``: one object per session with
exactly ``authToken``, ``username`` and ``description``, all strings, beside ``errorCode`` 0,
``errorMessage`` and the echoed ``requestId``. msgspec decodes such a body straight into
``ListedEntry`` structs, checking every type on the way, in about half the time that parsing
it with orjson and then checking each object in Python takes; ``faircom.FairComTranslator``
keeps them as ``SessionRows`` (``faircom.TypedListedRows`` reads them), like the objects of
the listed shape the general path keeps.

``typed_entries`` answers ``None`` for a body that is not of that shape in every detail: a
key missing, of another type (a float or object ``requestId``, a number for a string) or
unknown at any level (``debugInfo``, a session field of ``describeSessions``; so nothing
nests deeper than four levels and ``parse_json``'s depth limit holds), a non-zero
``errorCode``, anything that is not JSON. The translator also sends a reply down the general
path when a token is not a ``session:<id>``. The general path (``result_of`` and
``reply_rows``) gives the answer or error for any body; ``tests/faircom/test_typed.py``
holds the two paths to the same answers.
"""

from __future__ import annotations

import msgspec


class ListedEntry(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One ``listSessions`` entry; the fields in the order Rosetta writes them."""

    authToken: str
    username: str
    description: str


class _Result(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    sessions: list[ListedEntry]


class _Reply(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    result: _Result
    errorCode: int
    errorMessage: str | None = None
    requestId: int | str | None = None
    authToken: str | None = None


_DECODER = msgspec.json.Decoder(_Reply)


def typed_entries(body: bytes) -> list[ListedEntry] | None:
    """The entries of a ``listSessions`` reply of the usual shape; ``None`` when the body is
    anything else (see the module docstring)."""
    try:
        reply = _DECODER.decode(body)
    except (msgspec.DecodeError, ValueError, RecursionError):
        return None
    return reply.result.sessions if reply.errorCode == 0 else None
