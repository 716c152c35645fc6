"""A small JUMP client for the tests: sends JUMP requests over real HTTP as a POST body or as
``GET ?inputStream=...&callback=...`` (JSONP), keeps the session cookie like a browser, and
unwraps the envelope."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

CALLBACK = "jQuery1_7.cb"
SESSION_SERVICE = "SessionService"
USERS = "UserManagerService"


def unwrap_jsonp(text: str, callback: str = CALLBACK) -> Any:
    prefix, suffix = f"/**/{callback}(", ");"
    assert text.startswith(prefix) and text.endswith(suffix), text[:200]
    return orjson.loads(text[len(prefix) : -len(suffix)])


class JumpClient:
    """One browser-like caller: ``mode`` is ``post`` or ``jsonp``."""

    def __init__(self, base_url: str, mode: str = "post", path: str = "/presto/edge/api") -> None:
        self.http = httpx.Client(base_url=base_url, timeout=20)
        self.mode = mode
        self.path = path
        self.last: httpx.Response | None = None

    def call(
        self,
        sid: str,
        oid: str,
        params: Any = None,
        *,
        headers: dict[str, str] | None = None,
        version: str = "1.0",
        **extra: Any,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"version": version, "sid": sid, "svcVersion": "0.1", "oid": oid}
        if params is not None:
            message["params"] = params
        message.update(extra)
        if self.mode == "jsonp":
            reply = self.http.get(
                self.path,
                params={"inputStream": orjson.dumps(message).decode(), "callback": CALLBACK},
                headers=headers,
            )
            assert reply.headers["content-type"].startswith("application/javascript")
            body = unwrap_jsonp(reply.text)
        else:
            reply = self.http.post(self.path, json=message, headers=headers)
            assert reply.headers["content-type"] == "application/json", reply.text
            body = reply.json()
        assert reply.status_code == 200, reply.text
        self.last = reply
        assert isinstance(body, dict)
        return body

    def session(self, oid: str, params: Any = None, **kw: Any) -> dict[str, Any]:
        return self.call(SESSION_SERVICE, oid, params, **kw)

    def login(self, user: str, password: str) -> dict[str, Any]:
        return self.call(USERS, "login", [user, password], version="1.1")

    def logout(self) -> dict[str, Any]:
        return self.call(USERS, "logout", [])

    @property
    def cookie(self) -> str | None:
        return self.http.cookies.get("JSESSIONID")

    def close(self) -> None:
        self.http.close()


def ok(body: dict[str, Any]) -> Any:
    """The response data of a successful envelope."""
    assert body["error"] in ("", None) and body["errorCode"] in ("", None), body
    return body["response"]


def failed(body: dict[str, Any], code: str) -> str:
    """The error message of a failed envelope with ``code``."""
    assert body["response"] == "", body
    assert body["errorCode"] == code, body
    message: str = body["error"]
    assert message.startswith("Failed to handle given request. Error = ")
    return message


def current_user(body: dict[str, Any]) -> str:
    user: str = body["header"]["map"]["currentUser"]
    return user


def session_timeout(body: dict[str, Any]) -> int:
    value = body["header"]["map"]["sessionTimeout"]
    assert isinstance(value, str)
    return int(value)
