"""What ``maxctrl`` does (list sessions, show one, destroy one with ``?ttl=0``, list again)
against the local backend, and through Rosetta to ``rosetta emulate maxscale`` compared with
talking to an identical emulator directly. Also: a kill through either MaxScale format ends a
session logged in through the ``rosetta`` dialect, and Rosetta's draft / JWT outbound modes."""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, base_config, sample_sessions
from tests.maxscale.jsonapi import v1
from tests.support.servers import ServerProcess, emulate, serve

EMULATOR_USER = ("admin", "emulator-pw-3c1d")
LIST_FIELDS = ("user", "remote", "connected", "idle", "memory", "io_activity")
SHOW_FIELDS = ("state", "port", "parameters", "client", "connections", "queries", "log")


def maxctrl_flow(url: str, auth: tuple[str, str], victim: str) -> dict[str, Any]:
    """The requests and reads of ``maxctrl list sessions``, ``show session``, ``destroy
    session``; the result is what maxctrl would print (minus the clock-driven fields)."""
    listed = v1("GET", f"{url}/v1/sessions", auth=auth)
    assert listed.status_code == 200
    rows = []
    for resource in listed.json()["data"]:
        attrs = resource["attributes"]
        row = {"id": resource["id"], **{k: attrs.get(k) for k in LIST_FIELDS}}
        row["connected"] = parsedate_to_datetime(attrs["connected"]).isoformat()
        row["services"] = [s["id"] for s in resource["relationships"]["services"]["data"]]
        rows.append(row)
    shown = v1("GET", f"{url}/v1/sessions/{victim}", auth=auth)
    assert shown.status_code == 200
    attrs = shown.json()["data"]["attributes"]
    show = {k: attrs.get(k) for k in SHOW_FIELDS}
    destroyed = v1("DELETE", f"{url}/v1/sessions/{victim}?ttl=0", auth=auth)
    assert 200 <= destroyed.status_code < 300
    again = v1("GET", f"{url}/v1/sessions", auth=auth).json()["data"]
    gone = v1("GET", f"{url}/v1/sessions/{victim}", auth=auth)
    return {
        "list": rows,
        "show": show,
        "destroy": destroyed.status_code,
        "after": [r["id"] for r in again],
        "show_after": gone.status_code,
    }


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    """A local Rosetta; two identical emulators; a Rosetta whose maxscale inbound goes to the
    first emulator (JSON:API) and whose rosetta inbound goes to the second (draft, JWT)."""
    directory = tmp_path_factory.mktemp("mx-flow")
    sessions_file = directory / "sessions.json"
    sessions_file.write_text(
        Path(__file__).parent.parent.joinpath("fixtures/sessions.json").read_text()
    )
    started: dict[str, ServerProcess] = {}
    try:
        local_config = base_config(
            backends={
                "local": {"type": "local", "node_id": "n1", "sessions_file": str(sessions_file)}
            }
        )
        started["local"] = serve(directory, local_config, name="local")
        user = f"{EMULATOR_USER[0]}:{EMULATOR_USER[1]}"
        for name in ("behind", "direct", "draft"):
            started[name] = emulate(directory, "maxscale", sessions=sample_sessions(), users=[user])
        proxy_config = base_config(
            inbound={"maxscale": {}, "rosetta": {"backend": "draft"}},
            backends={
                "jsonapi": {
                    "type": "upstream",
                    "dialect": "maxscale",
                    "url": started["behind"].url,
                },
                "draft": {
                    "type": "upstream",
                    "dialect": "maxscale",
                    "url": started["draft"].url,
                    "options": {"format": "draft", "auth": "jwt"},
                },
            },
            default_backend="jsonapi",
        )
        started["proxy"] = serve(directory, proxy_config, name="proxy")
        yield started
    finally:
        for server in started.values():
            server.stop()


def test_maxctrl_flow_on_the_local_backend(servers: dict[str, ServerProcess]) -> None:
    result = maxctrl_flow(servers["local"].url, ("admin", ADMIN_PASSWORD), "102")
    assert [r["id"] for r in result["list"]][:4] == ["101", "102", "103", "104"]
    assert result["list"][0]["services"] == ["my-service"]
    assert result["show"]["port"] == 50413 and result["show"]["parameters"]["log_info"] is False
    assert result["destroy"] == 200 and result["show_after"] == 404
    assert "102" not in result["after"] and "101" in result["after"]


def test_maxctrl_flow_through_rosetta_matches_the_emulator(
    servers: dict[str, ServerProcess],
) -> None:
    through = maxctrl_flow(servers["proxy"].url, EMULATOR_USER, "103")
    direct = maxctrl_flow(servers["direct"].url, EMULATOR_USER, "103")
    assert through == direct
    assert through["after"] == ["101", "102", "104"]


