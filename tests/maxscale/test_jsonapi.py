"""The released JSON:API format on /v1 against a real Rosetta over the local backend: every
reply passes the JSON:API check, errors included."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import httpx
import jwt
import pytest

from tests.conftest import ADMIN_PASSWORD, SESSION_SECRET, USER_PASSWORD
from tests.maxscale.jsonapi import session_resource_is_complete, v1
from tests.support.servers import ServerProcess

ADMIN = ("admin", ADMIN_PASSWORD)


def jwt_login(server: ServerProcess, query: str = "") -> str:
    reply = v1("GET", f"{server.url}/v1/auth{query}", auth=ADMIN)
    assert reply.status_code == 200
    assert set(reply.json()) == {"meta"}
    token: str = reply.json()["meta"]["token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_list_and_show_are_jsonapi_documents(sample_server: ServerProcess) -> None:
    listed = v1("GET", sample_server.url + "/v1/sessions", auth=ADMIN).json()
    assert listed["links"]["self"] == f"{sample_server.url}/v1/sessions/"
    ids = [r["id"] for r in listed["data"]]
    assert ids[:4] == ["101", "102", "103", "104"]
    for resource in listed["data"]:
        session_resource_is_complete(resource)
    shown = v1("GET", sample_server.url + "/v1/sessions/101", auth=ADMIN).json()
    attributes = shown["data"]["attributes"]
    assert shown["links"]["self"] == f"{sample_server.url}/v1/sessions/101/"
    assert attributes["remote"] == "192.168.0.200" and attributes["port"] == 50412
    assert parsedate_to_datetime(attributes["connected"]).isoformat() == "2016-08-31T03:03:12+00:00"
    assert attributes["idle"] == 260.0 and attributes["io_activity"] == 2197 + 1562
    assert shown["data"]["relationships"]["services"]["data"] == [
        {"id": "my-service", "type": "services"}
    ]


def test_links_follow_the_host_header(sample_server: ServerProcess) -> None:
    reply = v1(
        "GET",
        sample_server.url + "/v1/sessions/102",
        auth=ADMIN,
        headers={"host": "maxscale.example:8989"},
    )
    assert reply.json()["links"]["self"] == "http://maxscale.example:8989/v1/sessions/102/"


@pytest.mark.parametrize("session_id", ["999999", "abc", "0", "-1", "1.5"])
def test_unknown_or_non_numeric_id_is_404(sample_server: ServerProcess, session_id: str) -> None:
    for method in ("GET", "DELETE"):
        reply = v1(method, f"{sample_server.url}/v1/sessions/{session_id}", auth=ADMIN)
        assert reply.status_code == 404


def test_sparse_fieldsets(sample_server: ServerProcess) -> None:
    reply = v1(
        "GET",
        sample_server.url + "/v1/sessions/101?fields[sessions]=state,memory/total,services",
        auth=ADMIN,
    )
    data = reply.json()["data"]
    assert data["attributes"] == {"state": "Session ready for routing", "memory": {"total": 0}}
    assert set(data["relationships"]) == {"services"}
    assert {"id", "type", "links"} <= set(data)


def test_paging_links_and_total(sample_server: ServerProcess) -> None:
    everything = v1("GET", sample_server.url + "/v1/sessions", auth=ADMIN).json()["data"]
    total = len(everything)
    url = sample_server.url + "/v1/sessions?page[size]=2&page[number]=1"
    doc = v1("GET", url, auth=ADMIN).json()
    assert [r["id"] for r in doc["data"]] == [r["id"] for r in everything[2:4]]
    assert doc["meta"]["total"] == total
    links = doc["links"]
    assert links["first"].endswith("page[size]=2&page[number]=0")
    assert links["prev"].endswith("page[size]=2&page[number]=0")
    last = (total + 1) // 2 - 1
    assert links["last"].endswith(f"page[size]=2&page[number]={last}")
    following = v1("GET", links["next"], auth=ADMIN).json() if "next" in links else None
    if following is not None:
        assert following["data"][0]["id"] == everything[4]["id"]
    first = v1("GET", links["first"], auth=ADMIN).json()
    assert "prev" not in first["links"] and [r["id"] for r in first["data"]] == ["101", "102"]


def test_bad_paging_is_400(sample_server: ServerProcess) -> None:
    reply = v1("GET", sample_server.url + "/v1/sessions?page[size]=zero", auth=ADMIN)
    assert reply.status_code == 400


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('/attributes/user="jdoe"', ["101", "103"]),
        ("/attributes/user=%22dba%22", ["102"]),
        ("id=and(ge(102),le(103))", ["102", "103"]),
        ('/attributes/user=or(eq("app"),eq("dba"))', ["102", "104"]),
        ("/attributes/idle=gt(100)", ["101"]),
        ('/relationships/services/data/0/id=not(eq("my-service"))', ["103", "104"]),
    ],
)
def test_filters(sample_server: ServerProcess, expression: str, expected: list[str]) -> None:
    reply = v1("GET", f"{sample_server.url}/v1/sessions?filter={expression}", auth=ADMIN)
    assert [r["id"] for r in reply.json()["data"] if r["id"] in {"101", "102", "103", "104"}] == (
        expected
    )


def test_filter_with_paging_counts_matches(sample_server: ServerProcess) -> None:
    url = f'{sample_server.url}/v1/sessions?filter=/attributes/user="jdoe"&page[size]=1'
    doc = v1("GET", url, auth=ADMIN).json()
    assert doc["meta"]["total"] == 2 and [r["id"] for r in doc["data"]] == ["101"]
    assert "filter=" in doc["links"]["next"]


def test_bad_filter_is_400(sample_server: ServerProcess) -> None:
    assert (
        v1("GET", sample_server.url + "/v1/sessions?filter=/x=nope", auth=ADMIN).status_code == 400
    )


def test_auth_issues_a_jwt_accepted_as_bearer(sample_server: ServerProcess) -> None:
    token = jwt_login(sample_server, "?max-age=120")
    claims = jwt.decode(token, SESSION_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "admin" and claims["exp"] - claims["iat"] == 120
    assert abs(claims["iat"] - time.time()) < 60
    own = v1("GET", f"{sample_server.url}/v1/sessions/{claims['sid']}", headers=bearer(token))
    assert own.status_code == 200
    assert own.json()["data"]["relationships"]["services"]["data"][0]["id"] == "maxscale"
    assert v1("GET", sample_server.url + "/v1/", headers=bearer(token)).status_code == 200


def test_default_jwt_max_age_is_eight_hours(sample_server: ServerProcess) -> None:
    claims = jwt.decode(jwt_login(sample_server), SESSION_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 28800


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer not.a.jwt"}, {"authorization": "Basic !!!"}],
)
def test_missing_or_bad_credentials_are_401(
    sample_server: ServerProcess, headers: dict[str, str]
) -> None:
    reply = v1("GET", sample_server.url + "/v1/sessions", headers=headers)
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"] == 'Basic realm="maxscale"'
    assert reply.json() == {"errors": [{"detail": "Access denied"}]}


def test_destroy_with_ttl_is_200_empty_and_revokes_the_jwt(sample_server: ServerProcess) -> None:
    token = jwt_login(sample_server)
    sid = jwt.decode(token, SESSION_SECRET, algorithms=["HS256"])["sid"]
    gone = v1("DELETE", f"{sample_server.url}/v1/sessions/{sid}?ttl=0", auth=ADMIN)
    assert gone.status_code == 200 and gone.content == b""
    assert v1("GET", f"{sample_server.url}/v1/sessions/{sid}", auth=ADMIN).status_code == 404
    assert v1("GET", sample_server.url + "/v1/sessions", headers=bearer(token)).status_code == 401
    bad_ttl = v1("DELETE", f"{sample_server.url}/v1/sessions/{sid}?ttl=soon", auth=ADMIN)
    assert bad_ttl.status_code == 400


def test_patch_parameters_and_filters(sample_server: ServerProcess) -> None:
    token = jwt_login(sample_server)
    sid = jwt.decode(token, SESSION_SECRET, algorithms=["HS256"])["sid"]
    url = f"{sample_server.url}/v1/sessions/{sid}"
    body = {"data": {"attributes": {"parameters": {"log_info": True}}}}
    patched = v1("PATCH", url, headers=bearer(token), json=body)
    assert patched.status_code == 200 and patched.content == b""
    body = {"data": {"relationships": {"filters": {"data": [{"id": "f1", "type": "filters"}]}}}}
    assert v1("PATCH", url, headers=bearer(token), json=body).status_code == 200
    data = v1("GET", url, headers=bearer(token)).json()["data"]
    assert data["attributes"]["parameters"]["log_info"] is True
    assert data["attributes"]["parameters"]["log_debug"] is False
    assert data["relationships"]["filters"]["data"] == [{"id": "f1", "type": "filters"}]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"{nope", 400, "Invalid JSON in request"),
        (b"[]", 400, "data"),
        (b'{"data":{"attributes":{"user":"x"}}}', 403, "user"),
    ],
)
def test_bad_patches(sample_server: ServerProcess, body: bytes, status: int, detail: str) -> None:
    reply = v1("PATCH", sample_server.url + "/v1/sessions/101", auth=ADMIN, content=body)
    assert reply.status_code == status
    assert detail in reply.json()["errors"][0]["detail"]


def test_restart_endpoints(sample_server: ServerProcess) -> None:
    one = v1("POST", sample_server.url + "/v1/sessions/101/restart", auth=ADMIN)
    assert one.status_code == 200 and one.content == b""
    every = v1("POST", sample_server.url + "/v1/sessions/restart", auth=ADMIN)
    assert every.status_code == 200 and every.content == b""
    missing = v1("POST", sample_server.url + "/v1/sessions/999999/restart", auth=ADMIN)
    assert missing.status_code == 404


def test_root_maxscale_unknown_paths_and_methods(sample_server: ServerProcess) -> None:
    assert v1("GET", sample_server.url + "/v1/", auth=ADMIN).status_code == 200
    assert v1("GET", sample_server.url + "/v1/maxscale", auth=ADMIN).status_code == 200
    assert v1("GET", sample_server.url + "/v1/servers", auth=ADMIN).status_code == 404
    assert v1("PUT", sample_server.url + "/v1/sessions/101", auth=ADMIN).status_code == 405
    assert v1("POST", sample_server.url + "/v1/sessions", auth=ADMIN).status_code == 405
    assert v1("DELETE", sample_server.url + "/v1/auth", auth=ADMIN).status_code == 405


def test_unprivileged_user_sees_only_own_sessions(sample_server: ServerProcess) -> None:
    alice = ("alice", USER_PASSWORD)
    token = v1("GET", sample_server.url + "/v1/auth", auth=alice).json()["meta"]["token"]
    listed = v1("GET", sample_server.url + "/v1/sessions", headers=bearer(token)).json()
    assert {r["attributes"]["user"] for r in listed["data"]} == {"alice"}
    assert v1("DELETE", sample_server.url + "/v1/sessions/101", auth=alice).status_code == 404


def test_pretty_output(sample_server: ServerProcess) -> None:
    reply = v1("GET", sample_server.url + "/v1/sessions/101?pretty=true", auth=ADMIN)
    assert reply.text.startswith("{\n  ")


def test_oversized_body_is_a_jsonapi_413(sample_server: ServerProcess) -> None:
    reply = v1(
        "PATCH", sample_server.url + "/v1/sessions/101", auth=ADMIN, content=b" " * (1024 * 1025)
    )
    assert reply.status_code == 413


def test_request_id_is_returned(sample_server: ServerProcess) -> None:
    reply = httpx.get(
        sample_server.url + "/v1/sessions/101", auth=ADMIN, headers={"x-request-id": "mx-1"}
    )
    assert reply.headers["x-request-id"] == "mx-1"
