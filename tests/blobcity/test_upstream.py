"""BlobCity outbound over real HTTP: ``rosetta serve`` with a blobcity upstream (once sending
JSON, once the form-encoded form) in front of ``rosetta emulate blobcity`` preloaded with the
sample sessions. Asking through either proxy, in either request form, gives exactly what asking
the emulator directly gives; callers of another dialect (``rosetta``) are served from the same
BlobCity upstream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.blobcity.client import normalised, post_form, post_json, post_urlencoded
from tests.blobcity.test_inbound import SAME_ANSWER_CASES, TRICKY_PASSWORD, TRICKY_USER
from tests.conftest import base_config, sample_sessions
from tests.support.servers import ServerProcess, emulate, serve

PASSWORD = "emulator-pw-3c1d"


def proxy_config(upstream: str, options: dict[str, Any]) -> dict[str, Any]:
    backend = {"type": "upstream", "dialect": "blobcity", "url": upstream, "options": options}
    return base_config(backends={"blobcity": backend}, default_backend="blobcity")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    directory = tmp_path_factory.mktemp("blobcity-upstream")
    started: dict[str, ServerProcess] = {}
    try:
        started["emulator"] = emulator = emulate(
            directory,
            "blobcity",
            sessions=sample_sessions(),
            users=[f"admin:{PASSWORD}", f"{TRICKY_USER}:{TRICKY_PASSWORD}"],
        )
        started["json"] = serve(directory, proxy_config(emulator.url, {}), name="json")
        started["form"] = serve(directory, proxy_config(emulator.url, {"form": True}), name="form")
        yield started
    finally:
        for process in started.values():
            process.stop()


@pytest.mark.parametrize(
    ("code", "p"), [c[1:] for c in SAME_ANSWER_CASES], ids=[c[0] for c in SAME_ANSWER_CASES]
)
def test_through_rosetta_equals_asking_the_emulator(
    servers: dict[str, ServerProcess], code: str, p: Any
) -> None:
    direct = normalised(post_json(servers["emulator"].url, "admin", PASSWORD, code, p))
    for name in ("emulator", "json", "form"):
        for post in (post_json, post_form, post_urlencoded):
            answer = normalised(post(servers[name].url, "admin", PASSWORD, code, p))
            assert answer == direct, (name, post.__name__)


def test_bad_credentials_are_checked_by_the_upstream(servers: dict[str, ServerProcess]) -> None:
    for name in ("json", "form"):
        for post in (post_json, post_form):
            reply = post(servers[name].url, "admin", "wrong", "list-sessions")
            assert reply == {
                "ack": "0",
                "code": "APP003",
                "cause": "Invalid credentials",
                "message": "invalid credentials",
            }
        anonymous = normalised(post_json(servers[name].url, None, None, "ping"))
        assert anonymous == {"ack": "1", "time": 0, "rows": 0, "p": {}}


def test_tricky_passwords_survive_both_outbound_forms(servers: dict[str, ServerProcess]) -> None:
    """The outbound form is properly URL-encoded: &, +, %, space and = arrive intact."""
    expected = {"ack": "1", "time": 0, "rows": 0, "p": {"user": TRICKY_USER}}
    for name in ("emulator", "json", "form"):
        for post in (post_json, post_form, post_urlencoded):
            reply = post(servers[name].url, TRICKY_USER, TRICKY_PASSWORD, "verify-credentials")
            assert normalised(reply) == expected, (name, post.__name__, reply)


def test_kill_through_rosetta_in_both_forms(servers: dict[str, ServerProcess]) -> None:
    emulator = servers["emulator"].url
    killed_json = post_json(servers["json"].url, "admin", PASSWORD, "kill-session", {"id": "103"})
    killed_form = post_form(servers["form"].url, "admin", PASSWORD, "kill-session", {"id": 104})
    assert normalised(killed_json) == normalised(killed_form)
    assert normalised(killed_json) == {"ack": "1", "time": 0, "rows": 1, "p": {}}
    form_proxy = servers["form"].url
    for session_id in ("103", "104"):
        gone = post_json(emulator, "admin", PASSWORD, "describe-session", {"id": session_id})
        assert gone["code"] == "SESSION_INVALID"
        again = post_form(form_proxy, "admin", PASSWORD, "kill-session", {"id": session_id})
        assert again == post_form(emulator, "admin", PASSWORD, "kill-session", {"id": session_id})
        assert again["code"] == "SESSION_INVALID"
    left = post_json(emulator, "admin", PASSWORD, "list-sessions")
    assert [s["id"] for s in left["p"]["sessions"]] == ["101", "102"]


def test_rosetta_dialect_callers_reach_the_blobcity_upstream(
    servers: dict[str, ServerProcess],
) -> None:
    direct = post_json(servers["emulator"].url, "admin", PASSWORD, "describe-session", {"id": 101})
    for name in ("json", "form"):
        reply = httpx.post(
            servers[name].url + "/rosetta/v1/session.get",
            json={"filters": {"ids": ["101"]}},
            auth=("admin", PASSWORD),
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        session = reply.json()["session"]
        assert session["id"] == "101" and session["user"] == direct["p"]["user"]
        assert session["client_address"] == direct["p"]["client-address"]
        assert session["database"] == direct["p"]["ds"]
        assert [c["reads"] for c in session["connections"]] == [2197, 0]
        denied = httpx.post(
            servers[name].url + "/rosetta/v1/session.list", json={}, auth=("admin", "x"), timeout=30
        )
        assert denied.status_code == 401
        assert denied.json()["error"]["native_code"] == "APP003"
        login = httpx.post(
            servers[name].url + "/rosetta/v1/session.login",
            json={"credentials": {"user": "admin", "password": PASSWORD}},
            timeout=30,
        )
        # BlobCity has no login: Rosetta checks the credentials upstream and issues its own
        # session, whose later requests carry the caller's credentials to BlobCity
        assert login.status_code == 200, login.text
        token = login.json()["token"]
        listed = httpx.post(
            servers[name].url + "/rosetta/v1/session.list",
            json={"credentials": {"token": token}},
            timeout=30,
        )
        assert listed.status_code == 200, listed.text
        assert "101" in [s["id"] for s in listed.json()["sessions"]]
        refused = httpx.post(
            servers[name].url + "/rosetta/v1/session.login",
            json={"credentials": {"user": "admin", "password": "wrong"}},
            timeout=30,
        )
        assert refused.status_code == 401
