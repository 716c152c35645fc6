"""The sessions of an upstream list reply, kept as the upstream's rows and decoded into
canonical records only when something needs a whole record.

Decoding every session of a list reply into a complete ``SessionRecord`` (typed fields, a
timestamp, the dialect's extras) is most of the CPU a translated list costs, while most
callers' dialects show a few plain fields of each session. So a translator can answer a list
with ``SessionRows`` instead of a list of records:

- every row is checked when the reply arrives, so a malformed reply still fails there, as an
  upstream_error; rows of the dialect's usual shape are kept as received, any other row is
  decoded at once;
- ``len``, indexing, slicing and iteration behave like the list of records; a kept row is
  decoded on first use, once;
- an encoder that needs only plain fields (``BRIEF_FIELDS``) reads them through a ``Brief``:
  from a kept row they are read directly, without building the record, from any
  other record they are its attributes (``RowCodec.brief_fields`` says how). The tests hold
  both ways to the same answers (``tests/foundation/test_session_rows.py``, and each dialect's
  record tests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import fields
from operator import attrgetter
from typing import Any, Protocol, TypeVar, overload

from translators.contract import SessionRecord

BRIEF_FIELDS = tuple(
    f.name for f in fields(SessionRecord) if f.name not in ("connected_at", "connections", "extras")
)
"""The plain fields of a session record (no timestamp, no containers), in this order."""


class RowCodec(Protocol):
    """How one dialect reads the rows it kept. ``context`` is what the row's position in the
    reply says about it (GeminiDB: the node of its ``node_sessions`` group)."""

    brief_fields: Mapping[str, str]
    """Each of ``BRIEF_FIELDS`` of a kept row as a Python expression over ``row`` and
    ``context`` (builtins only): constants of the translator's code, never input. ``Brief``
    compiles the ones it picks into one function per dialect, so reading a few fields of a
    hundred rows costs about what the same list comprehension written by hand does."""

    def decode(self, row: Any, context: Any) -> SessionRecord:
        """The complete record of a kept row; the same record an eager decoding gives."""
        ...


Picker = Callable[
    [list[Any], list[Any], list["SessionRecord | None"], Callable[[SessionRecord], Any]],
    list[tuple[Any, ...]],
]
_pickers: dict[tuple[type, tuple[str, ...]], Picker] = {}


def _picker(codec: RowCodec, names: tuple[str, ...]) -> Picker:
    """The compiled reader of ``names`` from the rows of ``codec``'s dialect (cached)."""
    key = (type(codec), names)
    picker = _pickers.get(key)
    if picker is None:
        fields = ", ".join(f"({codec.brief_fields[name]})" for name in names)
        source = (
            "def pick(rows, contexts, records, from_record):\n"
            f"    return [({fields},) if record is None else from_record(record)\n"
            "            for row, context, record in zip(rows, contexts, records, strict=True)]\n"
        )
        namespace: dict[str, Any] = {}
        exec(compile(source, f"<brief {type(codec).__name__} {names}>", "exec"), namespace)
        picker = _pickers[key] = namespace["pick"]
    return picker


class SessionRows(Sequence[SessionRecord]):
    """A list reply's sessions: ``rows[i]`` as received with ``contexts[i]``, and
    ``records[i]`` the decoded record, or ``None`` while row ``i`` is kept undecoded."""

    __slots__ = ("_codec", "_contexts", "_records", "_rows")

    def __init__(
        self,
        codec: RowCodec,
        rows: list[Any],
        contexts: list[Any],
        records: list[SessionRecord | None],
    ) -> None:
        self._codec = codec
        self._rows = rows
        self._contexts = contexts
        self._records = records

    def __len__(self) -> int:
        return len(self._records)

    @overload
    def __getitem__(self, index: int) -> SessionRecord: ...

    @overload
    def __getitem__(self, index: slice) -> SessionRows: ...

    def __getitem__(self, index: int | slice) -> SessionRecord | SessionRows:
        if isinstance(index, slice):
            return SessionRows(
                self._codec, self._rows[index], self._contexts[index], self._records[index]
            )
        record = self._records[index]
        if record is None:
            record = self._codec.decode(self._rows[index], self._contexts[index])
            self._records[index] = record
        return record

    def __iter__(self) -> Iterator[SessionRecord]:
        for index in range(len(self._records)):
            yield self[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SessionRows | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like the list it stands for

    def __repr__(self) -> str:
        return f"SessionRows({list(self)!r})"

    @property
    def codec(self) -> RowCodec:
        return self._codec

    def entries(self) -> Iterator[tuple[Any, Any, SessionRecord | None]]:
        """``(row, context, record)`` of each session, ``record`` ``None`` while the row is
        kept undecoded: for the dialect whose rows they are (check ``codec`` first), which can
        send a kept row on unchanged where it would render the same object from the record."""
        return zip(self._rows, self._contexts, self._records, strict=True)

    def picked(
        self, names: tuple[str, ...], from_record: Callable[[SessionRecord], tuple[Any, ...]]
    ) -> list[tuple[Any, ...]]:
        pick = _picker(self._codec, names)
        return pick(self._rows, self._contexts, self._records, from_record)


class Brief:
    """Picks some of the ``BRIEF_FIELDS`` of every session in a list, as tuples in the order
    given; built once (at import or start-up) by the encoder that needs them."""

    def __init__(self, *names: str) -> None:
        unknown = [name for name in names if name not in BRIEF_FIELDS]
        if len(names) < 2 or unknown:
            raise ValueError(f"a Brief picks two or more of {BRIEF_FIELDS}, not {names}")
        self.names = names
        self._from_record: Callable[[SessionRecord], tuple[Any, ...]] = attrgetter(*names)

    def __call__(self, records: Sequence[SessionRecord]) -> list[tuple[Any, ...]]:
        if type(records) is SessionRows:
            return records.picked(self.names, self._from_record)
        from_record = self._from_record
        return [from_record(record) for record in records]


Rendered = TypeVar("Rendered")


def rendered(
    records: Sequence[SessionRecord],
    codec_type: type[RowCodec] | tuple[type[RowCodec], ...],
    render: Callable[[SessionRecord], Rendered],
) -> list[Rendered | Any]:
    """``render`` of each record, except that a row kept by a codec of ``codec_type`` (or of
    one of them) and not decoded since is sent on as it came. For a dialect whose ``render``
    of a kept row's record gives back that row (its tests hold it to that), so the rows skip
    decoding and rendering."""
    if type(records) is SessionRows and isinstance(records.codec, codec_type):
        return [row if record is None else render(record) for row, _, record in records.entries()]
    return [render(record) for record in records]
