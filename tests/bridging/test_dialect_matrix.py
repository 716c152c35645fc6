"""Every caller dialect against every upstream dialect, over real processes: for each upstream
dialect one ``rosetta emulate <upstream>`` (with its own users, token and access key), one
Rosetta passing callers' credentials through and one lending static service credentials, all
three on one real Redis. Each caller (driven by its dialect's own translator as a client, so it
speaks the dialect as a client of that dialect would: FairCom createSession, BlobCity body
credentials, MaxScale Basic or a ``/v1/auth`` JWT, JUMP login or per-request
``presto_username``, ``rosetta`` credentials, GeminiDB ``X-Auth-Token`` or AK/SK) lists the
upstream's sessions and kills one, and the kill is checked on the upstream itself.

Passthrough is expected to work wherever the caller's credential converts (user and password
to any upstream but GeminiDB, which takes only tokens and signatures; tokens as tokens);
otherwise the caller gets a clean unauthenticated error in its own envelope naming both
dialects, and static mode works. Static mode works for every caller that authenticates to
Rosetta. At the end, no password, token or secret key is in Redis in plain text, in any
server's log or in any error body, and tokens appear in other bodies only where the dialect
hands callers their own."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import (
    ACCESS_KEY,
    ADMIN_PASSWORD,
    SECRET_KEY,
    SESSION_SECRET,
    STATIC_TOKEN,
    USER_PASSWORD,
    base_config,
    sample_sessions,
)
from tests.support.dialect_client import DialectClient, HttpChannel
from tests.support.redis import RedisServer, dump_redis
from tests.support.secrets import leaks
from tests.support.servers import ServerProcess, emulate, serve
from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    ErrorKind,
    Filters,
    HttpResponse,
    Operation,
    RosettaError,
    UpstreamCredentials,
)
from translators.jump import JumpTranslator

UPSTREAMS = ("faircom", "blobcity", "maxscale", "geminidb", "jump", "rosetta")
# what only the upstream knows (passthrough callers) and the service account (static mode)
BOB_PASSWORD = "bob-matrix-password-63a9"
UPSTREAM_TOKEN = "upstream-matrix-token-0d4c71"
UPSTREAM_AK = "UPSTREAMAK00000A"
UPSTREAM_SK = "upstream-matrix-secret-key-9f15"
SERVICE_PASSWORD = "svc-matrix-password-c27e"
ENCRYPTION_KEY = "matrix-encryption-key-81d3f0"
GEMINIDB = {"project_id": "0549b5e0a1", "instance_id": "e73893efin12"}
SENTINEL = "8999"  # a preloaded session nobody kills: proof a listing reached the upstream
VICTIMS = 60

SECRETS = (
    BOB_PASSWORD,
    UPSTREAM_TOKEN,
    UPSTREAM_SK,
    SERVICE_PASSWORD,
    ENCRYPTION_KEY,
    ADMIN_PASSWORD,
    USER_PASSWORD,
    STATIC_TOKEN,
    SECRET_KEY,
    SESSION_SECRET,
)


@dataclass(frozen=True)
class Caller:
    """One way a client of ``dialect`` authenticates: ``password``, ``token`` or ``signature``."""

    name: str
    dialect: str
    credential: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def credentials(self, mode: str) -> UpstreamCredentials:
        """Passthrough callers hold credentials only the upstream knows; static-mode callers
        hold Rosetta's own (a key pair is Rosetta's in both: it cannot pass through)."""
        if self.credential == "signature":
            return UpstreamCredentials(access_key=ACCESS_KEY, secret_key=SECRET_KEY)
        if self.credential == "token":
            return UpstreamCredentials(
                token=UPSTREAM_TOKEN if mode == "passthrough" else STATIC_TOKEN
            )
        if mode == "passthrough":
            return UpstreamCredentials(user="bob", password=BOB_PASSWORD)
        return UpstreamCredentials(user="alice", password=USER_PASSWORD)

    def converts_to(self, upstream: str) -> bool:
        if self.credential == "signature":
            return False
        return not (self.credential == "password" and upstream == "geminidb")


CALLERS = (
    Caller("faircom-createSession", "faircom", "password"),
    Caller("blobcity-body", "blobcity", "password"),
    Caller("maxscale-basic", "maxscale", "password"),
    Caller("maxscale-draft-basic", "maxscale", "password", {"format": "draft"}),
    Caller("maxscale-jwt", "maxscale", "password", {"auth": "jwt"}),
    Caller("jump-login", "jump", "password"),
    Caller("jump-presto-headers", "jump", "password"),
    Caller("rosetta-credentials", "rosetta", "password"),
    Caller("geminidb-token", "geminidb", "token", GEMINIDB),
    Caller("geminidb-aksk", "geminidb", "signature", GEMINIDB),
)


@dataclass
class Stack:
    upstream_dialect: str
    upstream: ServerProcess
    passthrough: ServerProcess
    static: ServerProcess
    victims: Iterator[int]

    def rosetta(self, mode: str) -> ServerProcess:
        return self.passthrough if mode == "passthrough" else self.static


@dataclass
class Record:
    """What the module saw, for the final secret scan."""

    replies: list[str] = field(default_factory=list)
    log_paths: list[Path] = field(default_factory=list)
    issued: set[str] = field(default_factory=set)
    cases: int = 0


RECORD = Record()


class RecordingChannel(HttpChannel):
    async def send(self, request: Any) -> HttpResponse:
        reply = await super().send(request)
        RECORD.replies.append(reply.body.decode("utf-8", "replace"))
        return reply


class Client(DialectClient):
    """A dialect client whose replies are recorded and whose cached tokens are collected."""

    def __init__(
        self,
        dialect: str,
        base_url: str,
        credentials: UpstreamCredentials,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(dialect, base_url, credentials, options)
        self.channel = RecordingChannel(self._client, base_url, credentials, options)

    async def ask(self, request: CanonicalRequest) -> CanonicalResponse:
        response = await super().ask(request)
        RECORD.issued.update(v for v in self.channel._state.values() if len(v) >= 16)
        if response.token:
            RECORD.issued.add(response.token)
        return response


class PrestoHeadersClient:
    """A JUMP client that sends ``presto_username``/``presto_password`` with every request
    instead of logging in; replies decoded by the JUMP translator."""

    def __init__(self, base_url: str, credentials: UpstreamCredentials) -> None:
        self.url = base_url + "/presto/edge/api"
        self.headers = {
            "presto_username": credentials.user or "",
            "presto_password": credentials.password or "",
            "content-type": "application/json",
        }
        self.translator = JumpTranslator()

    async def ask(self, request: CanonicalRequest) -> CanonicalResponse:
        oid, params = {
            Operation.LIST: ("listSessions", {}),
            Operation.KILL: ("killSession", {"sessionId": (request.filters.ids or [""])[0]}),
        }[request.operation]
        message = {"version": "1.0", "sid": "SessionService", "svcVersion": "0.1"}
        message |= {"oid": oid, "params": params}
        async with httpx.AsyncClient() as client:
            reply = await client.post(
                self.url, headers=self.headers, content=orjson.dumps(message), timeout=30
            )
        RECORD.replies.append(reply.text)
        http = HttpResponse(reply.status_code, list(reply.headers.items()), reply.content)
        try:
            return self.translator.decode_response(http, request)
        except RosettaError as error:
            return CanonicalResponse(request.operation, error=error)

    async def close(self) -> None:
        return None


def client_for(caller: Caller, server: ServerProcess, mode: str) -> Client | PrestoHeadersClient:
    credentials = caller.credentials(mode)
    if caller.name == "jump-presto-headers":
        return PrestoHeadersClient(server.url, credentials)
    return Client(caller.dialect, server.url, credentials, caller.options)


def victim_records() -> list[dict[str, Any]]:
    template = sample_sessions()[0]
    records = []
    for number in [int(SENTINEL), *range(9000, 9000 + VICTIMS)]:
        record = {**template, "id": str(number), "user": "victim", "connections": []}
        records.append(record)
    return records


# fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("matrix-redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=UPSTREAMS)
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
) -> Iterator[Stack]:
    dialect: str = request.param
    directory = tmp_path_factory.mktemp(f"matrix-{dialect}")
    started: list[ServerProcess] = []
    options = dict(GEMINIDB) if dialect == "geminidb" else {}
    if dialect == "geminidb":
        service: dict[str, Any] = {"access_key": UPSTREAM_AK, "secret_key": UPSTREAM_SK}
    else:
        service = {"user": "svc", "password": SERVICE_PASSWORD}
    sessions = {
        "store": redis_server.url,
        "secret": SESSION_SECRET,
        "encryption_key": ENCRYPTION_KEY,
    }

    def rosetta(mode: str, auth: dict[str, Any]) -> ServerProcess:
        backend = {"type": "upstream", "dialect": dialect, "url": upstream.url, "options": options}
        config = base_config(
            backends={"up": {**backend, "auth": {"mode": mode, **auth}}},
            default_backend="up",
            sessions=sessions,
        )
        return serve(directory, config, name=f"{mode}-{dialect}")

    try:
        upstream = emulate(
            directory,
            dialect,
            sessions=victim_records(),
            users=[f"bob:{BOB_PASSWORD}", f"svc:{SERVICE_PASSWORD}"],
            tokens=[UPSTREAM_TOKEN],
            access_keys=[f"{UPSTREAM_AK}:{UPSTREAM_SK}"],
        )
        started.append(upstream)
        started.append(rosetta("passthrough", {}))
        started.append(rosetta("static", service))
    except Exception:
        for process in started:
            process.stop()
        raise
    RECORD.log_paths.extend(process.log_path for process in started)
    yield Stack(dialect, started[0], started[1], started[2], itertools.count(9000))
    for process in started:
        process.stop()


async def upstream_ids(stack: Stack) -> set[str]:
    """The sessions the upstream itself has, asked directly in its own dialect."""
    probe = Client(
        stack.upstream_dialect,
        stack.upstream.url,
        UpstreamCredentials(token=UPSTREAM_TOKEN),
        GEMINIDB if stack.upstream_dialect == "geminidb" else {},
    )
    try:
        listed = await probe.ask(CanonicalRequest(Operation.LIST, stack.upstream_dialect))
    finally:
        await probe.close()
    assert listed.error is None, listed.error
    return {s.id for s in listed.sessions or []}


# the matrix -----------------------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["passthrough", "static"])
@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c.name)
async def test_a_caller_reaches_the_upstream(stack: Stack, caller: Caller, mode: str) -> None:
    upstream = stack.upstream_dialect
    client = client_for(caller, stack.rosetta(mode), mode)
    victim = str(next(stack.victims))
    RECORD.cases += 1
    try:
        listed = await client.ask(CanonicalRequest(Operation.LIST, caller.dialect))
        killed = await client.ask(
            CanonicalRequest(Operation.KILL, caller.dialect, filters=Filters(ids=[victim]))
        )
    finally:
        await client.close()

    if mode == "passthrough" and not caller.converts_to(upstream):
        for response in (listed, killed):
            error = response.error
            assert error is not None and error.kind is ErrorKind.UNAUTHENTICATED, error
            if caller.dialect != "maxscale":  # MaxScale's 401 body is always "Access denied"
                assert caller.dialect in error.message and upstream in error.message, error
        assert victim in await upstream_ids(stack)  # nothing reached the upstream
        return

    assert listed.error is None, f"{caller.name} -> {upstream} ({mode}) list: {listed.error}"
    ids = {s.id for s in listed.sessions or []}
    assert {SENTINEL, victim} <= ids, sorted(ids)
    assert killed.error is None, f"{caller.name} -> {upstream} ({mode}) kill: {killed.error}"
    assert killed.affected == 1
    after = await upstream_ids(stack)
    assert victim not in after and SENTINEL in after


def test_a_faircom_login_through_passthrough_is_a_rosetta_session(
    stack: Stack, redis_server: RedisServer
) -> None:
    """A FairCom createSession on the passthrough Rosetta is checked by the upstream (its own
    login, or a credentialed check where its dialect has none) and answered with a token of
    Rosetta's own, kept in Redis only as a keyed hash; deleteSession ends it. A GeminiDB
    upstream cannot take a password: createSession fails naming both dialects."""
    url = f"{stack.passthrough.url}/api"
    login = {"username": "bob", "password": BOB_PASSWORD}
    created = httpx.post(
        url, json={"api": "admin", "action": "createSession", "params": login}, timeout=15
    ).json()
    RECORD.replies.append(orjson.dumps(created).decode())
    if stack.upstream_dialect == "geminidb":
        assert created["errorCode"] == 12101
        assert "faircom" in created["errorMessage"] and "geminidb" in created["errorMessage"]
        return
    assert created["errorCode"] == 0, created
    token = created["authToken"]
    RECORD.issued.add(token)
    stored = dump_redis(redis_server.url)
    assert f":t:{_token_hash(token)}".encode() in stored
    assert token.encode() not in stored

    def ping() -> dict[str, Any]:
        body = {"api": "admin", "action": "pingSession", "authToken": token}
        answer: dict[str, Any] = httpx.post(url, json=body, timeout=15).json()
        RECORD.replies.append(orjson.dumps(answer).decode())
        return answer

    assert ping()["errorCode"] == 0
    ended = httpx.post(
        url, json={"api": "admin", "action": "deleteSession", "authToken": token}, timeout=15
    ).json()
    assert ended["errorCode"] == 0, ended
    assert ping()["errorCode"] == 12031


def _token_hash(token: str) -> str:
    from proxy.sessions.tokens import TokenHasher

    return TokenHasher(SESSION_SECRET.encode()).hash(token)


def test_nothing_secret_in_redis_logs_or_error_bodies(redis_server: RedisServer) -> None:
    """Runs after the matrix (module order): everything it saw, scanned for secrets."""
    if RECORD.cases < len(CALLERS) * 2 * len(UPSTREAMS):
        pytest.skip("the whole matrix did not run in this session")
    dump = dump_redis(redis_server.url)
    assert b":s:" in dump and b"x:password" in dump  # bridged sessions kept credentials
    logs = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in RECORD.log_paths)
    assert '"event":"request"' in logs.replace(" ", "")
    errors = [_without_own_token_echo(r) for r in RECORD.replies if _is_error(r)]
    assert errors, "no error body was seen"
    secrets = [*SECRETS, *RECORD.issued]
    assert len(RECORD.issued) >= 6
    for secret in secrets:
        assert secret.encode() not in dump, "a secret in Redis"
        assert secret not in logs, "a secret in a log"
        for body in errors:
            assert secret not in body, f"a secret in an error body: {body[:200]}"
    # any body at all: tokens only where a dialect hands callers their own
    assert len(RECORD.replies) > RECORD.cases
    assert any(t in r for t in RECORD.issued for r in RECORD.replies)  # the scan sees tokens
    assert not leaks(secrets, RECORD.replies)


def _is_error(body: str) -> bool:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return bool(body.strip())
    if not isinstance(data, dict):
        return False
    return bool(
        data.get("error")
        or data.get("errors")
        or data.get("error_code")
        or data.get("errorCode")
        or data.get("ack") in ("0", 0)
    )


def _without_own_token_echo(body: str) -> str:
    """FairCom's 12031 echoes the caller's own offending authToken: the protocol's own echo."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if isinstance(data, dict) and data.get("errorCode") == 12031:
        data.pop("authToken", None)
    return orjson.dumps(data).decode()
