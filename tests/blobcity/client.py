"""A small BlobCity client for the tests: the documented JSON form, the Java adapter's
unencoded form, and a properly URL-encoded form; plus envelope normalisation."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

PATH = "/rest/bquery"
FORM = "application/x-www-form-urlencoded"


def post_raw(url: str, body: bytes, content_type: str = FORM) -> httpx.Response:
    return httpx.post(url + PATH, content=body, headers={"content-type": content_type}, timeout=30)


def query_json(user: str | None, password: str | None, code: str, p: Any) -> dict[str, Any]:
    query: dict[str, Any] = {"q": code}
    if user is not None:
        query["username"] = user
    if password is not None:
        query["password"] = password
    query["p"] = p
    return query


def post_json(
    url: str, user: str | None, password: str | None, code: str, p: Any = None
) -> dict[str, Any]:
    """The documented form: one JSON object."""
    body: dict[str, Any] = {}
    if user is not None:
        body["username"] = user
    if password is not None:
        body["password"] = password
    body["q"] = code
    body["p"] = p if p is not None else {}
    reply = post_raw(url, orjson.dumps(body), "application/json")
    return envelope(reply)


def java_form_body(
    user: str | None, password: str | None, code: str, p: Any = None, ds: str = "testds"
) -> bytes:
    """What the Java adapter sends: plain fields and q concatenated without URL-encoding,
    credentials repeated inside q, ``p`` null when empty."""
    query = query_json(user, password, code, p if p else None)
    query["ds"] = ds
    fields = []
    if user is not None:
        fields.append(f"username={user}")
    if password is not None:
        fields.append(f"password={password}")
    fields.append(f"ds={ds}")
    fields.append("q=" + orjson.dumps(query).decode())
    return "&".join(fields).encode()


def post_form(
    url: str, user: str | None, password: str | None, code: str, p: Any = None
) -> dict[str, Any]:
    """The Java adapter's form-encoded request, byte for byte."""
    return envelope(post_raw(url, java_form_body(user, password, code, p)))


def post_urlencoded(
    url: str, user: str | None, password: str | None, code: str, p: Any = None
) -> dict[str, Any]:
    """A well-behaved form client: every field URL-encoded; credentials only in q."""
    query = query_json(user, password, code, p)
    return envelope(post_raw(url, urlencode({"q": orjson.dumps(query).decode()}).encode()))


def envelope(reply: httpx.Response) -> dict[str, Any]:
    """The JSON envelope; BlobCity answers HTTP 200 with a JSON body, success or failure."""
    assert reply.status_code == 200, (reply.status_code, reply.text)
    assert reply.headers["content-type"] == "application/json"
    body: dict[str, Any] = orjson.loads(reply.content)
    return body


def normalised(body: dict[str, Any], time: int = 0) -> dict[str, Any]:
    """The envelope with the measured ``time`` (which varies) replaced by ``time``."""
    if body.get("ack") == "1":
        assert isinstance(body["time"], int) and body["time"] >= 0, body
        return {**body, "time": time}
    return body
