"""The credential policy of ``HttpUpstream`` in process (an httpx mock transport records what
the upstream is sent), the per-caller state hook, and what ``rosetta check`` / ``rosetta serve``
refuse."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from proxy.app import build_runtime
from proxy.backends.upstream import Channel, HttpUpstream, UpstreamState
from proxy.settings import parse_settings
from tests.conftest import SESSION_SECRET, base_config
from tests.support.servers import write_config
from translators.contract import (
    CanonicalRequest,
    ErrorKind,
    Operation,
    Principal,
    PrincipalKind,
    RosettaError,
    Signature,
    UpstreamCredentials,
)


class Recorder:
    """A fake rosetta-dialect upstream: answers every operation, remembers what it was sent."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        operation = request.url.path.rsplit("/", 1)[-1]
        body: dict[str, Any] = {"operation": operation, "elapsed_ms": 1.0}
        if operation == "session.login":
            body.update(token="upstream-token", session={"id": "u1", "user": "bob"})
        return httpx.Response(200, json=body)


def upstream_runtime(mode: str, recorder: Recorder, **auth: Any) -> HttpUpstream:
    settings = parse_settings(
        base_config(
            inbound={"rosetta": {}},
            backends={
                "up": {
                    "type": "upstream",
                    "dialect": "rosetta",
                    "url": "http://upstream.test",
                    "auth": {"mode": mode, **auth},
                }
            },
            default_backend="up",
        ),
        "<test>",
    )
    runtime = build_runtime(settings, transport=httpx.MockTransport(recorder))
    return runtime.upstreams[0]


def signed() -> Principal:
    signature = Signature("SDK-HMAC-SHA256", "AK", "00", "string", datetime.now(UTC))
    return Principal(PrincipalKind.SIGNATURE, signature=signature)


def test_a_signature_cannot_pass_through_and_the_error_names_both_dialects() -> None:
    recorder = Recorder()
    upstream = upstream_runtime("passthrough", recorder)
    request = CanonicalRequest(Operation.LIST, "geminidb", principal=signed())
    with pytest.raises(RosettaError) as caught:
        asyncio.run(upstream(request))
    assert caught.value.kind is ErrorKind.UNAUTHENTICATED
    assert "geminidb" in caught.value.message and "rosetta upstream" in caught.value.message
    assert recorder.requests == []


def test_passthrough_converts_passwords_and_passes_tokens() -> None:
    recorder = Recorder()
    upstream = upstream_runtime("passthrough", recorder)
    password = Principal(PrincipalKind.PASSWORD, user="bob", password="pw")
    asyncio.run(upstream(CanonicalRequest(Operation.LIST, "jump", principal=password)))
    bearer = Principal(PrincipalKind.BEARER, token="caller-upstream-token")
    asyncio.run(upstream(CanonicalRequest(Operation.LIST, "maxscale", principal=bearer)))
    first, second = (r.headers["authorization"] for r in recorder.requests)
    assert first == "Basic " + base64.b64encode(b"bob:pw").decode()
    assert second == "Bearer caller-upstream-token"


def test_static_sends_service_credentials_only_after_authenticating_the_caller() -> None:
    recorder = Recorder()
    upstream = upstream_runtime("static", recorder, user="svc", password="svc-pw")
    with pytest.raises(RosettaError) as caught:
        asyncio.run(upstream(CanonicalRequest(Operation.LIST, "rosetta")))
    assert caught.value.kind is ErrorKind.UNAUTHENTICATED and recorder.requests == []
    asyncio.run(upstream(CanonicalRequest(Operation.PING, "rosetta")))
    assert "authorization" not in recorder.requests[-1].headers  # anonymous ping: no creds


def test_upstream_state_is_per_caller_and_forgotten_on_logout() -> None:
    recorder = Recorder()
    upstream = upstream_runtime("passthrough", recorder)
    state = upstream.state
    state.set("caller-1", "token", "t1")
    state.set("caller-2", "token", "t2")
    state.forget("caller-1")
    assert state.get("caller-1", "token") is None and state.get("caller-2", "token") == "t2"
    bearer = Principal(PrincipalKind.BEARER, token="caller-upstream-token")

    async def scenario() -> None:
        # a translator caches something for this caller, then the caller logs out
        request = CanonicalRequest(Operation.PING, "rosetta", principal=bearer)
        response = await upstream(request)
        assert response.error is None
        from proxy.backends.upstream import _caller_key

        key = _caller_key("bearer", None, None, "caller-upstream-token")
        await Channel(upstream, UpstreamCredentials(), key).remember("cookie", "c")
        assert upstream.state.get(key, "cookie") == "c"
        await upstream(CanonicalRequest(Operation.LOGOUT, "rosetta", principal=bearer))
        assert upstream.state.get(key, "cookie") is None

    asyncio.run(scenario())


def test_bridged_session_state_lives_in_the_session_and_dies_with_it() -> None:
    recorder = Recorder()
    upstream = upstream_runtime("passthrough", recorder)
    store = upstream.auth.store

    async def scenario() -> None:
        login = CanonicalRequest(
            Operation.LOGIN,
            "faircom",
            principal=Principal(PrincipalKind.PASSWORD, user="bob", password="pw"),
        )
        response = await upstream(login)
        assert response.error is None and response.token not in (None, "upstream-token")
        session = await upstream.auth.session_for_token(response.token or "")
        assert session is not None
        assert session.upstream_secrets["token"] == "upstream-token"
        channel = Channel(upstream, UpstreamCredentials(), f"session:{session.id}", session)
        await channel.remember("cookie", "jsessionid")
        stored = await upstream.auth.session_for_token(response.token or "")
        assert stored is not None and stored.upstream_secrets["state:cookie"] == "jsessionid"
        assert len(upstream.state) == 0  # nothing kept in the process for this caller
        await store.delete([session.id])
        # a translator finishing after the kill cannot bring state back
        await channel.remember("cookie", "late")
        assert await store.get(session.id, 0.0) is None

    asyncio.run(scenario())


