"""MaxScale query parameters, parsed and validated at decode time and applied at encode time.

Draft (seed "common request parameters"):
  ``fields=a,b``   keep only these top-level keys of each object;
  ``range=a-b``    inclusive slice of an array, **0-based**, clipped at its end.
JSON:API (MaxScale 2.2+):
  ``fields[sessions]=state,memory/total``  sparse fieldset: ``/``-separated paths inside
                   ``attributes`` / ``relationships``; ``id``, ``type`` and ``links`` stay;
  ``page[size]=N&page[number]=K``  K counts from 0;
  ``filter=<json-pointer>=<json>``  e.g. ``filter=/attributes/user="bob"``; the right-hand
                   side may also be an expression ``eq(v) ne lt le gt ge and(..) or(..) not(..)``
                   (``filter=id=and(ge(50),le(100))``), as may ``filter[<json-pointer>]=<expr>``.
                   A pointer without a leading ``/`` is taken from the resource root.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jsonpointer

from translators.contract import ErrorKind, HttpRequest, RosettaError

_MISSING = object()
_DECODER = json.JSONDecoder()
_RANGE = re.compile(r"^\s*(\d{1,9})\s*-\s*(\d{1,9})\s*$")
_EXPRESSION = re.compile(r"^\s*(eq|ne|lt|le|gt|ge|and|or|not)\s*\(")

Predicate = Callable[[Any], bool]


def bad(message: str) -> RosettaError:
    return RosettaError(ErrorKind.BAD_REQUEST, message)


# draft ---------------------------------------------------------------------------------------
def draft_fields(http: HttpRequest) -> list[str] | None:
    raw = http.query_param("fields")
    if raw is None:
        return None
    return [f.strip() for f in raw.split(",") if f.strip()]


def draft_range(http: HttpRequest) -> tuple[int, int] | None:
    """``(offset, count)`` of ``range=a-b`` (0-based, inclusive)."""
    raw = http.query_param("range")
    if raw is None:
        return None
    found = _RANGE.match(raw)
    if found is None or int(found.group(2)) < int(found.group(1)):
        raise bad(f"range must be 'first-last' with 0 <= first <= last, not {raw!r}")
    first, last = int(found.group(1)), int(found.group(2))
    return first, last - first + 1


def keep_fields(obj: dict[str, Any], fields: Sequence[str] | None) -> dict[str, Any]:
    if fields is None:
        return obj
    return {k: v for k, v in obj.items() if k in fields}


# JSON:API ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Page:
    size: int
    number: int

    @property
    def offset(self) -> int:
        return self.size * self.number


@dataclass(frozen=True, slots=True)
class JsonApiQuery:
    fields: list[list[str]] | None = None
    page: Page | None = None
    filters: tuple[tuple[str, Predicate], ...] = ()
    pretty: bool = False

    def matches(self, resource: dict[str, Any]) -> bool:
        for pointer, predicate in self.filters:
            try:
                value = jsonpointer.resolve_pointer(resource, pointer, _MISSING)
            except jsonpointer.JsonPointerException:
                value = _MISSING
            if value is _MISSING or not predicate(value):
                return False
        return True


def jsonapi_query(http: HttpRequest) -> JsonApiQuery:
    fields: list[list[str]] | None = None
    size: int | None = None
    number = 0
    filters: list[tuple[str, Predicate]] = []
    pretty = False
    for key, value in http.query:
        if key == "fields[sessions]":
            fields = [[p for p in f.strip().split("/") if p] for f in value.split(",")]
            fields = [f for f in fields if f]
        elif key == "page[size]":
            size = _natural(key, value, minimum=1)
        elif key == "page[number]":
            number = _natural(key, value, minimum=0)
        elif key == "filter":
            pointer, sep, rhs = value.partition("=")
            if not sep or not pointer:
                raise bad("filter must be '<json-pointer>=<json value or expression>'")
            filters.append((_pointer(pointer), _predicate(rhs)))
        elif key.startswith("filter[") and key.endswith("]"):
            filters.append((_pointer(key[7:-1]), _predicate(value)))
        elif key == "pretty":
            pretty = value.lower() not in ("false", "0", "no")
    page = Page(size, number) if size is not None else None
    return JsonApiQuery(fields, page, tuple(filters), pretty)


def sparse(resource: dict[str, Any], fields: list[list[str]] | None) -> dict[str, Any]:
    """``fields[sessions]``: only the named paths of attributes and relationships."""
    if fields is None:
        return resource
    result = {k: v for k, v in resource.items() if k not in ("attributes", "relationships")}
    for member in ("attributes", "relationships"):
        source = resource.get(member)
        if not isinstance(source, dict):
            continue
        kept: dict[str, Any] = {}
        for path in fields:
            _copy_path(source, kept, path)
        if kept or member == "attributes":
            result[member] = kept
    return result


def _copy_path(source: dict[str, Any], target: dict[str, Any], path: list[str]) -> None:
    head, rest = path[0], path[1:]
    if head not in source:
        return
    if not rest:
        target[head] = source[head]
        return
    inner = source[head]
    if isinstance(inner, dict):
        _copy_path(inner, target.setdefault(head, {}), rest)
        if not target[head]:
            del target[head]


def _natural(key: str, value: str, *, minimum: int) -> int:
    if not value.isascii() or not value.isdigit() or int(value) < minimum:
        raise bad(f"{key} must be an integer >= {minimum}, not {value!r}")
    return int(value)


def _pointer(text: str) -> str:
    pointer = text if text.startswith("/") else "/" + text
    try:
        jsonpointer.JsonPointer(pointer)
    except jsonpointer.JsonPointerException as exc:
        raise bad(f"filter: {text!r} is not a JSON pointer: {exc}") from None
    return pointer


def _predicate(text: str) -> Predicate:
    if _EXPRESSION.match(text):
        try:
            predicate, end = _expression(text, 0)
        except RecursionError:
            raise bad("filter: the expression is nested too deeply") from None
        if text[end:].strip():
            raise bad(f"filter: unexpected {text[end:]!r} after the expression")
        return predicate
    try:
        expected = json.loads(text)
    except (ValueError, RecursionError):
        raise bad(f"filter: {text!r} is not a JSON value") from None
    return lambda value: _equal(value, expected)


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index].isspace():
        index += 1
    return index


def _expect(text: str, index: int, char: str) -> int:
    index = _skip(text, index)
    if index >= len(text) or text[index] != char:
        raise bad(f"filter: expected {char!r} at position {index} of {text!r}")
    return index + 1


def _expression(text: str, index: int) -> tuple[Predicate, int]:
    index = _skip(text, index)
    found = re.compile(r"(eq|ne|lt|le|gt|ge|and|or|not)\s*\(").match(text, index)
    if found is None:
        raise bad(f"filter: expected an expression at position {index} of {text!r}")
    name, index = found.group(1), found.end()
    if name in ("and", "or", "not"):
        parts: list[Predicate] = []
        while True:
            part, index = _expression(text, index)
            parts.append(part)
            index = _skip(text, index)
            if index < len(text) and text[index] == "," and name != "not":
                index += 1
                continue
            break
        index = _expect(text, index, ")")
        if name == "and":
            return (lambda v: all(p(v) for p in parts)), index
        if name == "or":
            return (lambda v: any(p(v) for p in parts)), index
        only = parts[0]
        return (lambda v: not only(v)), index
    try:
        operand, index = _DECODER.raw_decode(text, _skip(text, index))
    except ValueError:
        raise bad(f"filter: {name}() needs a JSON value in {text!r}") from None
    index = _expect(text, index, ")")
    compare = _COMPARISONS[name]
    return (lambda v: compare(v, operand)), index


def _numeric(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value):
        return float(value)
    return None


def _equal(value: Any, expected: Any) -> bool:
    if value == expected:
        return True
    left, right = _numeric(value), _numeric(expected)
    return left is not None and right is not None and left == right


def _ordered(value: Any, operand: Any) -> tuple[Any, Any] | None:
    left, right = _numeric(value), _numeric(operand)
    if left is not None and right is not None:
        return left, right
    if isinstance(value, str) and isinstance(operand, str):
        return value, operand
    return None


def _lt(v: Any, o: Any) -> bool:
    pair = _ordered(v, o)
    return pair is not None and pair[0] < pair[1]


def _le(v: Any, o: Any) -> bool:
    pair = _ordered(v, o)
    return pair is not None and pair[0] <= pair[1]


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _equal,
    "ne": lambda v, o: not _equal(v, o),
    "lt": _lt,
    "le": _le,
    "gt": lambda v, o: _ordered(v, o) is not None and not _le(v, o),
    "ge": lambda v, o: _ordered(v, o) is not None and not _lt(v, o),
}
