"""The foundation's cross-dialect promise on the local backend, over real HTTP to one real
Rosetta: log in with FairCom, see yourself (same user, same client ``ip:port``) in the MaxScale
(``/v1`` and draft), GeminiDB, JUMP and BlobCity views, kill yourself with a MaxScale DELETE,
and the FairCom token is then rejected with 12031. Likewise a JUMP login killed through
GeminiDB, and a MaxScale ``/v1/auth`` JWT killed through FairCom ``deleteSession`` (an admin
naming ``session:<id>``) or BlobCity ``kill-session``."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD
from tests.support.servers import ServerProcess

ALICE = ("alice", USER_PASSWORD)
PROJECT, INSTANCE = "0549b5e0a1", "e73893efin12"
JUMP_PATH = "/presto/edge/api"
ISSUED: list[str] = []  # every token handed out in this module, for the log scan


def client_address(reply: httpx.Response) -> str:
    """The caller's own ``ip:port`` of the connection that carried ``reply``."""
    host, port = reply.extensions["network_stream"].get_extra_info("client_addr")
    return f"{host}:{port}"


def faircom(client: httpx.Client, url: str, action: str, **body: Any) -> httpx.Response:
    return client.post(f"{url}/api", json={"api": "admin", "action": action, **body})


def jump(client: httpx.Client, url: str, sid: str, oid: str, params: Any, **headers: str) -> Any:
    message = {"version": "1.0", "sid": sid, "svcVersion": "0.1", "oid": oid, "params": params}
    reply = client.post(
        url + JUMP_PATH,
        content=orjson.dumps(message),
        headers={"content-type": "application/json", **headers},
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def views_of_alice(server: ServerProcess, token: str) -> dict[str, list[tuple[str, str, str]]]:
    """alice's sessions as (id, user, client address) in each dialect's view, asked as alice
    (her own credentials, or her FairCom token where the dialect takes a token)."""
    url = server.url
    seen: dict[str, list[tuple[str, str, str]]] = {}
    with httpx.Client(timeout=15) as client:
        v1 = client.get(f"{url}/v1/sessions", auth=ALICE)
        assert v1.status_code == 200, v1.text
        seen["maxscale-v1"] = [
            (
                s["id"],
                s["attributes"]["user"],
                f"{s['attributes']['remote']}:{s['attributes']['port']}",
            )
            for s in v1.json()["data"]
        ]
        draft = client.get(f"{url}/sessions", auth=ALICE)
        assert draft.status_code == 200, draft.text
        # the draft format carries the ip only
        seen["maxscale-draft"] = [(str(s["id"]), s["user"], s["address"]) for s in draft.json()]
        gemini = client.get(
            f"{url}/v3/{PROJECT}/instances/{INSTANCE}/sessions", headers={"X-Auth-Token": token}
        )
        assert gemini.status_code == 200, gemini.text
        seen["geminidb"] = [
            (str(s["id"]), s["name"], s["addr"])
            for group in gemini.json()["node_sessions"]
            for s in group["sessions"]
        ]
        listed = jump(
            client,
            url,
            "SessionService",
            "listSessions",
            [],
            presto_username="alice",
            presto_password=USER_PASSWORD,
        )
        assert listed["errorCode"] == "", listed
        seen["jump"] = [(s["sessionId"], s["user"], s["clientAddress"]) for s in listed["response"]]
        blob = client.post(
            f"{url}/rest/bquery",
            json={"username": "alice", "password": USER_PASSWORD, "q": "list-sessions"},
        ).json()
        assert blob["ack"] == "1", blob
        seen["blobcity"] = [
            (s["id"], s["user"], s["client-address"]) for s in blob["p"]["sessions"]
        ]
    return seen


def assert_seen_everywhere(
    seen: dict[str, list[tuple[str, str, str]]], session_id: str, address: str
) -> None:
    ip = address.rsplit(":", 1)[0]
    for view, sessions in seen.items():
        expected = (session_id, "alice", ip if view == "maxscale-draft" else address)
        assert expected in sessions, (view, sessions)


def jwt_session_id(token: str) -> str:
    payload = token.split(".")[1]
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sid"])


def test_login_with_faircom_see_yourself_everywhere_and_kill_yourself_with_maxscale(
    local_server: ServerProcess,
) -> None:
    url = local_server.url
    with httpx.Client(timeout=15) as client:
        created = faircom(
            client, url, "createSession", params={"username": "alice", "password": USER_PASSWORD}
        )
        address = client_address(created)
        token = created.json()["authToken"]
        ISSUED.append(token)
        own = faircom(client, url, "listSessions", authToken=token).json()
    assert address.startswith("127.0.0.1:")
    assert [(s["authToken"], s["username"]) for s in own["result"]["sessions"]] == [
        (token, "alice")
    ]

    seen = views_of_alice(local_server, token)
    mine = [s for s in seen["maxscale-v1"] if s[2] == address]
    assert len(mine) == 1, seen["maxscale-v1"]
    session_id = mine[0][0]
    assert_seen_everywhere(seen, session_id, address)

    killed = httpx.delete(f"{url}/v1/sessions/{session_id}", auth=ALICE, timeout=15)
    assert killed.status_code == 200 and killed.content == b""
    dead = httpx.post(
        f"{url}/api",
        json={"api": "admin", "action": "pingSession", "authToken": token},
        timeout=15,
    ).json()
    assert dead["errorCode"] == 12031 and dead["authToken"] == token
    assert dead["errorMessage"].startswith("'authToken' does not match any existing session")
    v1 = httpx.get(f"{url}/v1/sessions/{session_id}", auth=ALICE, timeout=15)
    assert v1.status_code == 404


def test_a_jump_login_is_seen_in_geminidb_and_killed_through_it(
    local_server: ServerProcess,
) -> None:
    url = local_server.url
    with httpx.Client(timeout=15) as client:
        message = {"username": "alice", "password": USER_PASSWORD}
        login_reply = client.post(
            url + JUMP_PATH,
            content=orjson.dumps(
                {
                    "version": "1.0",
                    "sid": "UserManagerService",
                    "svcVersion": "0.1",
                    "oid": "login",
                    "params": message,
                }
            ),
            headers={"content-type": "application/json"},
        )
        address = client_address(login_reply)
    login = login_reply.json()
    assert login["errorCode"] == "", login
    cookie = login_reply.cookies["JSESSIONID"]
    ISSUED.append(cookie)
    session_id = str(login["response"]["sessionId"])
    assert cookie == login["response"]["authToken"]

    seen = views_of_alice(local_server, cookie)
    assert_seen_everywhere(seen, session_id, address)
    gemini = httpx.get(
        f"{url}/v3/{PROJECT}/instances/{INSTANCE}/sessions",
        headers={"X-Auth-Token": cookie},
        timeout=15,
    ).json()
    node = next(
        group["node_id"]
        for group in gemini["node_sessions"]
        if any(str(s["id"]) == session_id for s in group["sessions"])
    )
    closed = httpx.request(
        "DELETE",
        f"{url}/v3/{PROJECT}/redis/nodes/{node}/sessions",
        headers={"X-Auth-Token": cookie, "content-type": "application/json"},
        content=orjson.dumps({"is_all": False, "session_ids": [session_id]}),
        timeout=15,
    )
    assert closed.status_code == 200 and closed.json() == {}, closed.text
    with httpx.Client(timeout=15, cookies={"JSESSIONID": cookie}) as client:
        after = jump(client, url, "SessionService", "pingSession", [])
    assert after["errorCode"] == "RSJE0401", after
    assert after["header"]["map"]["currentUser"] == "anonymousUser"


@pytest.mark.parametrize("killer", ["faircom-deleteSession", "blobcity-kill-session"])
def test_a_maxscale_jwt_is_killed_through_another_dialect(
    local_server: ServerProcess, killer: str
) -> None:
    url = local_server.url
    with httpx.Client(timeout=15) as client:
        issued = client.get(f"{url}/v1/auth", auth=ALICE)
        address = client_address(issued)
    assert issued.status_code == 200, issued.text
    jwt = issued.json()["meta"]["token"]
    ISSUED.append(jwt)
    session_id = jwt_session_id(jwt)
    bearer = {"Authorization": f"Bearer {jwt}"}
    mine = httpx.get(f"{url}/v1/sessions/{session_id}", headers=bearer, timeout=15)
    assert mine.status_code == 200, mine.text
    attributes = mine.json()["data"]["attributes"]
    assert (attributes["user"], f"{attributes['remote']}:{attributes['port']}") == (
        "alice",
        address,
    )
    assert_seen_everywhere(views_of_alice(local_server, jwt), session_id, address)

    if killer == "faircom-deleteSession":
        with httpx.Client(timeout=15) as client:
            admin = faircom(
                client,
                url,
                "createSession",
                params={"username": "admin", "password": ADMIN_PASSWORD},
            ).json()["authToken"]
            ISSUED.append(admin)
            ended = faircom(
                client,
                url,
                "deleteSession",
                authToken=admin,
                params={"authToken": f"session:{session_id}"},
            ).json()
            assert ended["errorCode"] == 0, ended
            # the admin's own session is untouched
            assert faircom(client, url, "pingSession", authToken=admin).json()["errorCode"] == 0
    else:
        ended = httpx.post(
            f"{url}/rest/bquery",
            json={
                "username": "admin",
                "password": ADMIN_PASSWORD,
                "q": "kill-session",
                "p": {"id": session_id},
            },
            timeout=15,
        ).json()
        assert ended == {"ack": "1", "time": ended["time"], "rows": 1, "p": {}}, ended

    rejected = httpx.get(f"{url}/v1/sessions", headers=bearer, timeout=15)
    assert rejected.status_code == 401
    assert rejected.json() == {"errors": [{"detail": "Access denied"}]}
    gone = httpx.get(f"{url}/v1/sessions/{session_id}", auth=ALICE, timeout=15)
    assert gone.status_code == 404


def test_no_token_or_password_in_the_log(local_server: ServerProcess) -> None:
    """Runs last in this module: nothing handed out or sent above reached the log."""
    if len(ISSUED) < 4:
        pytest.skip("the flows above did not run")
    logs = local_server.logs()
    assert '"event":"request"' in logs.replace(" ", "")
    for secret in [*ISSUED, USER_PASSWORD, ADMIN_PASSWORD]:
        assert secret not in logs
