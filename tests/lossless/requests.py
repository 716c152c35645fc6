"""Seeded generators of raw requests, per dialect as its callers send them: a spread of
operations, filters, paging, ids as integers and strings, unknown extra fields where the
dialect allows them, errors (unknown ids, bad parameters, unknown actions).

Each ``Exchange`` is sent once to the emulator and once through Rosetta. Read-only requests
are the same on both sides. Mutating ones act on fresh, identical state: a kill or kill_all
names a pair of twin sessions (identical but for id, user or node; see ``passage``), one
killed directly and one through Rosetta; an alter sets the same values on the same session
twice (direct first), which leaves the same state and answer.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from tests.lossless.passage import (
    ADMIN,
    INSTANCE_ID,
    PASSWORD,
    POOL,
    PROJECT_ID,
    TOKEN,
    alter_target,
    kill_twins,
    sweep_twins,
)

# ids that exist on every emulator, as strings; and ids that do not
KNOWN_IDS = ("101", "102", "103", "104", "201", "202")
UNKNOWN_IDS = ("999", "424242")
USERS = ("jdoe", "dba", "app", "ext", "ext2", "nobody")
NODES = ("node-a", "node-b", "node-x", "rosetta-node-1", "no-such-node")


@dataclass
class Call:
    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    sign: bool = False  # GeminiDB: AK/SK-sign for the server it is sent to


@dataclass
class Exchange:
    label: str
    direct: Call
    via: Call | None = None  # None: the same request
    # twins: (direct's, Rosetta's) id, user or node of a mutating pair; the answer through
    # Rosetta is compared with the second read as the first
    twins: tuple[str, str] | None = None

    @property
    def through(self) -> Call:
        return self.via or self.direct


class Pools:
    """Hands out a row's twin victims, each pair once."""

    def __init__(self, row: str) -> None:
        self.row = row
        self.kills = 0
        self.sweeps = 0

    def kill(self) -> tuple[str, str] | None:
        if self.kills >= POOL:
            return None
        self.kills += 1
        return kill_twins(self.row, self.kills - 1)

    def sweep(self) -> tuple[str, str] | None:
        if self.sweeps >= POOL:
            return None
        self.sweeps += 1
        return sweep_twins(self.row, self.sweeps - 1)


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


_ANY_JSON: tuple[Any, ...] = (
    7,
    "7",
    0,
    -12,
    2**63,
    1.5,
    True,
    False,
    None,
    "",
    "x y",
    [1, "1"],
    {"n": 1, "s": "1"},
)


def _some_id(rng: random.Random, *, unknown: float = 0.15) -> str:
    return rng.choice(UNKNOWN_IDS if rng.random() < unknown else KNOWN_IDS)


def _as_int_or_str(rng: random.Random, session_id: str) -> int | str:
    return int(session_id) if session_id.isdigit() and rng.random() < 0.5 else session_id


