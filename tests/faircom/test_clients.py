"""The real FairCom client libraries, unmodified, against a real Rosetta on loopback:
``faircom-json-action-client`` (login, listSessions, pingSession, logout through its context
manager, JsonActionApiError 12031 for a dead token) and ``sqlalchemy-faircom`` (connect with a
``faircom://`` URL, dispose, and its closeSession really ends the session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy
from faircom_jsonapi.client import FairComClientException
from json_action_client import JsonActionApiError, JsonActionClient

from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD
from tests.faircom.support import TOKEN_MESSAGE, call, faircom_config, login
from tests.support.servers import ServerProcess, serve


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = serve(tmp_path_factory.mktemp("faircom-clients"), faircom_config())
    yield proc
    proc.stop()


def _ping(server: ServerProcess, token: str) -> dict[str, object]:
    body: dict[str, object] = call(
        server, {"api": "admin", "action": "pingSession", "authToken": token}
    )
    return body


def test_json_action_client_full_cycle(server: ServerProcess) -> None:
    client = JsonActionClient(f"{server.url}/api", description="client test", http_timeout=30)
    client.login("admin", ADMIN_PASSWORD)
    token = client.auth_token
    assert isinstance(token, str) and len(token) >= 43
    with client:
        listed = client.post_json(client.build_basic_request("admin", "listSessions"))
        sessions = listed["result"]["sessions"]
        mine = [s for s in sessions if s["authToken"] == token]
        assert mine == [{"authToken": token, "username": "admin", "description": "client test"}]
        others = [s for s in sessions if s["authToken"] != token]
        assert others and all(s["authToken"].startswith("session:") for s in others)
        pinged = client.post_json(client.build_basic_request("admin", "pingSession"))
        assert pinged["errorCode"] == 0 and pinged["result"] == {}
        described = client.post_json(
            {
                **client.build_basic_request("admin", "describeSessions"),
                "params": {"authTokens": [token]},
            }
        )
        [session] = described["result"]["sessions"]
        assert session["idleConnectionTimeoutSeconds"] == 300
    # the context manager logged out: the token is dead now
    assert client.auth_token is None
    dead = _ping(server, token)
    assert dead["errorCode"] == 12031 and dead["authToken"] == token


def test_json_action_client_gets_12031_for_a_dead_token(server: ServerProcess) -> None:
    client = JsonActionClient(f"{server.url}/api", http_timeout=30)
    client.login("admin", ADMIN_PASSWORD)
    token = client.auth_token
    assert isinstance(token, str)
    killed = call(server, {"api": "admin", "action": "deleteSession", "authToken": token})
    assert killed["errorCode"] == 0
    with pytest.raises(JsonActionApiError) as caught:
        client.post_json(client.build_basic_request("admin", "pingSession"))
    assert caught.value.error_code == 12031
    assert caught.value.error_message == TOKEN_MESSAGE
    assert caught.value.response_json["authToken"] == token
    assert caught.value.status_code == 200


def test_json_action_client_bad_password_is_an_api_error(server: ServerProcess) -> None:
    client = JsonActionClient(f"{server.url}/api", http_timeout=30)
    with pytest.raises(JsonActionApiError) as caught:
        client.login("admin", "not-the-password")
    assert caught.value.error_code == 12101
    assert client.auth_token is None


def test_sqlalchemy_faircom_connects_and_dispose_closes_the_session(
    server: ServerProcess,
) -> None:
    url = f"faircom://admin:{ADMIN_PASSWORD}@127.0.0.1:{server.port}/ctreeSQL?protocol=http"
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as connection:
        dbapi_connection = connection.connection.dbapi_connection
        assert dbapi_connection is not None
        token = dbapi_connection.client.auth_token  # type: ignore[attr-defined]
        assert isinstance(token, str) and len(token) >= 43
        assert dbapi_connection.client.id >= 1  # type: ignore[attr-defined]
        assert _ping(server, token)["errorCode"] == 0
    # checked back into the pool: the session lives until the pool is disposed
    assert _ping(server, token)["errorCode"] == 0
    engine.dispose()
    gone = _ping(server, token)
    assert gone["errorCode"] == 12031
    admin = login(server, "admin", ADMIN_PASSWORD)
    listed = call(server, {"api": "admin", "action": "listSessions", "authToken": admin})
    assert token not in {s["authToken"] for s in listed["result"]["sessions"]}


def test_sqlalchemy_faircom_bad_password_raises(server: ServerProcess) -> None:
    url = f"faircom://alice:wrong-{USER_PASSWORD}@127.0.0.1:{server.port}/ctreeSQL?protocol=http"
    engine = sqlalchemy.create_engine(url)
    # the driver raises its own exception from connect(), which SQLAlchemy passes through
    with pytest.raises(FairComClientException, match="invalid username or password"):
        engine.connect()
    engine.dispose()
