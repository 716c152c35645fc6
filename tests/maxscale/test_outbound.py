"""Outbound decoding of MaxScale replies: status codes to canonical kinds, garbage to
upstream_error, and both formats' bodies to canonical records; plus option validation."""

from __future__ import annotations

import pytest

from translators.contract import (
    CanonicalRequest,
    ErrorKind,
    Filters,
    HttpResponse,
    Operation,
    RosettaError,
)
from translators.maxscale import MaxScaleTranslator

TRANSLATOR = MaxScaleTranslator()
GET_ONE = CanonicalRequest(Operation.GET, "rosetta", filters=Filters(ids=["1"]))


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ErrorKind.BAD_REQUEST),
        (401, ErrorKind.UNAUTHENTICATED),
        (403, ErrorKind.FORBIDDEN),
        (404, ErrorKind.NOT_FOUND),
        (500, ErrorKind.UPSTREAM_ERROR),
        (502, ErrorKind.UPSTREAM_ERROR),
        (503, ErrorKind.UPSTREAM_UNAVAILABLE),
        (504, ErrorKind.UPSTREAM_TIMEOUT),
    ],
)
def test_statuses_map_to_kinds(status: int, kind: ErrorKind) -> None:
    reply = HttpResponse(status, [], b'{"errors":[{"detail":"nope"}]}')
    with pytest.raises(RosettaError) as caught:
        TRANSLATOR.decode_response(reply, GET_ONE)
    assert caught.value.kind is kind and caught.value.native_code == status
    assert caught.value.message == "nope"


def test_empty_404_and_draft_error_bodies() -> None:
    with pytest.raises(RosettaError) as caught:
        TRANSLATOR.decode_response(HttpResponse(404, [], b""), GET_ONE)
    assert caught.value.kind is ErrorKind.NOT_FOUND
    draft = HttpResponse(403, [], b'{"error":"Forbidden","description":"read-only"}')
    with pytest.raises(RosettaError) as caught:
        TRANSLATOR.decode_response(draft, GET_ONE)
    assert caught.value.kind is ErrorKind.FORBIDDEN and caught.value.message == "read-only"


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"[1,2]", b'{"data": 3}', b"{}"])
def test_garbage_is_upstream_error(body: bytes) -> None:
    with pytest.raises(RosettaError) as caught:
        TRANSLATOR.decode_response(HttpResponse(200, [], body), GET_ONE)
    assert caught.value.kind is ErrorKind.UPSTREAM_ERROR


def test_both_formats_decode_to_the_same_record() -> None:
    draft = (
        b'{"id":1,"state":"Session ready for routing","user":"jdoe","address":"192.168.0.200",'
        b'"service":"/services/my-service","connected":"Wed Aug 31 03:03:12 2016","idle":260}'
    )
    jsonapi = (
        b'{"data":{"id":"1","type":"sessions","attributes":{"state":"Session ready for routing",'
        b'"user":"jdoe","remote":"192.168.0.200","connected":"Wed, 31 Aug 2016 03:03:12 GMT",'
        b'"idle":260},"relationships":{"services":{"data":[{"id":"my-service",'
        b'"type":"services"}]}}}}'
    )
    one = TRANSLATOR.decode_response(HttpResponse(200, [], draft), GET_ONE).session
    two = TRANSLATOR.decode_response(HttpResponse(200, [], jsonapi), GET_ONE).session
    assert one is not None and two is not None
    assert (one.id, one.user, one.client_address, one.service, one.connected_at) == (
        two.id,
        two.user,
        two.client_address,
        two.service,
        two.connected_at,
    )
    assert one.idle_seconds == two.idle_seconds == 260


@pytest.mark.parametrize("options", [{"format": "xml"}, {"auth": "digest"}, {"formats": "draft"}])
def test_bad_options_are_rejected(options: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        MaxScaleTranslator(options)
