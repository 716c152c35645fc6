"""The benchmark harness's own logic, without nginx or wrk: parsing wrk's output, the Rosetta
configurations it writes (valid for ``rosetta check``), the payload files, and placeholder
detection. Fast; runs everywhere."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bench import payloads
from bench.callers import CALLER_TOKEN, CheckFailed, FairComCaller, caller_for
from bench.procs import memory_of, parse_wrk, process_tree
from bench.run import Measurement, Row, compute_ratios, rosetta_config
from bench.translators_micro import placeholder_reason
from proxy.app import build_runtime
from proxy.cli import resolve_secrets
from proxy.settings import parse_settings
from translators.contract import Translator
from translators.registry import translator_class

WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:41234/api
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.21ms  302.11us   8.02ms   91.00%
    Req/Sec    26.10k     1.20k   27.90k    70.00%
  Latency Distribution
     50%  980.00us
     75%    1.10ms
     90%    1.43ms
     99%    2.50s
  26112 requests in 1.00s, 380.72MB read
  Socket errors: connect 0, read 2, write 1, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:  26089.55
Transfer/sec:    380.38MB
"""


def test_parse_wrk_reads_every_number_and_unit() -> None:
    result = parse_wrk(WRK_OUTPUT, 32)
    assert result.connections == 32
    assert result.requests == 26112
    assert result.seconds == pytest.approx(1.0)
    assert result.rps == pytest.approx(26089.55)
    assert result.p50_us == pytest.approx(980.0)
    assert result.p75_us == pytest.approx(1100.0)
    assert result.p90_us == pytest.approx(1430.0)
    assert result.p99_us == pytest.approx(2_500_000.0)
    assert (result.non_2xx, result.socket_errors, result.timeouts) == (7, 3, 3)


def test_parse_wrk_without_error_lines_counts_none() -> None:
    clean = "\n".join(
        line for line in WRK_OUTPUT.splitlines() if "errors" not in line and "Non-2xx" not in line
    )
    result = parse_wrk(clean, 32)
    assert (result.non_2xx, result.socket_errors, result.timeouts) == (0, 0, 0)


def test_parse_wrk_rejects_output_without_latency_distribution() -> None:
    with pytest.raises(ValueError, match="50"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n", 1)


@pytest.mark.parametrize(
    ("inbound", "upstream"),
    [
        ("faircom", "geminidb"),
        ("geminidb", "geminidb"),
        ("faircom", "local"),
        ("rosetta", "rosetta"),
    ],
)
def test_rosetta_configs_are_valid_and_build(tmp_path: Path, inbound: str, upstream: str) -> None:
    files = payloads.write_all(tmp_path)
    config = rosetta_config(
        inbound, upstream, "http://127.0.0.1:9", files[payloads.SESSIONS_FILE], "memory", 1, True
    )
    settings = resolve_secrets(parse_settings(config, "<bench>"), announce=False)
    build_runtime(settings)  # no network I/O; fails on anything a user's config would fail on
    if upstream == "geminidb":
        backend = config["backends"]["bench-upstream"]
        assert backend["options"] == {
            "project_id": payloads.PROJECT_ID,
            "instance_id": payloads.INSTANCE_ID,
        }
        assert backend["auth"]["mode"] == "static"
        assert backend["auth"]["token"]


def test_payloads_hold_the_same_hundred_sessions(tmp_path: Path) -> None:
    files = payloads.write_all(tmp_path)
    gemini = orjson.loads(files[payloads.GEMINIDB_FILE].read_bytes())
    canonical = orjson.loads(files[payloads.CANONICAL_FILE].read_bytes())
    gemini_ids = sorted(str(s["id"]) for n in gemini["node_sessions"] for s in n["sessions"])
    assert len(gemini_ids) == payloads.SESSION_COUNT
    assert sorted(s["id"] for s in canonical["sessions"]) == gemini_ids
    assert files[payloads.GEMINIDB_FILE].read_bytes() == orjson.dumps(
        payloads.geminidb_list_reply()
    )


def test_placeholder_detection_tells_complete_from_placeholder() -> None:
    class Inert(Translator):
        name = "inert"

    assert placeholder_reason(translator_class("rosetta"), inbound=True, outbound=True) is None
    assert "no inbound side" in str(placeholder_reason(Inert, inbound=True, outbound=False))
    assert "no outbound side" in str(placeholder_reason(Inert, inbound=False, outbound=True))


def test_every_caller_dialect_has_a_wrk_target() -> None:
    callers = [caller_for(d, rosetta_issues_tokens=True) for d in ("geminidb", "rosetta")]
    for caller in [*callers, FairComCaller(login=False)]:
        target = caller.target("http://127.0.0.1:1")
        assert target.url.startswith("http://127.0.0.1:1/")
        assert target.script is None or target.script.exists()


def test_a_logging_in_caller_has_no_wrk_target_before_its_check_logged_in() -> None:
    fixed = FairComCaller(login=False).target("http://127.0.0.1:1")
    assert orjson.loads(fixed.script_args[0])["authToken"] == CALLER_TOKEN
    with pytest.raises(CheckFailed, match="logs in first"):
        caller_for("faircom", rosetta_issues_tokens=True).target("http://127.0.0.1:1")
    with pytest.raises(ValueError, match="no jump caller"):
        caller_for("jump", rosetta_issues_tokens=True)


def test_ratios_compare_each_row_with_njs_and_handwritten() -> None:
    def row(row_id: str, rps: float, p50: float) -> Row:
        m = Measurement(1, rps, p50, p50, p50, p50, 1, 1.0, 0, 0, 0, 1.0, 1.0)
        return Row(row_id, row_id, "x", results={"1": m})

    rows = [row("direct", 1000, 50), row("nginx-njs", 400, 100), row("handwritten", 200, 300)]
    rows.append(row("rosetta-translated-w1", 100, 400))
    compute_ratios(rows, [1])
    assert rows[3].ratios["rps_vs_njs"] == {"1": 0.25}
    assert rows[3].ratios["rps_vs_handwritten"] == {"1": 0.5}
    assert rows[3].extra["added_p50_us_vs_direct"] == {"1": 350.0}


def test_process_memory_is_read_from_proc() -> None:
    import os

    pids = process_tree(os.getpid())
    assert os.getpid() in pids
    memory = memory_of([os.getpid()])
    assert memory.processes == 1
    assert memory.peak_mb >= memory.current_mb > 0
