"""Lossless round trips, property-based, with the translators in-process.

Request side: a canonical request a dialect can express, built by the dialect's outbound side
(``call_upstream`` through a recording channel, as a real client of the dialect sends it) and
decoded by the same dialect's inbound side, comes back as the same canonical request.

Response side: canonical sessions, rendered by a dialect's inbound side (``encode_response``,
in answer to that request) and decoded by its outbound side (``decode_response``), come back as
the same sessions, for every field the dialect carries (``tests.matrix.cells`` says which).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.router import Router
from tests.matrix.cells import carried, view
from tests.matrix.cluster import ACCESS_KEY, INSTANCE_ID, PROJECT_ID, SECRET_KEY
from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    Connection,
    Filters,
    HttpRequest,
    HttpResponse,
    Operation,
    RosettaError,
    SessionRecord,
    Translator,
    UpstreamCredentials,
)
from translators.faircom import FairComTranslator
from translators.registry import translator_class

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DIALECTS = ("rosetta", "faircom", "blobcity", "maxscale", "geminidb", "jump")

_text = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='\\"'),
    min_size=1,
    max_size=12,
)
_ids = st.integers(min_value=1, max_value=10**9).map(str)
_addresses = st.builds(
    lambda a, b, port: f"10.{a}.{b}.1:{port}",
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(1, 65535),
)
_connections = st.lists(
    st.builds(
        Connection,
        server=_text,
        state=st.just("DCB in the polling loop"),
        role=st.just("Backend Request Handler"),
        reads=st.integers(0, 10**6),
        writes=st.integers(0, 10**6),
    ),
    max_size=3,
)


def _records() -> st.SearchStrategy[list[SessionRecord]]:
    record = st.builds(
        SessionRecord,
        id=_ids,
        user=_text,
        client_address=_addresses,
        description=st.one_of(st.just(""), _text),
        node_id=_text,
        connections=_connections,
        connected_at=st.just(datetime(2024, 1, 5, 7, 24, 6, tzinfo=UTC)),
    )
    return st.lists(record, max_size=6, unique_by=lambda r: r.id)


class RecordingChannel:
    """An upstream channel that answers every request with a canned reply and keeps what was
    sent, so a dialect's client side can be driven without a server."""

    def __init__(self, dialect: str, reply: HttpResponse) -> None:
        self.sent: list[HttpRequest] = []
        self.reply = reply
        self._options: dict[str, Any] = (
            {"project_id": PROJECT_ID, "instance_id": INSTANCE_ID} if dialect == "geminidb" else {}
        )
        self._credentials = (
            UpstreamCredentials(access_key=ACCESS_KEY, secret_key=SECRET_KEY)
            if dialect == "geminidb"
            else UpstreamCredentials(token="lossless-token")
            if dialect in ("faircom", "jump", "rosetta")
            else UpstreamCredentials(user="admin", password="pw")
        )

    @property
    def base_url(self) -> str:
        return "http://127.0.0.1:9"

    @property
    def options(self) -> Mapping[str, Any]:
        return self._options

    @property
    def credentials(self) -> UpstreamCredentials:
        return self._credentials

    @property
    def cache_key(self) -> str:
        return "lossless"

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.sent.append(request)
        return self.reply

    async def cached(self, name: str) -> str | None:
        return None

    async def remember(self, name: str, value: str | None) -> None:
        return None


def _router(translator: Translator) -> Router[Translator]:
    router: Router[Translator] = Router()
    for route in translator.routes:
        router.add(route.path, route.methods, translator, route.name)
    return router


_TRANSLATORS = {d: translator_class(d)() for d in DIALECTS}
_ROUTERS = {d: _router(t) for d, t in _TRANSLATORS.items()}


def _inbound(dialect: str, sent: HttpRequest) -> tuple[HttpRequest, CanonicalRequest]:
    """What the dialect's server side makes of a request its client side sent."""
    http = HttpRequest(
        method=sent.method,
        path=sent.path,
        query_string=sent.query_string,
        headers={k.lower(): v for k, v in sent.headers.items()},
        body=sent.body,
        client="127.0.0.1:5000",
    )
    http.headers.setdefault("host", "127.0.0.1:9")
    http.headers.setdefault("x-request-id", "lossless-1")
    match = _ROUTERS[dialect].match(http.method, http.path)
    assert match is not None, f"{dialect} does not route {http.method} {http.path}"
    http.path_params = match.params
    return http, _TRANSLATORS[dialect].decode_request(http)


async def _first_request(dialect: str, request: CanonicalRequest) -> HttpRequest:
    channel = RecordingChannel(dialect, HttpResponse(599, [], b""))
    # the canned reply is not an answer; only what was sent matters here
    with contextlib.suppress(RosettaError):
        await _TRANSLATORS[dialect].call_upstream(request, channel)
    assert channel.sent, f"{dialect} sent nothing for {request.operation.value}"
    return channel.sent[-1] if dialect == "faircom" else channel.sent[0]