# rosetta ------------------------------------------------------------------------------------
def rosetta_requests(rng: random.Random, pools: Pools) -> Iterator[Exchange]:
    def call(operation: str, body: dict[str, Any], *, bearer: bool = False) -> Call:
        headers = {"content-type": "application/json"}
        if bearer:
            headers["authorization"] = f"Bearer {TOKEN}"
        else:
            body = {"credentials": {"token": TOKEN}, **body}
        if rng.random() < 0.7:
            body["request_id"] = rng.choice(_ANY_JSON)
        if rng.random() < 0.3:
            body["extras"] = {"custom": {"k": rng.choice(_ANY_JSON)}}
        return Call("POST", f"/rosetta/v1/{operation}", headers=headers, body=_json(body))

    while True:
        bearer = rng.random() < 0.3
        kind = rng.choice(("list", "list", "get", "connections", "ping", "kill", "sweep", "alter"))
        if kind == "list":
            filters: dict[str, Any] = {}
            if rng.random() < 0.4:
                filters["users"] = rng.sample(USERS, rng.randint(1, 2))
            if rng.random() < 0.3:
                filters["node_id"] = rng.choice(NODES)
            if rng.random() < 0.2:
                filters["ids"] = rng.sample(KNOWN_IDS, 2)
            body: dict[str, Any] = {"filters": filters}
            if rng.random() < 0.5:
                body["offset"] = rng.randint(0, 5)
                body["limit"] = rng.randint(1, 5)
            yield Exchange("list", call("session.list", body, bearer=bearer))
        elif kind in ("get", "connections"):
            body = {"filters": {"ids": [_some_id(rng)]}}
            yield Exchange(kind, call(f"session.{kind}", body, bearer=bearer))
        elif kind == "ping":
            yield Exchange("ping", call("session.ping", {}, bearer=bearer))
        elif kind == "kill" and (twins := pools.kill()):
            a, b = twins
            state = rng.getstate()
            first = call("session.kill", {"filters": {"ids": [a]}}, bearer=bearer)
            rng.setstate(state)
            yield Exchange(
                "kill",
                first,
                call("session.kill", {"filters": {"ids": [b]}}, bearer=bearer),
                (a, b),
            )
        elif kind == "sweep" and (users := pools.sweep()):
            a, b = users
            state = rng.getstate()
            first = call("session.kill_all", {"filters": {"users": [a]}})
            rng.setstate(state)
            yield Exchange(
                "kill_all", first, call("session.kill_all", {"filters": {"users": [b]}}), (a, b)
            )
        elif kind == "alter":
            text = rng.choice(("reporting", "batch 2", ""))
            body = {"filters": {"ids": [alter_target(pools.row)]}}
            body["settings"] = {"description": text}
            yield Exchange("alter", call("session.alter", body))


# faircom ------------------------------------------------------------------------------------
def faircom_requests(rng: random.Random, pools: Pools) -> Iterator[Exchange]:
    def call(action: str, params: dict[str, Any] | None, *, token: bool = True) -> Call:
        body: dict[str, Any] = {"api": rng.choice(("admin", "admin", "db")), "action": action}
        if params is not None:
            body["params"] = params
        if token:
            body["authToken"] = TOKEN
        if rng.random() < 0.8:
            body["requestId"] = rng.choice(_ANY_JSON)
        if rng.random() < 0.2:
            body["debug"] = "max"
        if rng.random() < 0.2:
            body["apiVersion"] = "1.0"
        path = rng.choice(("/api", "/api", "/api/db"))
        return Call("POST", path, headers={"content-type": "application/json"}, body=_json(body))

    while True:
        kind = rng.choice(
            ("ping", "list", "list", "describe", "describe", "alter", "kill", "unknown")
        )
        if kind == "ping":
            yield Exchange("pingSession", call("pingSession", None, token=rng.random() < 0.7))
        elif kind == "list":
            params: dict[str, Any] = {"usernameFilter": rng.sample(USERS, rng.randint(1, 2))}
            if rng.random() < 0.3:
                params = {} if rng.random() < 0.6 else {"usernameFilter": "jdoe"}  # 12100
            yield Exchange("listSessions", call("listSessions", params))
        elif kind == "describe":
            params = {}
            if rng.random() < 0.6:
                params["authTokens"] = [f"session:{_some_id(rng)}" for _ in range(2)]
            yield Exchange("describeSessions", call("describeSessions", params))
        elif kind == "alter":
            params = {
                "authToken": f"session:{alter_target(pools.row)}",
                "description": rng.choice(("nightly", "x", "")),
            }
            if rng.random() < 0.6:
                params["defaultDatabaseName"] = rng.choice(("ctreeSQL", "other"))
            if rng.random() < 0.5:
                params["customSetting"] = rng.choice(_ANY_JSON)
            yield Exchange("alterSession", call("alterSession", params))
        elif kind == "kill" and (twins := pools.kill()):
            a, b = twins
            state = rng.getstate()
            first = call("deleteSession", {"authToken": f"session:{a}"})
            rng.setstate(state)
            yield Exchange(
                "deleteSession",
                first,
                call("deleteSession", {"authToken": f"session:{b}"}),
                (a, b),
            )
        elif kind == "unknown":
            yield Exchange("listDatabases", call("listDatabases", {}))


