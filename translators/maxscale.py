"""MariaDB MaxScale REST dialect (placeholder).

Claims the standard paths and answers every request with unsupported_operation until the
translator lands."""

from __future__ import annotations

from translators.codec import error_to_json
from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    HttpRequest,
    HttpResponse,
    Route,
    Translator,
)
from translators.wire import json_response


class MaxScaleTranslator(Translator):
    name = "maxscale"
    routes = (
        Route("/sessions", ("GET",), "draft"),
        Route("/sessions/{rest:path}", ("GET", "DELETE", "PATCH"), "draft"),
        Route("/v1/{rest:path}", ("GET", "DELETE", "PATCH", "POST"), "v1"),
    )

    def encode_response(
        self, response: CanonicalResponse, request: CanonicalRequest | None, http: HttpRequest
    ) -> HttpResponse:
        error = response.error
        return json_response(501, {"error": error_to_json(error) if error else None})
