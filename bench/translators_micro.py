"""Translator micro-benchmark: for each installed dialect, the cost of turning a 100-session
list reply in that dialect into canonical form (``decode_response``, the outbound side) and
back into the dialect's envelope (``encode_response``, the inbound side), against
``orjson.loads`` + ``orjson.dumps`` of the same bytes. The issue's target is a ratio <= 3.

The dialect's reply is produced by its own ``encode_response`` from the canonical sessions of
``bench/payloads.py``, for the list request its ``decode_request`` makes of a typical caller
request (a bare canonical list request when there is no sample for the dialect). Dialects
whose translator is still a placeholder are skipped with a note. Both sides are timed with
the garbage collector set as ``rosetta serve`` sets it (``proxy.gctune``): the translators'
cost as the server pays it.

A dialect may keep the rows of a reply undecoded and send them on unchanged to a caller of
the same dialect (``translators/session_rows.py``), so "both" is the cost of proxying a list
within one dialect. The "records" column is the cost when a caller's dialect needs every
session as a whole record: ``decode_response`` plus reading each session.

``python bench/translators_micro.py [--iterations N] [--json FILE]``"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # also runnable as a script

import orjson  # noqa: E402

from bench import payloads  # noqa: E402
from proxy.gctune import serving_gc  # noqa: E402
from proxy.router import Router  # noqa: E402
from translators.codec import session_from_json  # noqa: E402
from translators.contract import (  # noqa: E402
    CanonicalRequest,
    CanonicalResponse,
    HttpRequest,
    HttpResponse,
    Operation,
    RosettaError,
    SessionRecord,
    Translator,
)
from translators.registry import available  # noqa: E402

TARGET_RATIO = 3.0
ROUNDS = 5
_GEMINIDB_PATH = f"/v3/{payloads.PROJECT_ID}/instances/{payloads.INSTANCE_ID}/sessions"
# (method, path, headers, body) of a typical list-sessions request per dialect
SAMPLE_REQUESTS: dict[str, tuple[str, str, dict[str, str], bytes]] = {
    "rosetta": ("POST", "/rosetta/v1/session.list", {"content-type": "application/json"}, b"{}"),
    "faircom": (
        "POST",
        "/api",
        {"content-type": "application/json"},
        b'{"api":"admin","action":"listSessions","params":{},"authToken":"t","requestId":1}',
    ),
    "geminidb": ("GET", _GEMINIDB_PATH, {"x-auth-token": "t"}, b""),
    "maxscale": ("GET", "/v1/sessions", {"authorization": "Basic YWRtaW46cHc="}, b""),
}


def placeholder_reason(cls: type[Translator], *, inbound: bool, outbound: bool) -> str | None:
    """Why a translator class cannot play a side yet (it is a placeholder), or None."""
    if inbound and cls.decode_request is Translator.decode_request:
        return f"translators/{cls.name}: no inbound side yet (placeholder)"
    if outbound:
        composes = cls.call_upstream is not Translator.call_upstream
        round_trip = (
            cls.encode_request is not Translator.encode_request
            and cls.decode_response is not Translator.decode_response
        )
        if not (composes or round_trip):
            return f"translators/{cls.name}: no outbound side yet (placeholder)"
    return None


def _best(action: Callable[[], object], iterations: int) -> float:
    """Best mean CPU time of one call in microseconds over ``ROUNDS`` rounds: the time this
    process spent, so other processes on the machine do not count, as they do in wall-clock
    time (this machine's runs put the same dialect 10% - 20% apart by wall clock)."""
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.process_time()
        for _ in range(iterations):
            action()
        best = min(best, (time.process_time() - started) / iterations)
    return round(best * 1_000_000, 2)


def list_request(
    cls: type[Translator], translator: Translator
) -> tuple[HttpRequest, CanonicalRequest]:
    """A typical caller's list request in the dialect (``SAMPLE_REQUESTS``) and the canonical
    request its translator decodes from it; a bare canonical list request where there is no
    sample."""
    name = cls.name
    method, path, headers, body = SAMPLE_REQUESTS.get(name, ("GET", "/", {}, b""))
    http = HttpRequest(method, path, headers=dict(headers), body=body, client="127.0.0.1:50000")
    router: Router[str] = Router()
    for route in cls.routes:
        router.add(route.path, route.methods, name, route.name)
    match = router.match(method, path)
    if match is not None and name in SAMPLE_REQUESTS:
        http.path_params = match.params
        try:
            request = translator.decode_request(http)
            if request.operation is Operation.LIST:
                return http, request
        except RosettaError:
            pass
    return http, CanonicalRequest(Operation.LIST, name)


def measure(cls: type[Translator], iterations: int) -> dict[str, Any]:
    reason = placeholder_reason(cls, inbound=True, outbound=True)
    if reason:
        return {"status": "skipped", "reason": reason}
    try:
        translator = cls({})
    except (ValueError, TypeError, RosettaError) as exc:
        return {"status": "skipped", "reason": f"cannot build with no options: {exc}"}
    http, request = list_request(cls, translator)
    sessions = [session_from_json(s) for s in payloads.canonical_sessions()]
    canonical = CanonicalResponse(Operation.LIST, sessions=sessions, total=len(sessions))
    rendered = translator.encode_response(canonical, request, http)
    if rendered.status >= 400:
        return {"status": "failed", "reason": f"encode_response answered HTTP {rendered.status}"}
    reply = HttpResponse(rendered.status, list(rendered.headers), rendered.body)

    def decode() -> CanonicalResponse:
        return translator.decode_response(reply, request)

    try:
        decoded = decode()
    except RosettaError as exc:
        return {"status": "failed", "reason": f"decode_response of its own reply: {exc!r}"}
    if len(decoded.sessions or []) != len(sessions):
        return {
            "status": "failed",
            "reason": f"round trip kept {len(decoded.sessions or [])} of {len(sessions)} sessions",
        }

    def encode() -> HttpResponse:
        return translator.encode_response(decoded, request, http)

    def records() -> list[SessionRecord]:
        return list(decode().sessions or [])

    def both() -> HttpResponse:
        return translator.encode_response(decode(), request, http)

    def baseline() -> bytes:
        return orjson.dumps(orjson.loads(reply.body))

    translator_us = _best(both, iterations)
    orjson_us = _best(baseline, iterations)
    return {
        "status": "ok",
        "payload_bytes": len(reply.body),
        "decode_us": _best(decode, iterations),
        "encode_us": _best(encode, iterations),
        "records_us": _best(records, iterations),
        "translator_us": translator_us,
        "orjson_us": orjson_us,
        "ratio": round(translator_us / orjson_us, 2),
        "target_ratio": TARGET_RATIO,
    }


def run(iterations: int = 200) -> dict[str, Any]:
    with serving_gc():  # the collector as `rosetta serve` sets it (proxy/gctune.py)
        results = {name: measure(cls, iterations) for name, cls in sorted(available().items())}
    return {"status": "ok", "iterations": iterations, "rounds": ROUNDS, "dialects": results}


def table(report: dict[str, Any]) -> list[str]:
    if report.get("status") != "ok":
        return [f"translator micro-benchmark: {report.get('status')}"]
    lines = [
        "translator micro-benchmark: decode_response + encode_response of a 100-session list "
        f"vs orjson loads+dumps (target <= {TARGET_RATIO:.0f}x)",
        f"  {'dialect':<10} {'bytes':>7} {'decode':>9} {'encode':>9} {'both':>9} "
        f"{'orjson':>9} {'ratio':>7} {'records':>9}",
    ]
    for name, r in report["dialects"].items():
        if r["status"] != "ok":
            lines.append(f"  {name:<10} {r['status']}: {r['reason']}")
            continue
        lines.append(
            f"  {name:<10} {r['payload_bytes']:>7} {r['decode_us']:>7.1f}us "
            f"{r['encode_us']:>7.1f}us {r['translator_us']:>7.1f}us "
            f"{r['orjson_us']:>7.1f}us {r['ratio']:>6.1f}x {r['records_us']:>7.1f}us"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report = run(args.iterations)
    print("\n".join(table(report)))
    if args.json:
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