# blobcity -----------------------------------------------------------------------------------
Query = tuple[str, Any]  # BlobCity query code and p


def _blobcity_queries(
    rng: random.Random, pools: Pools
) -> Iterator[tuple[str, Query, Query, tuple[str, str] | None]]:
    """(label, direct query, through-Rosetta query, twins)."""
    while True:
        kind = rng.choice(
            ("list", "list", "describe", "connections", "ping", "verify", "kill", "sweep", "bad")
        )
        if kind == "list":
            p: dict[str, Any] = {}
            if rng.random() < 0.4:
                p["user"] = rng.choice((rng.choice(USERS), list(rng.sample(USERS, 2))))
            if rng.random() < 0.3:
                p["node"] = rng.choice(NODES)
            if rng.random() < 0.2:
                p["address-prefix"] = rng.choice(("10.", "192.168.0.", "172."))
            if rng.random() < 0.5:
                p["offset"] = rng.randint(0, 4)
                p["limit"] = rng.randint(1, 6)
            if rng.random() < 0.2:
                p["ids"] = [_as_int_or_str(rng, i) for i in rng.sample(KNOWN_IDS, 2)]
            query = ("list-sessions", p if p or rng.random() < 0.5 else None)
            yield "list-sessions", query, query, None
        elif kind in ("describe", "connections"):
            code = "describe-session" if kind == "describe" else "list-session-connections"
            query = (code, {"id": _as_int_or_str(rng, _some_id(rng))})
            yield code, query, query, None
        elif kind in ("ping", "verify"):
            query = ("ping" if kind == "ping" else "verify-credentials", None)
            yield query[0], query, query, None
        elif kind == "kill" and (twins := pools.kill()):
            a, b = twins
            key = rng.choice(("id", "ids"))
            as_int = rng.random() < 0.5
            yield (
                "kill-session",
                ("kill-session", {key: (int(a) if as_int else a) if key == "id" else [a]}),
                ("kill-session", {key: (int(b) if as_int else b) if key == "id" else [b]}),
                (a, b),
            )
        elif kind == "sweep" and (users := pools.sweep()):
            a, b = users
            yield (
                "kill-all-sessions",
                ("kill-all-sessions", {"user": a}),
                ("kill-all-sessions", {"user": b}),
                (a, b),
            )
        elif kind == "bad":
            query = ("list-sessions", {"usr": "typo"})
            yield "bad p key", query, query, None


def blobcity_json_requests(rng: random.Random, pools: Pools) -> Iterator[Exchange]:
    def call(query: tuple[str, Any]) -> Call:
        body: dict[str, Any] = {"username": ADMIN, "password": PASSWORD, "q": query[0]}
        if query[1] is not None or rng.random() < 0.5:
            body["p"] = query[1]
        if rng.random() < 0.3:
            body["ds"] = "testds"
        return Call(
            "POST", "/rest/bquery", headers={"content-type": "application/json"}, body=_json(body)
        )

    for label, direct, through, twins in _blobcity_queries(rng, pools):
        state = rng.getstate()
        first = call(direct)
        rng.setstate(state)
        yield Exchange(label, first, call(through), twins)


def blobcity_form_requests(rng: random.Random, pools: Pools) -> Iterator[Exchange]:
    """The official Java adapter's form: fields, and ``q`` holding the query as JSON text
    with the credentials repeated."""

    def call(query: tuple[str, Any]) -> Call:
        inner = {"q": query[0], "username": ADMIN, "password": PASSWORD, "ds": "testds"}
        inner["p"] = query[1]
        fields = [("username", ADMIN), ("password", PASSWORD), ("ds", "testds")]
        fields.append(("q", json.dumps(inner)))
        return Call(
            "POST",
            "/rest/bquery",
            headers={"content-type": "application/x-www-form-urlencoded"},
            body=urlencode(fields).encode("ascii"),
        )

    for label, direct, through, twins in _blobcity_queries(rng, pools):
        yield Exchange(label, call(direct), call(through), twins)


