"""Helpers every translator needs at the HTTP edge: strict JSON bodies, JSON responses, and
the time formats the dialects use (RFC 3339, HTTP-date, C asctime)."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import msgspec
import orjson

from translators.contract import ErrorKind, HttpRequest, HttpResponse, RosettaError

JSON_CONTENT_TYPE = ("content-type", "application/json")
MAX_JSON_DEPTH = 128
"""Deepest nesting accepted: orjson reads up to 1024 levels but writes only 254, and a value a
dialect echoes (a request id, ``debugInfo``) must still fit inside its reply envelope."""


# orjson reads integers beyond 64 bits as floats; a run of 19+ digits sends the document to
# the standard library's exact parser instead. One C-speed pass maps every digit to "0" and
# every "{" to "[", then the copy is searched for 19 zeros and its "[" counted (an upper bound
# of the nesting depth): far cheaper than a regex over digit-dense JSON.
_SCAN_TABLE = bytes(0x30 if 0x30 <= b <= 0x39 else 0x5B if b == 0x7B else b for b in range(256))
_LONG_RUN = b"0" * 19
# The nesting depth of a document is read from its text: escapes dropped, every byte but
# quotes and brackets deleted, strings (now only quotes and brackets) dropped, then innermost
# "[]" pairs removed pass by pass; the number of passes is the depth. The strings go in one C
# pass when none holds a bracket, which is so exactly when the quotes, scanned left to right,
# all come in adjacent pairs (each string's opening quote is followed by its closing one);
# otherwise empty strings are dropped and a regex removes the rest. All of it costs a few
# bytes per container, where walking the parsed tree costs ~0.2 us a value.
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_BRACKETS = bytes(0x5B if b == 0x7B else 0x5D if b == 0x7D else b for b in range(256))
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _exact_loads(data: bytes) -> Any:
    try:
        return json.loads(data, parse_constant=_no_constants)
    except RecursionError:
        raise ValueError("nesting too deep") from None


def parse_json(data: bytes | str, *, what: str = "request body") -> Any:
    """Parse JSON strictly (UTF-8, no NaN, at most ``MAX_JSON_DEPTH`` levels of nesting)
    without losing integer precision; failures are bad_request."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        value = orjson.loads(raw)
        scanned = raw.translate(_SCAN_TABLE)
        if _LONG_RUN in scanned:
            value = _exact_loads(raw)  # orjson has vouched for the syntax; now exact integers
    except orjson.JSONDecodeError as exc:
        raise RosettaError(ErrorKind.BAD_REQUEST, f"{what} is not valid JSON: {exc.msg}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise RosettaError(ErrorKind.BAD_REQUEST, f"{what} is not valid JSON: {exc}") from exc
    if scanned.count(b"[") > MAX_JSON_DEPTH and text_depth(raw) > MAX_JSON_DEPTH:
        raise RosettaError(
            ErrorKind.BAD_REQUEST, f"{what} is nested deeper than {MAX_JSON_DEPTH} levels"
        )
    return value


def text_depth(raw: bytes) -> int:
    """Levels of arrays and objects in a document that is valid JSON (orjson has read it)."""
    if b"\\" in raw:
        raw = _ESCAPE.sub(b"", raw)
    structure = raw.translate(_BRACKETS, _NOT_STRUCTURE)
    if structure.count(b'""') * 2 == structure.count(b'"'):  # every string is bracket-free
        structure = structure.translate(None, b'"')
    else:
        structure = _STRING.sub(b"", structure.replace(b'""', b""))
    depth = 0
    while structure:
        structure = structure.replace(b"[]", b"")
        depth += 1
        if depth > MAX_JSON_DEPTH:
            break
    return depth


def json_body(request: HttpRequest) -> Any:
    """The request body as JSON; an empty body is a bad request."""
    if not request.body.strip():
        raise RosettaError(ErrorKind.BAD_REQUEST, "request body is empty")
    return parse_json(request.body)


class RawJson:
    """A value some other encoder already wrote as JSON (``text``), to be embedded as is by
    ``dump_json``; ``plain()`` gives the same value as plain Python data, for the one writer
    that cannot embed text (the standard library's, which integers beyond 64 bits need)."""

    __slots__ = ("plain", "text")

    def __init__(self, text: bytes, plain: Callable[[], Any]) -> None:
        self.text = text
        self.plain = plain


def rows_json(objects: list[Any], struct_type: type) -> Any:
    """A list of JSON objects, some of which may be msgspec structs of ``struct_type`` (rows
    an upstream's typed reply kept), as a value ``dump_json`` writes: all structs, written by
    msgspec in one pass (a ``RawJson``); otherwise ``rows_as_dicts``."""
    if set(map(type, objects)) == {struct_type}:
        plain = functools.partial(msgspec.to_builtins, objects)
        return RawJson(msgspec.json.encode(objects), plain)
    return rows_as_dicts(objects, struct_type)


def rows_as_dicts(objects: list[Any], struct_type: type) -> list[Any]:
    """The list with each msgspec struct of ``struct_type`` as the dict it encodes to."""
    return [msgspec.to_builtins(o) if type(o) is struct_type else o for o in objects]


def _embedded(value: Any) -> Any:
    if type(value) is RawJson:
        return orjson.Fragment(value.text)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def _plain_or_text(value: Any) -> Any:
    return value.plain() if type(value) is RawJson else str(value)


def dump_json(value: Any) -> bytes:
    """Serialise with orjson (naive datetimes as UTC, ``RawJson`` embedded as written). Dicts
    with keys that are not strings are written with those keys stringified, and integers
    beyond 64 bits by the standard library. The first try does without
    ``OPT_NON_STR_KEYS``, which changes nothing for string keys but halves orjson's speed on
    a list reply; only a value it refuses is tried again."""
    try:
        return orjson.dumps(value, default=_embedded, option=orjson.OPT_NAIVE_UTC)
    except TypeError:
        pass
    try:
        return orjson.dumps(
            value, default=_embedded, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_NAIVE_UTC
        )
    except TypeError:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_plain_or_text)
        return text.encode("utf-8")


def json_response(status: int, value: Any, headers: Iterable[tuple[str, str]] = ()) -> HttpResponse:
    return HttpResponse(status, [JSON_CONTENT_TYPE, *headers], dump_json(value))


def empty_response(status: int, headers: Iterable[tuple[str, str]] = ()) -> HttpResponse:
    return HttpResponse(status, list(headers), b"")


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_http_date(moment: datetime) -> str:
    """``Fri, 05 Jan 2024 07:24:06 GMT``."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def parse_http_date(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    except ValueError as exc:
        raise RosettaError(ErrorKind.UPSTREAM_ERROR, f"not an HTTP-date: {text!r}") from exc


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_asctime(moment: datetime) -> str:
    """C ``asctime`` form in UTC, locale-independent: ``Wed Aug 31 03:03:12 2016``."""
    m = moment.astimezone(UTC)
    return (
        f"{_DAYS[m.weekday()]} {_MONTHS[m.month - 1]} {m.day:2d} "
        f"{m.hour:02d}:{m.minute:02d}:{m.second:02d} {m.year}"
    )


def parse_asctime(text: str) -> datetime:
    try:
        return datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)
    except ValueError as exc:
        raise RosettaError(ErrorKind.UPSTREAM_ERROR, f"not an asctime date: {text!r}") from exc