def test_upstream_state_cache_is_bounded() -> None:
    state = UpstreamState(size=2)
    for i in range(5):
        state.set(f"c{i}", "token", str(i))
    assert len(state) == 2 and state.get("c4", "token") == "4"


# rosetta check / serve ------------------------------------------------------------------------
def rosetta(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def static_config(**overrides: Any) -> dict[str, Any]:
    backend = {
        "type": "upstream",
        "dialect": "rosetta",
        "url": "http://127.0.0.1:9",
        "auth": {"mode": "static", "user": "svc", "password": "svc-password-4d2c"},
    }
    backend.update(overrides.pop("backend", {}))
    return base_config(
        inbound={"rosetta": {}}, backends={"up": backend}, default_backend="up", **overrides
    )


def check(tmp_path: Path, config: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return rosetta("check", "--config", str(write_config(tmp_path, config)))


def test_check_accepts_static_mode_when_callers_must_authenticate(tmp_path: Path) -> None:
    result = check(tmp_path, static_config())
    assert result.returncode == 0, result.stderr


def test_check_refuses_static_mode_with_no_way_to_authenticate(tmp_path: Path) -> None:
    result = check(tmp_path, static_config(users=[], tokens=[], access_keys=[]))
    assert result.returncode == 1
    assert "backends.up.auth: static service credentials need callers to authenticate" in (
        result.stderr
    )
    assert "svc-password-4d2c" not in result.stderr + result.stdout


def test_check_accepts_anonymous_static_only_in_so_many_words(tmp_path: Path) -> None:
    anonymous = static_config(users=[], tokens=[], access_keys=[], backend={})
    anonymous["backends"]["up"]["allow_anonymous"] = True
    assert check(tmp_path, anonymous).returncode == 0
    for loose in ("yes", "true", 1):
        anonymous["backends"]["up"]["allow_anonymous"] = loose
        result = check(tmp_path, anonymous)
        assert result.returncode == 1, loose
        assert "backends.up.allow_anonymous" in result.stderr


def test_check_refuses_an_inbound_that_skips_authentication(tmp_path: Path) -> None:
    config = static_config()
    config["inbound"]["rosetta"] = {"options": {"auth": "none"}}
    result = check(tmp_path, config)
    assert result.returncode == 1
    assert "inbound.rosetta.options.auth: skips authentication" in result.stderr


def test_check_refuses_static_mode_without_service_credentials(tmp_path: Path) -> None:
    result = check(tmp_path, static_config(backend={"auth": {"mode": "static"}}))
    assert result.returncode == 1
    assert "static mode needs service credentials" in result.stderr


def test_check_refuses_a_shared_store_without_a_session_secret(tmp_path: Path) -> None:
    config = base_config(sessions={"store": "redis://:store-pw-1@127.0.0.1:6390/0"})
    result = check(tmp_path, config)
    assert result.returncode == 1
    assert "sessions.secret" in result.stderr and "redis://***@127.0.0.1:6390/0" in result.stderr
    assert "store-pw-1" not in result.stderr
    config["sessions"]["secret"] = SESSION_SECRET
    assert check(tmp_path, config).returncode == 0


def test_serve_refuses_several_workers_with_the_memory_store(tmp_path: Path) -> None:
    path = write_config(tmp_path, base_config())
    result = rosetta("serve", "--config", str(path), "--workers", "2", "--port", "1")
    assert result.returncode == 1
    assert "the memory store lives inside one process" in result.stderr
    assert "--session-store redis://" in result.stderr


def test_serve_upstream_flags_are_checked(tmp_path: Path) -> None:
    path = str(write_config(tmp_path, base_config()))
    alone = rosetta("serve", "--config", path, "--upstream-user", "svc")
    assert alone.returncode == 1 and "need --upstream" in alone.stderr
    base = ["serve", "--config", path, "--upstream", "http://127.0.0.1:9"]
    mixed = rosetta(
        *base, "--upstream-dialect", "rosetta", "--upstream-auth", "passthrough",
        "--upstream-token", "t-secret-1",
    )  # fmt: skip
    assert mixed.returncode == 1 and "are for --upstream-auth static" in mixed.stderr
    assert "t-secret-1" not in mixed.stderr
    bad_key = rosetta(*base, "--upstream-dialect", "rosetta", "--upstream-access-key", "AKONLY")
    assert bad_key.returncode == 1 and "expected AK:SK" in bad_key.stderr
    bad_param = rosetta(*base, "--upstream-dialect", "rosetta", "--upstream-param", "novalue")
    assert bad_param.returncode == 1 and "expected KEY=VALUE" in bad_param.stderr


def test_upstream_params_reach_the_backend_options() -> None:
    from proxy.cli import _parser, upstream_auth_from_args, upstream_params

    args = _parser().parse_args(
        [
            "serve",
            "--upstream",
            "http://u",
            "--upstream-dialect",
            "geminidb",
            "--upstream-access-key",
            "AK1:SK1",
            "--upstream-param",
            "project_id=p1",
            "--upstream-param",
            "instance_id=i=2",
        ]
    )
    assert upstream_auth_from_args(args) == {
        "mode": "static",
        "access_key": "AK1",
        "secret_key": "SK1",
    }
    assert upstream_params(args.upstream_param) == {"project_id": "p1", "instance_id": "i=2"}
    assert orjson.dumps(upstream_params([])) == b"{}"
