"""Hypothesis strategies for hostile input: garbage bodies (never a valid request of any
dialect) and near-misses (a valid request of the dialect with one or two things wrong:
a key dropped or added, a value of the wrong type, a huge or non-finite number, an invalid
UTF-8 string, a deep nesting), plus query strings and content types.

JSON is written by ``encode`` so that tokens no JSON library emits (``1e400``, ``NaN``,
``-0``, ``2**70``, raw invalid UTF-8 inside a string) can be placed anywhere in a document."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
from hypothesis import strategies as st


@dataclass(frozen=True)
class Raw:
    """A JSON token written as is."""

    token: bytes


HUGE_TOKENS = (
    b"1e400",
    b"-1e400",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"-0",
    b"-0.0",
    str(2**70).encode(),
    str(-(2**70)).encode(),
    str(2**64).encode(),
    b"1" * 400,
    b"1e-400",
    b"0x10",
    b"01",
    b"1.",
    b".5",
    b"+1",
)
BAD_STRINGS = (b'"\xff\xfe"', b'"\xc3\x28"', b'"\xed\xa0\x80"', b'"\\ud800"', b'"a\x00b"')


def encode(value: Any) -> bytes:
    if isinstance(value, Raw):
        return value.token
    if isinstance(value, dict):
        return b"{" + b",".join(encode(str(k)) + b":" + encode(v) for k, v in value.items()) + b"}"
    if isinstance(value, list | tuple):
        return b"[" + b",".join(encode(v) for v in value) + b"]"
    return orjson.dumps(value)


def deep(depth: int, *, kind: str = "array") -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(HUGE_TOKENS).map(Raw),
    st.sampled_from(BAD_STRINGS).map(Raw),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=10), children, max_size=4),
    ),
    max_leaves=12,
)
nested = st.integers(min_value=1020, max_value=1040).map(lambda d: Raw(deep(d)))
wrong_values = st.one_of(json_values, nested)


def _not_json_text(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return True
    return False


#: bodies that are not a request of any dialect: not JSON, or JSON that is not an object
garbage_bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).filter(_not_json_text).map(lambda t: t.encode("utf-8")),
    st.sampled_from(
        [
            b"",
            b" ",
            b"{",
            b"}",
            b'{"a":',
            b"[1,2",
            b"null",
            b"true",
            b"0",
            b'"text"',
            b"[]",
            b"[{}]",
            b"\xef\xbb\xbf{}",
            b"{'single': 'quotes'}",
            b"{a: 1}",
            b'{"a":1,}',
            b'{"a":1}{"b":2}',
            b"<xml/>",
            b"\x00\x00\x00",
        ]
    ),
    st.builds(lambda v: encode(v), st.lists(json_values, max_size=4)),
    st.sampled_from(HUGE_TOKENS + BAD_STRINGS),
    st.sampled_from(["utf-16", "utf-32", "latin-1"]).map(lambda enc: '{"é": "ü"}'.encode(enc)),
)

CONTENT_TYPES = (
    None,
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=utf-16",
    "text/plain",
    "text/html",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/octet-stream",
    "application/json-patch+json",
    "application/vnd.api+json",
    "*/*",
    "garbage",
    "",
)
content_types = st.sampled_from(CONTENT_TYPES)


def with_content_type(headers: dict[str, str], content_type: str | None) -> dict[str, str]:
    if content_type is None:
        return headers
    return {**headers, "content-type": content_type}


@st.composite
def mutated(draw: st.DrawFn, seed: dict[str, Any]) -> Any:
    """``seed`` with one to three changes at any depth: a key dropped, a key added, a value
    replaced by a wrong one; or the whole document wrapped or replaced."""
    value: Any = _copy(seed)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        value = _mutate_once(draw, value)
    return value


def _mutate_once(draw: st.DrawFn, value: Any) -> Any:
    paths = list(_paths(value))
    path = draw(st.sampled_from(paths))
    action = draw(st.sampled_from(["replace", "replace", "drop", "add", "wrap"]))
    if not path:
        if action == "wrap":
            return [value]
        return draw(wrong_values) if action == "replace" else value
    parent = _get(value, path[:-1])
    key = path[-1]
    if action == "drop":
        if isinstance(parent, dict):
            parent.pop(key, None)
        elif isinstance(parent, list) and parent:
            parent.pop(key)
    elif action == "add":
        target = _get(value, path)
        if isinstance(target, dict):
            target[draw(st.text(max_size=12))] = draw(wrong_values)
        elif isinstance(target, list):
            target.append(draw(wrong_values))
        else:
            parent[key] = draw(wrong_values)
    elif action == "wrap":
        parent[key] = [parent[key]]
    else:
        parent[key] = draw(wrong_values)
    return value


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_paths(child, (*prefix, index)))
    return found


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


# query strings -----------------------------------------------------------------------------
query_values = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "",
            "-1",
            "0",
            "1e400",
            "NaN",
            "-0",
            str(2**70),
            "1" * 400,
            "abc",
            "true",
            "null",
            "[]",
            "{}",
            "0x10",
            " 1",
            "1.5",
            "%",
            "%zz",
        ]
    ),
)


@st.composite
def query_string(draw: st.DrawFn, names: list[str]) -> str:
    """Known and unknown parameter names with hostile values; sometimes raw bytes that are not
    UTF-8 once percent-decoded (``%FF``)."""
    pairs = draw(
        st.lists(
            st.tuples(st.one_of(st.sampled_from([*names, "x"]), st.text(max_size=8)), query_values),
            max_size=4,
        )
    )
    parts = [f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs]
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from(["%FF=%FE", "a=%C3%28", "x", "=", "&&", "a=b=c"])))
    return "&".join(draw(st.permutations(parts)))


path_segments = st.one_of(
    st.text(min_size=1, max_size=20)
    .filter(lambda s: s not in (".", ".."))
    .map(lambda s: quote(s, safe="")),
    st.sampled_from(
        ["0", "-1", "00", "1e400", str(2**70), "%FF", "%2F", "%2E%2E", "%00", "%0A", "1" * 300]
    ),
)
