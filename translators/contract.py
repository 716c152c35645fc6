"""The canonical contract: operations, session records, requests, responses, errors and the
translator interface. Every translator and backend speaks these types; this module imports
nothing from the rest of Rosetta.

Data flow::

    HttpRequest --decode_request--> CanonicalRequest --backend--> CanonicalResponse
        --encode_response--> HttpResponse                     (inbound, the caller's dialect)

    CanonicalRequest --encode_request--> HttpRequest --upstream--> HttpResponse
        --decode_response--> CanonicalResponse                (outbound, the upstream's dialect)

Error kinds (``ErrorKind``) are the only errors that cross the boundary between a translator
and the rest of Rosetta; each translator renders every kind in its own envelope.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol
from urllib.parse import parse_qsl


class Operation(StrEnum):
    """What a request asks of the session backend."""

    LOGIN = "session.login"
    LOGOUT = "session.logout"
    PING = "session.ping"
    LIST = "session.list"
    GET = "session.get"
    CONNECTIONS = "session.connections"
    KILL = "session.kill"
    KILL_ALL = "session.kill_all"
    ALTER = "session.alter"


class ErrorKind(StrEnum):
    """The fixed set of failures every dialect can express."""

    BAD_REQUEST = "bad_request"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    UNSUPPORTED_OPERATION = "unsupported_operation"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    OVERLOADED = "overloaded"  # rate limit or concurrency cap: try again later
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    UPSTREAM_TIMEOUT = "upstream_timeout"
    UPSTREAM_ERROR = "upstream_error"
    INTERNAL = "internal"


class RosettaError(Exception):
    """A canonical failure. ``native_code`` is the upstream's own code when there is one.

    ``context`` lets a translator keep what it had already parsed when decoding failed (for
    example a request id to echo) so that its own ``encode_response`` can use it.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        native_code: str | int | None = None,
        request_id: Any = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.native_code = native_code
        self.request_id = request_id
        self.context: dict[str, Any] = dict(context or {})

    def __repr__(self) -> str:
        return f"RosettaError({self.kind.value!r}, {self.message!r})"


class PrincipalKind(StrEnum):
    """How a caller proved (or did not prove) who it is."""

    ANONYMOUS = "anonymous"
    PASSWORD = "password"  # user + password, in any dialect's carrier
    BEARER = "bearer"  # an opaque or JWT bearer token (MaxScale JWT, static token)
    SESSION = "session"  # a session token issued by a login (FairCom authToken, JUMP cookie)
    SIGNATURE = "signature"  # an access-key request signature (GeminiDB AK/SK)


@dataclass(slots=True, frozen=True)
class Signature:
    """A request signature as the caller sent it; verified against configured key pairs."""

    scheme: str
    access_key: str
    signature: str
    string_to_sign: str
    signed_at: datetime


@dataclass(slots=True)
class Principal:
    """The caller's credentials in canonical form. Secrets never appear in ``repr``."""

    kind: PrincipalKind = PrincipalKind.ANONYMOUS
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    signature: Signature | None = field(default=None, repr=False)
    project_id: str | None = None


@dataclass(slots=True)
class Connection:
    """One backend connection of a session, with traffic counters."""

    server: str = ""
    state: str = ""
    role: str = ""
    reads: int = 0
    writes: int = 0
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SessionRecord:
    """A session on a data server. ``extras`` is keyed by dialect name: each translator keeps
    what its dialect carries beyond these fields under ``extras[<its name>]``."""

    id: str
    user: str = ""
    client_address: str = ""
    service: str = ""
    database: str = ""
    state: str = ""
    connected_at: datetime | None = None
    idle_seconds: float = 0.0
    last_command: str = ""
    node_id: str = ""
    description: str = ""
    connections: list[Connection] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    def refreshed(
        self, idle_seconds: float, connections: list[Connection], extras: dict[str, Any]
    ) -> SessionRecord:
        """A copy with these live values: what ``dataclasses.replace`` gives, several times
        faster (a local list builds one per session per request)."""
        return SessionRecord(
            self.id, self.user, self.client_address, self.service, self.database, self.state,
            self.connected_at, idle_seconds, self.last_command, self.node_id, self.description,
            connections, extras,
        )  # fmt: skip


@dataclass(slots=True)
class Filters:
    """Which sessions a request is about. ``None`` means no restriction."""

    ids: list[str] | None = None
    users: list[str] | None = None
    node_id: str | None = None
    address_prefix: str | None = None


@dataclass(slots=True)
class CanonicalRequest:
    """One operation asked by one caller, independent of any dialect.

    ``settings`` holds login/alter parameters under canonical names (``description``,
    ``idle_timeout_seconds``, ``parameters``); ``extras[<dialect>]`` what the dialect carried
    beyond the canonical fields.
    """

    operation: Operation
    dialect: str
    request_id: Any = None
    principal: Principal = field(default_factory=Principal)
    filters: Filters = field(default_factory=Filters)
    fields: list[str] | None = None
    offset: int = 0
    limit: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    client_address: str = ""

    @property
    def target_id(self) -> str | None:
        """The one session a get/connections/kill/alter names, if it names exactly one."""
        ids = self.filters.ids
        return ids[0] if ids and len(ids) == 1 else None


@dataclass(slots=True)
class CallerInfo:
    """Who the caller is after authentication, and how long its session has left."""

    user: str
    session_id: str | None = None
    expires_in: float | None = None  # seconds; None = stateless or never expires


