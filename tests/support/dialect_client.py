"""Drive any Rosetta-speaking server *as a client of a dialect*: the dialect's translator builds
the requests (its outbound side is a faithful client of that dialect, logins included) and
decodes the replies, over real HTTP. Used to ask the same canonical question in every dialect."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    HttpRequest,
    HttpResponse,
    RosettaError,
    UpstreamCredentials,
)
from translators.registry import translator_class


class HttpChannel:
    """An ``UpstreamChannel`` to ``base_url`` with fixed credentials and in-memory state."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        credentials: UpstreamCredentials,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._options = dict(options or {})
        self._state: dict[str, str] = {}
        self.sent: list[HttpRequest] = []

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def options(self) -> Mapping[str, Any]:
        return self._options

    @property
    def credentials(self) -> UpstreamCredentials:
        return self._credentials

    @property
    def cache_key(self) -> str:
        return "test-client"

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.sent.append(request)
        url = self._base_url + request.path
        if request.query_string:
            url += "?" + request.query_string
        reply = await self._client.request(
            request.method, url, headers=request.headers, content=request.body, timeout=30
        )
        return HttpResponse(reply.status_code, list(reply.headers.items()), reply.content)

    async def cached(self, name: str) -> str | None:
        return self._state.get(name)

    async def remember(self, name: str, value: str | None) -> None:
        if value is None:
            self._state.pop(name, None)
        else:
            self._state[name] = value


class DialectClient:
    """Ask canonical questions of a server in one dialect."""

    def __init__(
        self,
        dialect: str,
        base_url: str,
        credentials: UpstreamCredentials,
        options: Mapping[str, Any] | None = None,
        translator_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.dialect = dialect
        self.translator = translator_class(dialect)(translator_options)
        self._client = httpx.AsyncClient()
        self.channel = HttpChannel(self._client, base_url, credentials, options)

    async def ask(self, request: CanonicalRequest) -> CanonicalResponse:
        """The canonical answer; a ``RosettaError`` the server reported comes back as
        ``response.error`` so callers can compare failures too."""
        try:
            return await self.translator.call_upstream(request, self.channel)
        except RosettaError as error:
            return CanonicalResponse(request.operation, request.request_id, error=error)

    async def close(self) -> None:
        await self._client.aclose()