# maxscale -----------------------------------------------------------------------------------
_BASIC = "Basic " + base64.b64encode(f"{ADMIN}:{PASSWORD}".encode()).decode("ascii")


def maxscale_jsonapi_requests(rng: random.Random, pools: Pools) -> Iterator[Exchange]:
    def call(method: str, path: str, query: str = "", body: Any = None) -> Call:
        headers = {"authorization": _BASIC}
        raw = b""
        if body is not None:
            headers["content-type"] = "application/json"
            raw = _json(body)
        return Call(method, path, query, headers, raw)

    while True:
        kind = rng.choice(("list", "list", "get", "ping", "kill", "alter", "restart"))
        if kind == "list":
            params: list[tuple[str, str]] = []
            if rng.random() < 0.5:
                params += [("page[size]", str(rng.randint(1, 5)))]
                params += [("page[number]", str(rng.randint(0, 3)))]
            if rng.random() < 0.3:
                params.append(("fields[sessions]", rng.choice(("state,user", "memory/total"))))
            if rng.random() < 0.3:
                params.append(
                    (
                        "filter",
                        rng.choice(
                            (
                                '/attributes/user="jdoe"',
                                "id=and(ge(100),le(200))",
                                "/id=103",
                                "/attributes/thread=3",
                            )
                        ),
                    )
                )
            yield Exchange("GET /v1/sessions", call("GET", "/v1/sessions", urlencode(params)))
        elif kind == "get":
            session_id = rng.choice((*KNOWN_IDS, *UNKNOWN_IDS, "abc-301"))
            slash = rng.choice(("", "/"))
            yield Exchange("GET /v1/sessions/:id", call("GET", f"/v1/sessions/{session_id}{slash}"))
        elif kind == "ping":
            yield Exchange("GET /v1/maxscale", call("GET", rng.choice(("/v1/maxscale", "/v1/"))))
        elif kind == "kill" and (twins := pools.kill()):
            a, b = twins
            query = "ttl=0" if rng.random() < 0.3 else ""
            yield Exchange(
                "DELETE /v1/sessions/:id",
                call("DELETE", f"/v1/sessions/{a}", query),
                call("DELETE", f"/v1/sessions/{b}", query),
                (a, b),
            )
        elif kind == "alter":
            target = alter_target(pools.row)
            if rng.random() < 0.5:
                body: Any = {
                    "data": {"attributes": {"parameters": {"log_info": rng.random() < 0.5}}}
                }
            else:
                names = rng.sample(("f1", "f2", "f3"), rng.randint(0, 2))
                data = [{"id": n, "type": "filters"} for n in names]
                body = {"data": {"relationships": {"filters": {"data": data}}}}
            yield Exchange(
                "PATCH /v1/sessions/:id", call("PATCH", f"/v1/sessions/{target}", body=body)
            )
        elif kind == "restart":
            yield Exchange(
                "POST /v1/sessions/:id/restart",
                call("POST", f"/v1/sessions/{_some_id(rng)}/restart"),
            )


def maxscale_draft_requests(rng: random.Random, pools: Pools) -> Iterator[Exchange]:
    def call(method: str, path: str, query: str = "", body: Any = None) -> Call:
        headers = {"authorization": _BASIC}
        raw = b""
        if body is not None:
            headers["content-type"] = "application/json-patch+json"
            raw = _json(body)
        return Call(method, path, query, headers, raw)

    while True:
        kind = rng.choice(("list", "list", "get", "connections", "kill", "alter"))
        params: list[tuple[str, str]] = []
        if rng.random() < 0.3:
            params.append(("fields", rng.choice(("id,user", "id,parameters,router", "address"))))
        if kind == "list":
            if rng.random() < 0.5:
                start = rng.randint(0, 6)
                params.append(("range", f"{start}-{start + rng.randint(0, 4)}"))
            yield Exchange("GET /sessions", call("GET", "/sessions", urlencode(params)))
        elif kind == "get":
            session_id = rng.choice((*KNOWN_IDS, *UNKNOWN_IDS))
            yield Exchange(
                "GET /sessions/:id", call("GET", f"/sessions/{session_id}", urlencode(params))
            )
        elif kind == "connections":
            if rng.random() < 0.3:
                params.append(("range", "0-0"))
            yield Exchange(
                "GET /sessions/:id/connections",
                call("GET", f"/sessions/{_some_id(rng)}/connections", urlencode(params)),
            )
        elif kind == "kill" and (twins := pools.kill()):
            a, b = twins
            yield Exchange(
                "DELETE /sessions/:id",
                call("DELETE", f"/sessions/{a}"),
                call("DELETE", f"/sessions/{b}"),
                (a, b),
            )
        elif kind == "alter":
            value = rng.random() < 0.5
            patch = [{"op": "replace", "path": "/parameters/log_warning", "value": value}]
            if rng.random() < 0.5:
                patch.append({"op": "add", "path": "/filters", "value": ["f9"]})
            yield Exchange(
                "PATCH /sessions/:id",
                call("PATCH", f"/sessions/{alter_target(pools.row)}", body=patch),
            )


