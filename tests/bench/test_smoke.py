"""Runs ``make bench``'s harness in smoke mode (about 1 s per row, 1 connection) when nginx,
its njs module, wrk and aiohttp are installed; skipped with the reason otherwise. Checks
that it prints its table and writes valid JSON with every row, never how fast anything is."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
NJS_MODULE = Path("/usr/lib/nginx/modules/ngx_http_js_module.so")
BASELINE_ROWS = ["direct", "nginx-proxy", "nginx-njs", "handwritten", "naive"]
Smoke = tuple[subprocess.CompletedProcess[str], dict[str, Any]]
ROSETTA_ROWS = [
    f"rosetta-{kind}-w{workers}" for workers in (1, 2) for kind in ("translated", "same", "local")
]


def _missing() -> list[str]:
    missing = []
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        missing.append("nginx")
    if not NJS_MODULE.exists():
        missing.append("libnginx-mod-http-js")
    if not shutil.which("wrk"):
        missing.append("wrk")
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        missing.append("aiohttp (pip)")
    return missing


pytestmark = pytest.mark.skipif(
    bool(_missing()),
    reason=f"benchmark smoke run needs {', '.join(_missing())} (bench/setup installs them)",
)


@pytest.fixture(scope="module")
def smoke(
    tmp_path_factory: pytest.TempPathFactory,
) -> Smoke:
    out = tmp_path_factory.mktemp("bench") / "latest.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--smoke",
            "--memory-requests",
            "500",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert out.exists(), f"no JSON written\n{done.stdout}\n{done.stderr}"
    return done, orjson.loads(out.read_bytes())


def test_smoke_run_succeeds_and_prints_its_table(smoke: Smoke) -> None:
    done, report = smoke
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    for heading in ("req/s", "p50", "p99", "RSS MB", "vs njs", "vs hand"):
        assert heading in done.stdout
    for row in report["rows"]:
        assert row["label"] in done.stdout
    assert "translator micro-benchmark" in done.stdout
    assert "targets (ratios from this run)" in done.stdout


def test_smoke_json_has_every_row_measured_or_explained(smoke: Smoke) -> None:
    _done, report = smoke
    rows = {row["id"]: row for row in report["rows"]}
    assert list(rows) == BASELINE_ROWS + ROSETTA_ROWS
    assert report["meta"]["connections"] == [1]
    for row_id, row in rows.items():
        if row_id.endswith("-w2") and row["status"] == "skipped":
            assert row["reason"], row_id  # 2 workers need the Redis store; say why not
            continue
        assert row["status"] == "ok", (row_id, row["reason"])
        measured = row["results"]["1"]
        assert measured["requests"] > 0 and measured["rps"] > 0, row_id
        assert 0 < measured["p50_us"] <= measured["p99_us"], row_id
        assert measured["non_2xx"] == measured["socket_errors"] == measured["timeouts"] == 0
        assert measured["rss_peak_mb"] > 0, row_id
        assert row["sessions"] >= 100, row_id
        assert set(row["ratios"]) == {"rps_vs_njs", "rps_vs_handwritten"}
    assert rows["nginx-njs"]["ratios"]["rps_vs_njs"]["1"] == 1.0
    assert rows["handwritten"]["ratios"]["rps_vs_handwritten"]["1"] == 1.0
    # rows 3, 4 and 5 implement the same translation and must answer the same
    assert report["meta"]["answers_consistent"]["equal"] is True


def test_smoke_json_has_memory_check_and_micro_benchmark(smoke: Smoke) -> None:
    _done, report = smoke
    memory = report["memory"]
    assert memory["status"] == "ok", memory
    assert memory["end"]["requests"] >= memory["half"]["requests"] >= 250
    assert memory["end"]["rss_mb"] > 0
    micro = report["translators_micro"]["dialects"]
    assert micro["rosetta"]["status"] == "ok"
    for name, result in micro.items():
        assert result["status"] in ("ok", "skipped"), (name, result)
        if result["status"] == "ok":
            assert result["ratio"] > 0
            assert result["records_us"] > 0
