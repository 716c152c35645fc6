"""The JUMP inbound side over real HTTP: every failure as an in-band JUMP error envelope (never
a 500), JSONP and XML rendering that cannot be used for injection, the REST form, per-request
credentials, x-p-method, named parameters and dialect settings."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD
from tests.jump.client import CALLBACK, JumpClient, current_user, failed, ok, unwrap_jsonp
from tests.support.servers import ServerProcess

API = "/presto/edge/api"


def post_raw(server: ServerProcess, body: bytes, **kw: Any) -> httpx.Response:
    return httpx.post(server.url + API, content=body, timeout=20, **kw)


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        (b"{not json", "RSJE0400", "not valid JSON"),
        (b"[1, 2]", "RSJE0400", "must be a JSON object"),
        (b'{"oid": "listSessions"}', "RSJE0400", "'sid' and 'oid'"),
        (b'{"sid": "SessionService"}', "RSJE0400", "'sid' and 'oid'"),
        (b'{"sid": 5, "oid": "x"}', "RSJE0400", "'sid' and 'oid'"),
        (b'{"sid": "SessionService", "oid": "listSessions", "params": "x"}', "RSJE0400", "params"),
        (b'{"sid": "SessionService", "oid": "getSession", "params": []}', "RSJE0400", "session id"),
        (
            b'{"sid": "SessionService", "oid": "getSession", "params": {"bogus": 1}}',
            "RSJE0400",
            "no parameter 'bogus'",
        ),
        (
            b'{"sid": "SessionService", "oid": "getSession", "params": [{"a": 1}, 2]}',
            "RSJE0400",
            "at most 1",
        ),
        (
            b'{"sid": "SessionService", "oid": "listSessions", "params": {"limit": -1}}',
            "RSJE0400",
            "limit",
        ),
        (b'{"sid": "SessionService", "oid": "dropTable"}', "RSJE0501", "Unable to find operation"),
        (b'{"sid": "SessionService", "oid": "listSessions"}', "RSJE0401", "authentication"),
    ],
)
def test_bad_requests_are_in_band_jump_errors(
    local_server: ServerProcess, body: bytes, code: str, fragment: str
) -> None:
    reply = post_raw(local_server, body, headers={"content-type": "application/json"})
    assert reply.status_code == 200
    envelope = reply.json()
    assert fragment in failed(envelope, code)
    assert current_user(envelope) == "anonymousUser"
    assert envelope["header"]["map"]["sessionTimeout"] == "1800"


def test_json_body_sent_as_form_encoded_is_json(local_server: ServerProcess) -> None:
    body = b'{"sid":"UserManagerService","oid":"login","params":["admin","%s"]}' % (
        ADMIN_PASSWORD.encode()
    )
    reply = post_raw(
        local_server, body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert current_user(reply.json()) == "admin"


def test_envelope_echoes_the_request(local_server: ServerProcess) -> None:
    message = {
        "version": "1.1",
        "sid": "SessionService",
        "svcVersion": "0.2",
        "oid": "getSession",
        "appId": "app-7",
        "header": {"invId": "inv-42"},
        "params": [],
    }
    envelope = post_raw(local_server, orjson.dumps(message)).json()
    failed(envelope, "RSJE0400")
    for key, value in (("sid", "SessionService"), ("oid", "getSession"), ("version", "1.1")):
        assert envelope[key] == value
    assert envelope["svcVersion"] == "0.2" and envelope["invId"] == "inv-42"
    assert envelope["appId"] == "app-7"


def test_missing_get_input_stream_and_unknown_rest_path(local_server: ServerProcess) -> None:
    reply = httpx.get(local_server.url + API, timeout=20)
    assert "inputStream" in failed(reply.json(), "RSJE0400")
    unknown = httpx.get(local_server.url + API + "/nowhere/x", timeout=20)
    assert unknown.status_code == 200
    failed(unknown.json(), "RSJE0404")


def test_delete_and_put_are_refused_in_a_jump_envelope(local_server: ServerProcess) -> None:
    for method in ("DELETE", "PUT"):
        reply = httpx.request(method, local_server.url + API, timeout=20)
        assert reply.status_code == 405 and reply.headers["allow"] == "GET, POST"
        failed(reply.json(), "RSJE0405")


def test_oversized_body_is_an_in_band_error(local_server: ServerProcess) -> None:
    reply = post_raw(local_server, b" " * (1024 * 1024 + 1))
    assert reply.status_code == 200
    failed(reply.json(), "RSJE0413")


@pytest.mark.parametrize(
    "callback", ["alert(1)//", "a b", "x;alert(1)", "cb<script>", "", "1abc", "a..b", "x" * 200]
)
def test_invalid_callback_is_refused_as_plain_json(
    local_server: ServerProcess, callback: str
) -> None:
    stream = orjson.dumps({"sid": "SessionService", "oid": "pingSession"}).decode()
    reply = httpx.get(
        local_server.url + API,
        params={"inputStream": stream, "callback": callback},
        timeout=20,
    )
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert "callback" in failed(reply.json(), "RSJE0400")
    assert not reply.text.startswith("/**/")


def test_jsonp_escapes_line_separators_and_angle_brackets(local_server: ServerProcess) -> None:
    client = JumpClient(local_server.url, "jsonp")
    ok(client.login("admin", ADMIN_PASSWORD))
    text = "</script>\u2028\u2029<img src=x>"
    ok(client.session("alterSession", [None, {"description": text}]))
    assert client.last is not None
    raw = client.last.text
    assert "<" not in raw and "\u2028" not in raw and "\u2029" not in raw
    assert client.last.headers["x-content-type-options"] == "nosniff"
    assert ok(client.session("pingSession", []))["session"]["description"] == text
    assert unwrap_jsonp(raw, CALLBACK)["response"]["description"] == text


def test_xml_result_format_is_escaped_and_parses(local_server: ServerProcess) -> None:
    client = JumpClient(local_server.url)
    session_id = ok(client.login("admin", ADMIN_PASSWORD))["sessionId"]
    nasty = "a<b>&\"'\x01]]><!-- x"
    ok(client.session("alterSession", {"description": nasty, "odd key": "<v>"}))
    body = client.session("getSession", [session_id], headers={"x-presto-resultFormat": "xml"})
    xml_text = ok(body)
    assert isinstance(xml_text, str) and xml_text.startswith("<?xml")
    root = ET.fromstring(xml_text)
    assert root.tag == "response"
    assert root.findtext("sessionId") == session_id
    assert root.findtext("description") == nasty.replace("\x01", "\ufffd")
    odd = root.find("entry[@key='odd key']")
    assert odd is not None and odd.text == "<v>"
    listed = client.session("listSessions", {"user": "admin"}, headers={"x-p-resultFormat": "XML"})
    sessions = ET.fromstring(ok(listed)).findall("session")
    assert session_id in {s.findtext("sessionId") for s in sessions}
    unknown = client.session("listSessions", [], headers={"x-p-resultFormat": "csv"})
    failed(unknown, "RSJE0400")


def test_rest_form_login_and_operations(local_server: ServerProcess) -> None:
    http = httpx.Client(base_url=local_server.url, timeout=20)
    login = http.get(
        API + "/rest/UserManagerService/login",
        params={"presto_username": "alice", "presto_password": USER_PASSWORD},
    )
    envelope = login.json()
    assert current_user(envelope) == "alice"
    assert http.cookies.get("JSESSIONID") == envelope["response"]["authToken"]
    my_id = envelope["response"]["sessionId"]
    got = http.get(API + "/rest/SessionService/getSession", params={"sessionId": my_id}).json()
    assert ok(got)["user"] == "alice"
    listed = http.get(
        "/mashzone/edge/api/rest/SessionService/listSessions",
        params={"limit": "1", "_": "1700000000000", "callback": "cb"},
    )
    assert listed.text.startswith("/**/cb(")
    assert len(ok(unwrap_jsonp(listed.text, "cb"))) == 1

    refused = httpx.get(
        local_server.url + API + "/rest/UserManagerService/login",
        params={"presto_username": "mallory\r\n<x>", "presto_password": "nope"},
        timeout=20,
    )
    assert refused.status_code == 200
    assert refused.headers["content-type"].startswith("text/plain")
    assert refused.text == "Authentication failed.Userid:mallory??<x>."
    assert "set-cookie" not in refused.headers


def test_json_login_failure_is_an_envelope(local_server: ServerProcess) -> None:
    client = JumpClient(local_server.url)
    body = client.login("admin", "wrong")
    failed(body, "RSJE0401")
    assert client.cookie is None and current_user(body) == "anonymousUser"


def test_per_request_credentials_and_anonymous(local_server: ServerProcess) -> None:
    client = JumpClient(local_server.url)
    as_alice = client.session(
        "listSessions",
        [],
        headers={"presto_username": "alice", "presto_password": USER_PASSWORD},
    )
    assert current_user(as_alice) == "alice"
    assert {s["user"] for s in ok(as_alice)} <= {"alice"}
    in_url = httpx.get(
        local_server.url + API,
        params={
            "inputStream": '{"sid":"SessionService","oid":"listSessions"}',
            "presto_username": "admin",
            "presto_password": ADMIN_PASSWORD,
        },
        timeout=20,
    ).json()
    assert current_user(in_url) == "admin"
    wrong = client.session(
        "listSessions", [], headers={"presto_username": "admin", "presto_password": "x"}
    )
    failed(wrong, "RSJE0401")
    half = client.session("listSessions", [], headers={"presto_username": "admin"})
    failed(half, "RSJE0400")

    ok(client.login("admin", ADMIN_PASSWORD))
    guest = client.session("pingSession", [], headers={"x-p-anonymous": "true"})
    assert ok(guest) == {"alive": True, "session": None}
    assert current_user(guest) == "anonymousUser"
    guest_list = client.session("listSessions", [], headers={"x-p-anonymous": "1"})
    failed(guest_list, "RSJE0401")
    assert current_user(client.session("pingSession", [])) == "admin"  # cookie still good


def test_errors_after_login_still_report_the_user(local_server: ServerProcess) -> None:
    client = JumpClient(local_server.url)
    ok(client.login("alice", USER_PASSWORD))
    missing = client.session("getSession", {"sessionId": "987654"})
    failed(missing, "RSJE0404")
    assert current_user(missing) == "alice"
    assert abs(int(missing["header"]["map"]["sessionTimeout"]) - 1800) <= 2


def test_x_p_method_delete_and_put(local_server: ServerProcess) -> None:
    admin, victim = JumpClient(local_server.url), JumpClient(local_server.url)
    ok(admin.login("admin", ADMIN_PASSWORD))
    victim_id = ok(victim.login("alice", USER_PASSWORD))["sessionId"]
    altered = admin.session(
        "getSession",
        {"sessionId": victim_id, "description": "night batch"},
        headers={"x-p-method": "put"},
    )
    assert altered["oid"] == "getSession"
    assert ok(altered)["description"] == "night batch"
    killed = admin.session("getSession", [victim_id], headers={"x-p-method": "DELETE"})
    assert ok(killed) == {"killed": 1}
    failed(victim.session("pingSession", []), "RSJE0401")
    nonsense = admin.session("pingSession", [], headers={"x-p-method": "delete"})
    failed(nonsense, "RSJE0400")
    bogus = admin.session("pingSession", [], headers={"x-p-method": "patch"})
    failed(bogus, "RSJE0400")
    logout = admin.call("UserManagerService", "login", [], headers={"x-p-method": "delete"})
    assert ok(logout) == "JBPSASCE0741 - Logout Success"


def test_named_login_keeps_dialect_settings_and_timeout(local_server: ServerProcess) -> None:
    client = JumpClient(local_server.url)
    login = client.call(
        "UserManagerService",
        "login",
        {"username": "alice", "password": USER_PASSWORD, "sessionTimeout": 600, "locale": "de"},
    )
    assert login["header"]["map"]["sessionTimeout"] == "600"
    session_id = ok(login)["sessionId"]
    record = ok(client.session("getSession", [int(session_id)]))
    assert record["locale"] == "de" and record["sessionTimeout"] == "600"
    form = httpx.post(
        local_server.url + API,
        data={"inputStream": '{"sid": "SessionService", "oid": "pingSession"}'},
        cookies={"JSESSIONID": client.cookie or ""},
        timeout=20,
    ).json()
    assert current_user(form) == "alice"


def test_cookie_is_secure_over_https(local_server: ServerProcess) -> None:
    reply = httpx.post(
        local_server.url + API,
        json={"sid": "UserManagerService", "oid": "login", "params": ["admin", ADMIN_PASSWORD]},
        headers={"x-forwarded-proto": "https"},  # a trusted TLS-terminating proxy on loopback
        timeout=20,
    )
    cookie = reply.headers["set-cookie"]
    assert "; Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