# geminidb -----------------------------------------------------------------------------------
def geminidb_requests(rng: random.Random, pools: Pools) -> Iterator[Exchange]:
    instance = f"/v3/{PROJECT_ID}/instances/{INSTANCE_ID}/sessions"

    def node_path(node: str, tail: str = "sessions") -> str:
        return f"/v3/{PROJECT_ID}/redis/nodes/{quote(node, safe='')}/{tail}"

    def call(method: str, path: str, query: str = "", body: Any = None) -> Call:
        signed = rng.random() < 0.5
        headers = {} if signed else {"x-auth-token": TOKEN}
        raw = b""
        if body is not None:
            headers["content-type"] = "application/json"
            raw = _json(body)
        return Call(method, path, query, headers, raw, sign=signed)

    while True:
        kind = rng.choice(("instance", "node", "node", "statistics", "kill", "sweep", "bad"))
        if kind == "instance":
            query = urlencode({"node_id": rng.choice(NODES)}) if rng.random() < 0.5 else ""
            yield Exchange("GET instance sessions", call("GET", instance, query))
        elif kind == "node":
            params: dict[str, Any] = {}
            if rng.random() < 0.5:
                params["offset"] = rng.randint(0, 3)
                params["limit"] = rng.randint(1, 4)
            if rng.random() < 0.3:
                params["addr_prefix"] = rng.choice(("10.", "192.168.0.2", "172.20"))
            node = rng.choice(NODES)
            yield Exchange("GET node sessions", call("GET", node_path(node), urlencode(params)))
        elif kind == "statistics":
            yield Exchange(
                "GET session-statistics",
                call("GET", node_path(rng.choice(NODES), "session-statistics")),
            )
        elif kind == "kill" and (twins := pools.kill()):
            a, b = twins
            state = rng.getstate()
            first = call("DELETE", node_path("victims"), body={"is_all": False, "session_ids": [a]})
            rng.setstate(state)
            second = call(
                "DELETE", node_path("victims"), body={"is_all": False, "session_ids": [b]}
            )
            yield Exchange("DELETE node sessions (ids)", first, second, (a, b))
        elif kind == "sweep" and (nodes := pools.sweep()):
            a, b = nodes
            state = rng.getstate()
            if rng.random() < 0.5:
                first = call("DELETE", node_path(a), body={"is_all": True})
                rng.setstate(state)
                second = call("DELETE", node_path(b), body={"is_all": True})
            else:
                first = call("DELETE", instance, urlencode({"node_id": a}))
                rng.setstate(state)
                second = call("DELETE", instance, urlencode({"node_id": b}))
            yield Exchange("DELETE sessions (is_all)", first, second, (a, b))
        elif kind == "bad":
            yield Exchange(
                "GET node sessions, limit 0",
                call("GET", node_path("node-a"), urlencode({"limit": 0})),
            )