@dataclass(slots=True)
class CanonicalResponse:
    """The answer to a ``CanonicalRequest``; exactly one of the data fields or ``error``."""

    operation: Operation
    request_id: Any = None
    sessions: Sequence[SessionRecord] | None = None
    session: SessionRecord | None = None
    connections: list[Connection] | None = None
    token: str | None = field(default=None, repr=False)
    total: int | None = None
    affected: int | None = None
    elapsed_ms: float = 0.0
    caller: CallerInfo | None = None
    error: RosettaError | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class HttpRequest:
    """An HTTP request as translators see it: decoded once by the server, no framework types.

    Header names are lower case; repeated headers are joined with ``", "``.
    """

    method: str
    path: str
    query_string: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    scheme: str = "http"
    client: str = ""
    path_params: dict[str, str] = field(default_factory=dict)
    _query: list[tuple[str, str]] | None = field(default=None, repr=False)

    @property
    def query(self) -> list[tuple[str, str]]:
        """Query parameters in order, blank values kept."""
        if self._query is None:
            self._query = parse_qsl(self.query_string, keep_blank_values=True)
        return self._query

    def query_param(self, name: str) -> str | None:
        """The first value of a query parameter, or ``None``."""
        for key, value in self.query:
            if key == name:
                return value
        return None

    @property
    def host(self) -> str:
        return self.headers.get("host", "")

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower case."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


@dataclass(slots=True)
class HttpResponse:
    """An HTTP response: status, header pairs and a complete body."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None


@dataclass(slots=True, frozen=True)
class Route:
    """A path a translator serves. ``path`` uses ``{name}`` for one segment and a trailing
    ``{name:path}`` for the rest of the path."""

    path: str
    methods: tuple[str, ...] = ("POST",)
    name: str = ""


@dataclass(slots=True)
class UpstreamCredentials:
    """Credentials to present to an upstream, already chosen by the bridging policy."""

    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)


class UpstreamChannel(Protocol):
    """What an outbound translator gets to talk to its upstream for one canonical request."""

    @property
    def base_url(self) -> str: ...

    @property
    def options(self) -> Mapping[str, Any]: ...

    @property
    def credentials(self) -> UpstreamCredentials: ...

    @property
    def cache_key(self) -> str:
        """Identifies the caller for per-caller upstream state (cached tokens, cookies)."""
        ...

    async def send(self, request: HttpRequest) -> HttpResponse:
        """Send one request; transport failures raise ``RosettaError`` upstream_* kinds."""
        ...

    async def cached(self, name: str) -> str | None:
        """Per-caller upstream state kept between requests (a token, a cookie)."""
        ...

    async def remember(self, name: str, value: str | None) -> None: ...


ErrorTable = Mapping[ErrorKind, tuple[int, str | int]]
"""Per dialect: error kind -> (HTTP status, the dialect's code for it)."""


class Translator:
    """Base class of a dialect. Subclasses set ``name``, ``routes`` and ``error_table`` and
    implement the four conversions. Instances are built once at start-up with the dialect's
    options from config and must be safe to share between concurrent requests."""

    name: ClassVar[str] = ""
    routes: ClassVar[tuple[Route, ...]] = ()
    error_table: ClassVar[ErrorTable] = {}
    inbound_operations: ClassVar[frozenset[Operation]] = frozenset()
    """Operations a caller can express in this dialect."""
    outbound_operations: ClassVar[Mapping[Operation, str]] = {}
    """How an upstream of this dialect carries each operation: ``"native"`` (one request of
    its own) or ``"composed"`` (built by Rosetta from others, e.g. get from list). Missing
    operations are answered with unsupported_operation."""

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options: Mapping[str, Any] = dict(options or {})

    # inbound ------------------------------------------------------------------------------
    def decode_request(self, request: HttpRequest) -> CanonicalRequest:
        """Turn a caller's HTTP request into a canonical one; raise ``RosettaError``."""
        raise RosettaError(ErrorKind.UNSUPPORTED_OPERATION, f"{self.name} has no inbound side")

    def encode_response(
        self, response: CanonicalResponse, request: CanonicalRequest | None, http: HttpRequest
    ) -> HttpResponse:
        """Render a canonical response (or ``response.error``) in the caller's envelope.
        ``request`` is ``None`` when decoding failed. Must never raise."""
        raise NotImplementedError

    # outbound -----------------------------------------------------------------------------
    def encode_request(self, request: CanonicalRequest, upstream: UpstreamChannel) -> HttpRequest:
        """Build the upstream HTTP request for a canonical request."""
        raise RosettaError(
            ErrorKind.UNSUPPORTED_OPERATION,
            f"{self.name} upstream cannot express {request.operation.value}",
        )

    def decode_response(
        self, response: HttpResponse, request: CanonicalRequest
    ) -> CanonicalResponse:
        """Turn the upstream's HTTP response into a canonical one; raise ``RosettaError``."""
        raise RosettaError(ErrorKind.UPSTREAM_ERROR, f"{self.name} has no outbound side")

    async def call_upstream(
        self, request: CanonicalRequest, upstream: UpstreamChannel
    ) -> CanonicalResponse:
        """One canonical operation against an upstream of this dialect. The default is one
        round trip; dialects override it for logins, retries and composed operations."""
        http = self.encode_request(request, upstream)
        return self.decode_response(await upstream.send(http), request)


Handler = Callable[[CanonicalRequest], Awaitable[CanonicalResponse]]
"""A backend, or a backend wrapped in pipeline middleware."""
