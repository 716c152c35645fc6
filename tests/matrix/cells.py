"""One cell of the matrix: every operation a row's callers can send, asked of Rosetta in the
row's dialect and of the backend directly in its own dialect, normalised and compared.

An operation the upstream cannot carry must come back as unsupported_operation in the
caller's envelope (decoded by the row's own client); one the upstream carries by composition
must give the same answer as a native one. Logins and logouts in front of an upstream are
answered by Rosetta's own session layer (static upstream credentials), so they are checked by
their effect: the token works until logout and not after.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tests.matrix.cluster import ADMIN, PASSWORD, Column, Row, client, row_client
from tests.support.dialect_client import DialectClient
from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    ErrorKind,
    Filters,
    Operation,
    SessionRecord,
    UpstreamCredentials,
)
from translators.registry import translator_class

PASS = "pass"
COMPOSED = "composed"
UNSUPPORTED = "unsupported"
FAIL = "FAIL"

# What each dialect's session objects carry of the fields the matrix compares. GeminiDB has
# one ``name`` (the description, else the user); FairCom has no addresses, nodes or
# connections; MaxScale no description or node, and its draft listing only the client's IP.
_ALL = frozenset({"user", "description", "address", "ip", "node", "connections", "traffic"})
_CARRIES: dict[str, frozenset[str]] = {
    "rosetta": _ALL,
    "blobcity": _ALL,
    "jump": _ALL,
    "faircom": frozenset({"user", "description"}),
    "maxscale": frozenset({"user", "address", "ip", "connections"}),
    "maxscale draft": frozenset({"user", "ip"}),
    "geminidb": frozenset({"name", "address", "ip", "node"}),
}
# Filters an upstream of each dialect can evaluate (its records carry the field).
FILTERS: dict[str, frozenset[str]] = {
    "rosetta": frozenset({"users", "node_id"}),
    "blobcity": frozenset({"users", "node_id"}),
    "jump": frozenset({"users", "node_id"}),
    "faircom": frozenset({"users"}),
    "maxscale": frozenset({"users"}),
    "geminidb": frozenset({"node_id"}),
}


def carried(*keys: str) -> frozenset[str]:
    """Fields every one of ``keys`` carries; ``name`` stands in for user/description."""
    sets = [_CARRIES[k] for k in keys]
    common = frozenset.intersection(*sets)
    if any("name" in s for s in sets) and all(
        "name" in s or {"user", "description"} <= s for s in sets
    ):
        common |= {"name"}
    return common


def view(record: SessionRecord, keep: frozenset[str]) -> dict[str, Any]:
    """A record reduced to what both sides of a comparison carry."""
    out: dict[str, Any] = {"id": record.id}
    if "user" in keep:
        out["user"] = record.user
    if "description" in keep:
        out["description"] = record.description
    if "name" in keep:
        out["name"] = record.description or record.user
    if "address" in keep:
        out["address"] = record.client_address
    elif "ip" in keep:
        out["ip"] = record.client_address.rpartition(":")[0] or record.client_address
    if "node" in keep:
        out["node"] = record.node_id
    if "connections" in keep:
        out["connections"] = sorted(c.server for c in record.connections)
    if "traffic" in keep:
        out["traffic"] = sorted((c.server, c.reads, c.writes) for c in record.connections)
    return out


@dataclass
class Outcome:
    operation: str
    result: str  # PASS, COMPOSED, UNSUPPORTED, FAIL
    detail: str = ""


@dataclass
class CellReport:
    row: str
    column: str
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def summary(self) -> str:
        results = {o.result for o in self.outcomes}
        if FAIL in results:
            return FAIL
        parts = [r for r in (PASS, COMPOSED, UNSUPPORTED) if r in results]
        if PASS in parts and COMPOSED in parts:
            parts.remove(PASS)
        return " + ".join(parts)

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.result == FAIL]


class Mismatch(AssertionError):
    pass


class _Unsupported(Exception):
    """The upstream cannot carry what this request asks, and said so."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise Mismatch(message)


def _ok(response: CanonicalResponse, what: str) -> CanonicalResponse:
    if response.error is not None:
        raise Mismatch(f"{what}: {response.error.kind.value}: {response.error.message}")
    return response


