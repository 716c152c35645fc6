"""Every installed dialect renders every canonical error kind in its own envelope: encoding
never raises, never produces HTML or a traceback, and distinct upstream kinds stay distinct."""

from __future__ import annotations

import pytest

from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    ErrorKind,
    HttpRequest,
    Operation,
    RosettaError,
)
from translators.registry import available

DIALECTS = sorted(available())


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("kind", list(ErrorKind))
@pytest.mark.parametrize("decoded", [True, False], ids=["decoded", "undecoded"])
def test_every_kind_renders_in_the_dialect_envelope(
    dialect: str, kind: ErrorKind, decoded: bool
) -> None:
    translator = available()[dialect]()
    request = CanonicalRequest(Operation.LIST, dialect=dialect) if decoded else None
    error = RosettaError(kind, f"{kind.value} happened")
    response = CanonicalResponse(Operation.LIST, error=error)
    http = HttpRequest("POST", translator.routes[0].path.split("{")[0] or "/")
    rendered = translator.encode_response(response, request, http)
    assert 200 <= rendered.status < 600
    assert rendered.status < 500 or kind in (
        ErrorKind.INTERNAL,
        ErrorKind.UPSTREAM_UNAVAILABLE,
        ErrorKind.UPSTREAM_TIMEOUT,
        ErrorKind.UPSTREAM_ERROR,
        ErrorKind.UNSUPPORTED_OPERATION,
    )
    body = rendered.body.lower()
    assert b"<html" not in body and b"traceback" not in body


@pytest.mark.parametrize("dialect", DIALECTS)
def test_upstream_kinds_are_distinguishable(dialect: str) -> None:
    translator = available()[dialect]()
    request = CanonicalRequest(Operation.LIST, dialect=dialect)
    http = HttpRequest("POST", translator.routes[0].path.split("{")[0] or "/")
    bodies = set()
    for kind in (
        ErrorKind.UPSTREAM_UNAVAILABLE,
        ErrorKind.UPSTREAM_TIMEOUT,
        ErrorKind.UPSTREAM_ERROR,
    ):
        error = RosettaError(kind, "upstream trouble")
        rendered = translator.encode_response(
            CanonicalResponse(Operation.LIST, error=error), request, http
        )
        bodies.add((rendered.status, rendered.body))
    assert len(bodies) == 3