def test_documents_through_rosetta_equal_the_emulators(servers: dict[str, ServerProcess]) -> None:
    def plain(server: ServerProcess, path: str) -> Any:
        doc = v1("GET", server.url + path, auth=EMULATOR_USER).json()
        text = httpx.Response(200, json=doc).text.replace(server.url, "http://HOST")
        return _drop_clock(httpx.Response(200, content=text).json())

    for path in ("/v1/sessions", "/v1/sessions/101", "/v1/sessions?page[size]=1&page[number]=1"):
        assert plain(servers["proxy"], path) == plain(servers["behind"], path)


def test_upstream_errors_keep_the_jsonapi_envelope(servers: dict[str, ServerProcess]) -> None:
    proxy = servers["proxy"].url
    missing = v1("GET", proxy + "/v1/sessions/999999", auth=EMULATOR_USER)
    assert missing.status_code == 404
    denied = v1("GET", proxy + "/v1/sessions", auth=("admin", "wrong"))
    assert denied.status_code == 401 and denied.json() == {"errors": [{"detail": "Access denied"}]}
    token = v1("GET", proxy + "/v1/auth", auth=EMULATOR_USER).json()["meta"]["token"]
    with_jwt = v1("GET", proxy + "/v1/sessions", headers={"authorization": f"Bearer {token}"})
    assert with_jwt.status_code == 200


def test_patch_through_rosetta(servers: dict[str, ServerProcess]) -> None:
    proxy = servers["proxy"].url
    body = {"data": {"attributes": {"parameters": {"log_notice": True}}}}
    assert v1("PATCH", proxy + "/v1/sessions/104", auth=EMULATOR_USER, json=body).status_code == 200
    direct = v1("GET", servers["behind"].url + "/v1/sessions/104", auth=EMULATOR_USER).json()
    assert direct["data"]["attributes"]["parameters"]["log_notice"] is True
    draft = httpx.patch(
        proxy + "/sessions/104",
        auth=EMULATOR_USER,
        headers={"content-type": "application/json-patch+json"},
        json=[{"op": "replace", "path": "/parameters/log_debug", "value": True}],
    )
    assert draft.status_code == 200 and draft.json()["id"] == 104
    assert draft.json()["parameters"]["log_debug"] is True


def test_draft_jwt_upstream_through_the_rosetta_dialect(servers: dict[str, ServerProcess]) -> None:
    proxy = servers["proxy"].url

    def call(operation: str, **body: Any) -> httpx.Response:
        creds = {"user": EMULATOR_USER[0], "password": EMULATOR_USER[1]}
        return httpx.post(
            f"{proxy}/rosetta/v1/{operation}", json={"credentials": creds, **body}, timeout=20
        )

    listed = call("session.list", filters={"users": ["jdoe"]}, limit=1)
    assert listed.status_code == 200, listed.text
    assert [s["id"] for s in listed.json()["sessions"]] == ["101"]
    assert listed.json()["total"] == 2
    one = call("session.get", filters={"ids": ["101"]}).json()["session"]
    assert one["client_address"] == "192.168.0.200" and one["service"] == "my-service"
    assert one["connected_at"] == "2016-08-31T03:03:12Z" and one["idle_seconds"] == 260
    conns = call("session.connections", filters={"ids": ["101"]}).json()["connections"]
    assert [(c["server"], c["reads"], c["writes"]) for c in conns] == [
        ("db-serv-01", 2197, 1562),
        ("db-serv-02", 0, 0),
    ]
    killed = call("session.kill_all", filters={"node_id": None, "users": ["app"]})
    assert killed.status_code == 200 and killed.json()["affected"] == 1
    assert call("session.get", filters={"ids": ["104"]}).status_code == 404
    assert call("session.logout").status_code == 501
    # the JWT came from the draft emulator's /v1/auth: it shows there as a maxscale session
    direct = v1("GET", servers["draft"].url + "/v1/sessions", auth=EMULATOR_USER).json()
    assert any(
        r["relationships"]["services"]["data"][0]["id"] == "maxscale" for r in direct["data"]
    )


@pytest.mark.parametrize("path", ["/v1/sessions/{id}?ttl=0", "/sessions/{id}"])
def test_kill_ends_a_rosetta_dialect_login_everywhere(
    servers: dict[str, ServerProcess], path: str
) -> None:
    url = servers["local"].url
    login = httpx.post(
        f"{url}/rosetta/v1/session.login",
        json={"credentials": {"user": "admin", "password": ADMIN_PASSWORD}},
    ).json()
    token, session_id = login["token"], login["session"]["id"]
    alive = httpx.post(f"{url}/rosetta/v1/session.ping", json={"credentials": {"token": token}})
    assert alive.status_code == 200
    killed = httpx.delete(url + path.format(id=session_id), auth=("admin", ADMIN_PASSWORD))
    assert killed.status_code in (200, 204)
    after = httpx.post(f"{url}/rosetta/v1/session.ping", json={"credentials": {"token": token}})
    assert after.status_code == 401 and after.json()["error"]["kind"] == "unauthenticated"


def _drop_clock(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _drop_clock(v) for k, v in doc.items() if k != "seconds_alive"}
    if isinstance(doc, list):
        return [_drop_clock(v) for v in doc]
    return doc