class Cell:
    """Runs the operations of one (row, column) cell."""

    def __init__(self, row: Row, column: Column) -> None:
        self.row = row
        self.column = column
        self.report = CellReport(row.name, column.name)
        self.via = row_client(row, column.rosetta.url)
        self.direct = client(column.dialect, column.direct.url)
        self.row_key = row.name if row.name in _CARRIES else row.dialect
        self.keep = carried(self.row_key, column.dialect)
        self.filters = FILTERS["rosetta"] if column.name == "local" else FILTERS[column.dialect]
        upstream = translator_class(column.dialect)
        self.outbound = (
            dict.fromkeys(Operation, "native")
            if column.name == "local"
            else upstream.outbound_operations
        )
        self.operations = row.operations or translator_class(row.dialect).inbound_operations
        self._clients: list[DialectClient] = [self.via, self.direct]

    async def close(self) -> None:
        for c in self._clients:
            await c.close()

    def request(self, operation: Operation, **kwargs: Any) -> CanonicalRequest:
        return CanonicalRequest(operation, self.row.dialect, **kwargs)

    async def run(self) -> CellReport:
        checks: list[tuple[Operation, str, Callable[[], Awaitable[None]]]] = [
            (Operation.PING, "ping", self.ping),
            (Operation.LIST, "list", self.list_all),
            (Operation.LIST, "list by user", self.list_by_user),
            (Operation.LIST, "list page", self.list_page),
            (Operation.GET, "get", self.get),
            (Operation.CONNECTIONS, "connections", self.connections),
            (Operation.ALTER, "alter", self.alter),
            (Operation.KILL, "kill", self.kill),
            (Operation.KILL_ALL, "kill_all", self.kill_all),
            (Operation.LOGIN, "login/logout", self.login_logout),
        ]
        for operation, label, check in checks:
            if operation not in self.operations:
                continue
            if label == "list by user" and not self.row.user_filter:
                continue  # the row's callers cannot send a users filter
            self.report.outcomes.append(await self._one(operation, label, check))
        return self.report

    async def _one(
        self, operation: Operation, label: str, check: Callable[[], Awaitable[None]]
    ) -> Outcome:
        how = self.outbound.get(operation)
        if operation in (Operation.LOGIN, Operation.LOGOUT) and self.column.name != "local":
            how = "native"  # static upstream credentials: Rosetta's own session layer answers
        try:
            if how is None:
                await self.unsupported(operation)
                return Outcome(label, UNSUPPORTED)
            await check()
        except _Unsupported:
            return Outcome(label, UNSUPPORTED)
        except Mismatch as failure:
            return Outcome(label, FAIL, str(failure))
        except Exception as failure:  # a crash is a failure of the cell, reported as such
            return Outcome(label, FAIL, f"{type(failure).__name__}: {failure}")
        return Outcome(label, COMPOSED if how == "composed" else PASS)

    # the operations ----------------------------------------------------------------------
    async def unsupported(self, operation: Operation) -> None:
        ids = {
            Operation.GET: ["101"],
            Operation.CONNECTIONS: ["101"],
            Operation.ALTER: [self.row.alter_id],
            Operation.KILL: [self.row.kill_id],
        }.get(operation)
        request = self.request(operation, filters=Filters(ids=ids))
        if operation is Operation.ALTER:
            request.settings = {"description": "never applied"}
        if operation is Operation.KILL_ALL:
            request.filters = Filters(users=[self.row.sweep_user])
        answer = await self.via.ask(request)
        _check(answer.error is not None, f"{operation.value}: succeeded, expected unsupported")
        assert answer.error is not None
        _check(
            answer.error.kind is ErrorKind.UNSUPPORTED_OPERATION,
            f"{operation.value}: {answer.error.kind.value} ({answer.error.message}), "
            "expected unsupported_operation",
        )

    async def ping(self) -> None:
        _ok(await self.via.ask(self.request(Operation.PING)), "ping via rosetta")

    async def _lists(
        self, request: CanonicalRequest
    ) -> tuple[CanonicalResponse, CanonicalResponse]:
        via = _ok(await self.via.ask(request), "list via rosetta")
        direct = _ok(await self.direct.ask(_for(request, self.column.dialect)), "list direct")
        return via, direct

    def _compare_lists(self, via: CanonicalResponse, direct: CanonicalResponse) -> None:
        mine = sorted((view(s, self.keep) for s in via.sessions or []), key=_by_id)
        theirs = sorted((view(s, self.keep) for s in direct.sessions or []), key=_by_id)
        _check(mine == theirs, f"sessions differ:\n  via    {mine}\n  direct {theirs}")
        if via.total is not None and direct.total is not None:
            _check(via.total == direct.total, f"total {via.total} != {direct.total}")

    async def list_all(self) -> None:
        via, direct = await self._lists(self.request(Operation.LIST))
        _check(len(direct.sessions or []) >= 4, "the backend lists fewer than 4 sessions")
        self._compare_lists(via, direct)

    async def list_by_user(self) -> None:
        request = self.request(Operation.LIST, filters=Filters(users=["jdoe"]))
        if "users" not in self.filters:
            await self._refused(request, "a users filter on an upstream without users")
        via, direct = await self._lists(request)
        got = sorted(s.id for s in via.sessions or [])
        _check(got == ["101", "103"], f"sessions of jdoe: {got}")
        self._compare_lists(via, direct)

    async def _refused(self, request: CanonicalRequest, what: str) -> None:
        """The upstream cannot evaluate what ``request`` asks: it must say so."""
        answer = await self.via.ask(request)
        _check(
            answer.error is not None and answer.error.kind is ErrorKind.UNSUPPORTED_OPERATION,
            f"{what}: {_kind(answer)}, expected unsupported_operation",
        )
        raise _Unsupported

    async def list_page(self) -> None:
        full = _ok(await self.via.ask(self.request(Operation.LIST)), "list via rosetta")
        page = _ok(
            await self.via.ask(self.request(Operation.LIST, offset=1, limit=2)), "page via rosetta"
        )
        want = [s.id for s in (full.sessions or [])[1:3]]
        got = [s.id for s in page.sessions or []]
        _check(got == want, f"page 1..2 {got} != {want} (the same listing's slice)")
        if page.total is not None:
            _check(page.total == len(full.sessions or []), f"page total {page.total}")

    async def get(self) -> None:
        request = self.request(Operation.GET, filters=Filters(ids=["101"]))
        via = _ok(await self.via.ask(request), "get via rosetta")
        direct = _ok(await self.direct.ask(_for(request, self.column.dialect)), "get direct")
        _check(via.session is not None and direct.session is not None, "get: no session")
        assert via.session is not None and direct.session is not None
        mine, theirs = view(via.session, self.keep), view(direct.session, self.keep)
        _check(mine == theirs, f"session differs:\n  via    {mine}\n  direct {theirs}")
        missing = await self.via.ask(self.request(Operation.GET, filters=Filters(ids=["999"])))
        _check(
            missing.error is not None and missing.error.kind is ErrorKind.NOT_FOUND,
            f"get of an unknown id: {_kind(missing)}, expected not_found",
        )

    async def connections(self) -> None:
        request = self.request(Operation.CONNECTIONS, filters=Filters(ids=["101"]))
        via = _ok(await self.via.ask(request), "connections via rosetta")
        direct = _ok(
            await self.direct.ask(_for(request, self.column.dialect)), "connections direct"
        )
        if "connections" in self.keep:
            mine = sorted(c.server for c in via.connections or [])
            theirs = sorted(c.server for c in direct.connections or [])
            _check(mine == theirs, f"connections differ: {mine} != {theirs}")
            _check(len(mine) == 2, f"session 101 has 2 connections, got {mine}")

    async def _direct_ids(self) -> set[str]:
        listed = _ok(
            await self.direct.ask(CanonicalRequest(Operation.LIST, self.column.dialect)),
            "list direct",
        )
        return {s.id for s in listed.sessions or []}

    async def kill(self) -> None:
        before = await self._direct_ids()
        target = self.row.kill_id
        _check(target in before, f"victim {target} is not there to kill")
        answer = _ok(
            await self.via.ask(self.request(Operation.KILL, filters=Filters(ids=[target]))),
            "kill via rosetta",
        )
        if answer.affected is not None:
            _check(answer.affected == 1, f"kill affected {answer.affected}")
        after = await self._direct_ids()
        _check(after == before - {target}, f"kill of {target} left {sorted(before - after)} gone")
        again = await self.via.ask(self.request(Operation.KILL, filters=Filters(ids=[target])))
        _check(
            again.error is not None and again.error.kind is ErrorKind.NOT_FOUND,
            f"second kill: {_kind(again)}, expected not_found",
        )

    async def kill_all(self) -> None:
        before = await self._direct_ids()
        victims = set(self.row.sweep_ids)
        _check(victims <= before, f"victims {sorted(victims - before)} are not there")
        # GeminiDB callers close sessions by node; everyone else names the user
        if self.row.dialect == "geminidb":
            filters, needs = Filters(node_id=self.row.sweep_node), "node_id"
        else:
            filters, needs = Filters(users=[self.row.sweep_user]), "users"
        request = self.request(Operation.KILL_ALL, filters=filters)
        if needs not in self.filters:
            await self._refused(request, f"kill_all by {needs} on an upstream without it")
        answer = _ok(await self.via.ask(request), "kill_all via rosetta")
        if answer.affected is not None:
            _check(answer.affected == 2, f"kill_all affected {answer.affected}")
        after = await self._direct_ids()
        _check(after == before - victims, f"kill_all removed {sorted(before - after)}")

    async def alter(self) -> None:
        target = self.row.alter_id
        text = f"altered by {self.row.name}"
        if self.row.dialect == "maxscale":
            await self.alter_parameters(target)
            return
        request = self.request(
            Operation.ALTER, filters=Filters(ids=[target]), settings={"description": text}
        )
        answer = await self.via.ask(request)
        if "description" not in _CARRIES[self.column.dialect]:
            # the upstream has no description to set: refusing beats dropping it silently
            _check(
                answer.error is not None and answer.error.kind is ErrorKind.UNSUPPORTED_OPERATION,
                f"alter of a description the upstream cannot hold: {_kind(answer)}",
            )
            raise _Unsupported
        _ok(answer, "alter via rosetta")
        got = _ok(
            await self.direct.ask(
                CanonicalRequest(Operation.GET, self.column.dialect, filters=Filters(ids=[target]))
            ),
            "get direct",
        )
        assert got.session is not None
        if "description" in carried(self.column.dialect) or "name" in carried(self.column.dialect):
            _check(got.session.description == text, f"description is {got.session.description!r}")

    async def alter_parameters(self, target: str) -> None:
        """MaxScale callers alter session parameters (a MaxScale notion): the change must be
        visible afterwards, or refused as unsupported by an upstream that cannot keep it."""
        request = self.request(
            Operation.ALTER,
            filters=Filters(ids=[target]),
            settings={"parameters": {"matrix_mark": self.row.index}},
        )
        answer = await self.via.ask(request)
        if answer.error is not None and answer.error.kind is ErrorKind.UNSUPPORTED_OPERATION:
            raise _Unsupported
        _ok(answer, "alter via rosetta")
        got = _ok(
            await self.via.ask(self.request(Operation.GET, filters=Filters(ids=[target]))),
            "get via rosetta",
        )
        assert got.session is not None
        ours = got.session.extras.get("maxscale")
        parameters = ours.get("parameters") if isinstance(ours, dict) else None
        _check(
            isinstance(parameters, dict) and parameters.get("matrix_mark") == self.row.index,
            f"alter answered success but the parameter is not kept: {parameters}",
        )

    async def login_logout(self) -> None:
        password = UpstreamCredentials(user=ADMIN, password=PASSWORD)
        login_client = row_client(self.row, self.column.rosetta.url, password)
        self._clients.append(login_client)
        login = _ok(await login_client.ask(self.request(Operation.LOGIN)), "login via rosetta")
        _check(bool(login.token), "login gave no token")
        assert login.token is not None
        holder = row_client(
            self.row, self.column.rosetta.url, UpstreamCredentials(token=login.token)
        )
        self._clients.append(holder)
        _ok(await holder.ask(self.request(Operation.LIST)), "list with the login token")
        if Operation.LOGOUT not in self.operations:
            return
        _ok(await holder.ask(self.request(Operation.LOGOUT)), "logout")
        after = await holder.ask(self.request(Operation.LIST))
        _check(
            after.error is not None and after.error.kind is ErrorKind.UNAUTHENTICATED,
            f"list after logout: {_kind(after)}, expected unauthenticated",
        )


def _for(request: CanonicalRequest, dialect: str) -> CanonicalRequest:
    return CanonicalRequest(
        request.operation,
        dialect,
        filters=request.filters,
        offset=request.offset,
        limit=request.limit,
        settings=dict(request.settings),
    )


def _by_id(item: dict[str, Any]) -> str:
    return str(item["id"]).zfill(12)


def _kind(response: CanonicalResponse) -> str:
    return "success" if response.error is None else response.error.kind.value
