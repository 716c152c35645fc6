"""Lenient, bounded parsing of the form-encoded BlobCity request body.

The official Java adapter builds ``username=..&password=..&ds=..&q=<json>`` with a format
string and does not URL-encode the values, while ordinary HTTP clients (curl
``--data-urlencode``, Python ``requests``) do. One parser has to read both:

* The body is cut at ``&``; a piece starts a new field only when it begins with
  ``name=`` (a plain identifier). Any other piece belongs to the previous value, so a raw
  ``&`` inside an unencoded password or query survives.
* A ``q`` whose raw value starts with ``{`` is raw JSON: following ``name=`` pieces are
  joined to it until it parses (at most ``MAX_JSON_ATTEMPTS`` tries, so a hostile body cannot
  make parsing quadratic), because a JSON string may itself contain ``&x=``.
* Each value keeps two readings: ``raw`` (as sent) and ``decoded`` (form decoding: ``+`` is a
  space, ``%XX`` a byte). A value with a ``%`` that is not a valid escape, or whose escapes
  do not decode as UTF-8, was evidently not encoded, and its decoded reading is the raw text.
* A field sent twice with different values is refused rather than guessed.
* ``FormFields.agrees`` tells whether a field could have carried a given value under any of
  these readings (used to compare the form's credentials with those inside ``q``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_plus

import orjson

from translators.contract import ErrorKind, RosettaError

MAX_JSON_ATTEMPTS = 16
_FIELD_START = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]{0,63})=")
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True, slots=True)
class FormValue:
    """One form field as sent (``raw``) and form-decoded (``decoded``)."""

    raw: str
    decoded: str

    def readings(self) -> tuple[str, ...]:
        return (self.decoded,) if self.raw == self.decoded else (self.decoded, self.raw)


def decode_value(raw: str) -> str:
    """Form-decode ``raw``, or keep it as sent when it was evidently not encoded."""
    if _STRAY_PERCENT.search(raw):
        return raw
    try:
        return unquote_plus(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        return raw


def _parses(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


class FormFields(dict[str, FormValue]):
    """Parsed form fields, and the text they came from."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def agrees(self, name: str, value: str) -> bool:
        """Whether field ``name`` could have been sent as ``value``: one of its readings is
        ``value``, or the body holds ``name=value`` verbatim as a whole field (an unencoded
        value that itself contains ``&x=`` is cut at that point by the parser)."""
        field = self.get(name)
        if field is not None and value in field.readings():
            return True
        needle = f"{name}={value}"
        start = self.text.find(needle)
        while start != -1:
            end = start + len(needle)
            if (start == 0 or self.text[start - 1] == "&") and (
                end == len(self.text) or self.text[end] == "&"
            ):
                return True
            start = self.text.find(needle, start + 1)
        return False


def parse_form(text: str) -> FormFields:
    """The fields of a form body (or query string); see the module docstring."""
    fields: list[tuple[str, str]] = []
    attempts = 0
    for piece in text.split("&"):
        start = _FIELD_START.match(piece)
        if fields:
            name, value = fields[-1]
            raw_json = name == "q" and value.lstrip().startswith("{")
            joins = start is None
            if raw_json and start is not None and attempts < MAX_JSON_ATTEMPTS:
                attempts += 1
                joins = not _parses(value)
            if joins:
                fields[-1] = (name, f"{value}&{piece}")
                continue
        if start is None:
            if piece.strip():
                raise RosettaError(ErrorKind.BAD_REQUEST, "Invalid query format")
            continue
        fields.append((start.group(1), piece[start.end() :]))
    parsed = FormFields(text)
    for name, raw in fields:
        field = FormValue(raw, decode_value(raw))
        seen = parsed.get(name)
        if seen is not None and seen != field:
            raise RosettaError(ErrorKind.BAD_REQUEST, f"form field {name!r} is given twice")
        parsed[name] = field
    return parsed


def query_json(value: FormValue) -> object:
    """The JSON held by the ``q`` field: the raw text first (the Java adapter sends it
    unencoded, and decoding would turn a ``+`` in a password into a space), then the
    form-decoded text. Raises bad_request when neither is JSON."""
    for text in (value.raw, value.decoded):
        if text.lstrip().startswith("{"):
            try:
                return orjson.loads(text)
            except orjson.JSONDecodeError:
                continue
    raise RosettaError(ErrorKind.BAD_REQUEST, "Invalid query format: q is not a JSON object")