# request side -----------------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize("dialect", ["rosetta", "blobcity", "jump"])
@SETTINGS
@given(
    users=st.one_of(st.none(), st.lists(_text, min_size=1, max_size=3, unique=True)),
    node=st.one_of(st.none(), _text),
    offset=st.integers(0, 1000),
    limit=st.one_of(st.none(), st.integers(1, 1000)),
)
async def test_a_list_request_survives_its_own_dialect(
    dialect: str, users: list[str] | None, node: str | None, offset: int, limit: int | None
) -> None:
    """Dialects with native list filters and paging carry every one of them."""
    asked = CanonicalRequest(
        Operation.LIST,
        dialect,
        filters=Filters(users=users, node_id=node),
        offset=offset,
        limit=limit,
    )
    _, decoded = _inbound(dialect, await _first_request(dialect, asked))
    assert decoded.operation is Operation.LIST
    assert decoded.filters.users == users
    assert decoded.filters.node_id == node
    assert (decoded.offset, decoded.limit) == (offset, limit)


@pytest.mark.anyio
@pytest.mark.parametrize("dialect", ["rosetta", "blobcity", "maxscale", "jump"])
@SETTINGS
@given(session_id=_ids, operation=st.sampled_from([Operation.GET, Operation.KILL]))
async def test_a_request_naming_one_session_survives_its_own_dialect(
    dialect: str, session_id: str, operation: Operation
) -> None:
    asked = CanonicalRequest(operation, dialect, filters=Filters(ids=[session_id]))
    _, decoded = _inbound(dialect, await _first_request(dialect, asked))
    assert decoded.operation is operation
    assert decoded.filters.ids == [session_id]


# response side ----------------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize(
    "dialect", ["rosetta", "faircom", "blobcity", "maxscale", "geminidb", "jump"]
)
@SETTINGS
@given(records=_records())
async def test_listed_sessions_survive_their_own_dialect(
    dialect: str, records: list[SessionRecord]
) -> None:
    asked = CanonicalRequest(Operation.LIST, dialect)
    sent = await _first_request(dialect, asked)
    http, decoded_request = _inbound(dialect, sent)
    answer = CanonicalResponse(Operation.LIST, sessions=records, total=len(records))
    rendered = _TRANSLATORS[dialect].encode_response(answer, decoded_request, http)
    assert rendered.status == 200, rendered.body[:300]
    back = _TRANSLATORS[dialect].decode_response(rendered, asked)
    keep = carried(dialect)
    want = sorted((view(r, keep) for r in records), key=lambda v: v["id"])
    got = sorted((view(r, keep) for r in back.sessions or []), key=lambda v: v["id"])
    assert got == want


_json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63),
        st.floats(allow_nan=False, allow_infinity=False),
        _text,
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_text, inner, max_size=3)),
    max_leaves=6,
)
_FAIRCOM_FIXED = frozenset(
    {
        "authToken",
        "username",
        "description",
        "password",
        "defaultDatabaseName",
        "idleConnectionTimeoutSeconds",
        "sessionStartTimestamp",
        "sessionLastAccessedTimestamp",
    }
)
# FairCom session settings beyond the canonical ones, as a FairCom server would report them
_faircom_settings = st.dictionaries(
    _text.filter(lambda k: k not in _FAIRCOM_FIXED),
    _json_values,
    max_size=4,
)


@pytest.mark.anyio
@SETTINGS
@given(records=_records(), settings_list=st.lists(_faircom_settings, min_size=6, max_size=6))
async def test_described_faircom_sessions_survive_faircom(
    records: list[SessionRecord], settings_list: list[dict[str, Any]]
) -> None:
    """FairCom's full session objects (``describeSessions``, what its client side reads after
    ``listSessions``): ids, users, descriptions, start times, databases and every setting the
    session carries beyond the canonical ones, with its JSON type."""
    for record, extra in zip(records, settings_list, strict=False):
        record.extras["faircom"] = extra
    faircom = FairComTranslator()
    body = b'{"api":"admin","action":"describeSessions","authToken":"t","requestId":3}'
    http = HttpRequest("POST", "/api", headers={"host": "127.0.0.1:9"}, body=body)
    http.path_params = {}
    asked = faircom.decode_request(http)
    answer = CanonicalResponse(Operation.LIST, sessions=records, total=len(records))
    rendered = faircom.encode_response(answer, asked, http)
    assert rendered.status == 200, rendered.body[:300]
    reply = orjson.loads(rendered.body)
    assert reply["errorCode"] == 0 and reply["requestId"] == 3
    back = [faircom.record_of(obj, None) for obj in faircom.sessions_of(reply["result"])]
    assert [r.id for r in back] == [r.id for r in records]
    for got, want in zip(back, records, strict=True):
        assert (got.user, got.description, got.database) == (
            want.user,
            want.description,
            want.database,
        )
        assert got.connected_at == want.connected_at
        kept = got.extras["faircom"]
        for key, value in want.extras["faircom"].items():
            assert key in kept and orjson.dumps(kept[key]) == orjson.dumps(value), key