# jump ---------------------------------------------------------------------------------------
def jump_requests(rng: random.Random, pools: Pools) -> Iterator[Exchange]:
    credentials = {"presto_username": ADMIN, "presto_password": PASSWORD}

    def envelope(oid: str, params: Any, sid: str = "SessionService") -> dict[str, Any]:
        body: dict[str, Any] = {"version": "1.0", "sid": sid, "svcVersion": "0.1", "oid": oid}
        body["params"] = params
        if rng.random() < 0.6:
            body["header"] = {"invId": rng.choice(("42", "inv-7", 7))}
        if rng.random() < 0.2:
            body["appId"] = "lossless"
        return body

    def call(oid: str, params: Any, sid: str = "SessionService") -> Call:
        body = envelope(oid, params, sid)
        how = rng.random()
        if how < 0.15:  # GET with inputStream, sometimes JSONP
            query = [("inputStream", json.dumps(body))]
            if rng.random() < 0.5:
                query.append(("callback", "cb.fn"))
            return Call("GET", "/presto/edge/api", urlencode(query), dict(credentials))
        headers = {"content-type": "application/json", **credentials}
        path = rng.choice(("/presto/edge/api", "/mashzone/edge/api"))
        return Call("POST", path, headers=headers, body=_json(body))

    while True:
        kind = rng.choice(
            ("list", "list", "get", "connections", "ping", "kill", "sweep", "alter", "unknown")
        )
        if kind == "list":
            if rng.random() < 0.5:
                params: Any = [rng.choice(USERS)] if rng.random() < 0.5 else []
                if rng.random() < 0.5:
                    params = [params[0] if params else None, rng.randint(0, 3), rng.randint(1, 4)]
            else:
                params = {}
                if rng.random() < 0.5:
                    params["users"] = rng.sample(USERS, 2)
                if rng.random() < 0.3:
                    params["nodeId"] = rng.choice(NODES)
                if rng.random() < 0.3:
                    params["address"] = rng.choice(("10.", "192.168."))
                if rng.random() < 0.4:
                    params["offset"], params["limit"] = rng.randint(0, 3), rng.randint(1, 4)
            yield Exchange("listSessions", call("listSessions", params))
        elif kind in ("get", "connections"):
            oid = "getSession" if kind == "get" else "getSessionConnections"
            target = _as_int_or_str(rng, _some_id(rng))
            params = [target] if rng.random() < 0.5 else {"sessionId": target}
            yield Exchange(oid, call(oid, params))
        elif kind == "ping":
            yield Exchange("pingSession", call("pingSession", []))
        elif kind == "kill" and (twins := pools.kill()):
            a, b = twins
            state = rng.getstate()
            first = call("killSession", [_as_int_or_str(rng, a)])
            rng.setstate(state)
            yield Exchange(
                "killSession", first, call("killSession", [_as_int_or_str(rng, b)]), (a, b)
            )
        elif kind == "sweep" and (users := pools.sweep()):
            a, b = users
            state = rng.getstate()
            first = call("killAllSessions", {"user": a})
            rng.setstate(state)
            yield Exchange("killAllSessions", first, call("killAllSessions", {"user": b}), (a, b))
        elif kind == "alter":
            settings: dict[str, Any] = {"description": rng.choice(("nightly", "", "x"))}
            if rng.random() < 0.5:
                settings["locale"] = rng.choice(("de", "fr"))
            params = [alter_target(pools.row), settings]
            yield Exchange("alterSession", call("alterSession", params))
        elif kind == "unknown":
            yield Exchange("unknown oid", call("listEverything", []))


GENERATORS: dict[str, Callable[[random.Random, Pools], Iterator[Exchange]]] = {
    "rosetta": rosetta_requests,
    "faircom": faircom_requests,
    "blobcity json": blobcity_json_requests,
    "blobcity form": blobcity_form_requests,
    "maxscale jsonapi": maxscale_jsonapi_requests,
    "maxscale draft": maxscale_draft_requests,
    "geminidb": geminidb_requests,
    "jump": jump_requests,
}


def exchanges(row: str, count: int, seed: int) -> list[Exchange]:
    """``count`` exchanges of ``row``, the same for the same seed."""
    rng = random.Random(f"{seed}:{row}")
    produced = GENERATORS[row](rng, Pools(row))
    return [next(produced) for _ in range(count)]
