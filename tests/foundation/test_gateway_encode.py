"""The gateway's last line of defence: a translator whose encoder fails still answers the
caller in the caller's own envelope, and a normal answer passes through untouched."""

from __future__ import annotations

from typing import Any

from proxy.gateway import Gateway
from proxy.router import Router
from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    HttpRequest,
    HttpResponse,
    Operation,
)
from translators.rosetta import RosettaTranslator


class BrokenOnData(RosettaTranslator):
    """Renders errors like the rosetta dialect but fails on any successful answer."""

    def encode_response(
        self, response: CanonicalResponse, request: CanonicalRequest | None, http: HttpRequest
    ) -> HttpResponse:
        if response.error is None:
            raise ValueError("cannot render this")
        return super().encode_response(response, request, http)


def gateway() -> Gateway:
    return Gateway(Router[Any](), max_body=1024)


def test_a_normal_answer_is_rendered_once() -> None:
    request = CanonicalRequest(Operation.LIST, dialect="rosetta")
    rendered = gateway()._encode(
        RosettaTranslator(),
        CanonicalResponse(Operation.LIST, total=0),
        request,
        HttpRequest("POST", "/"),
    )
    assert rendered.status == 200 and b'"total":0' in rendered.body


def test_an_encoder_failure_is_an_internal_error_in_the_callers_envelope() -> None:
    request = CanonicalRequest(Operation.LIST, dialect="rosetta")
    rendered = gateway()._encode(
        BrokenOnData(),
        CanonicalResponse(Operation.LIST, total=0),
        request,
        HttpRequest("POST", "/"),
    )
    assert rendered.status == 500
    assert b'"kind":"internal"' in rendered.body and b"cannot render" not in rendered.body
