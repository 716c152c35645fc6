"""``bench/inprocess.py`` runs end to end: both apps answer the benchmark's request against the
nginx upstream and a CPU figure is printed for each. It never checks how fast anything is."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _missing() -> list[str]:
    missing = []
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        missing.append("nginx")
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        missing.append("aiohttp (pip)")
    return missing


def run_module(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m module args...`` from the repository root; fails the test if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.skipif(
    bool(_missing()), reason=f"needs {', '.join(_missing())} (bench/setup installs them)"
)
def test_inprocess_run_measures_both_apps() -> None:
    done = run_module("bench.inprocess", "--requests", "80", "--rounds", "1")
    figures = dict(
        re.findall(r"^(rosetta|handwritten) +([0-9.]+) us CPU per request$", done.stdout, re.M)
    )
    assert set(figures) == {"rosetta", "handwritten"}, done.stdout
    assert all(float(value) > 0 for value in figures.values())
    assert "rosetta / handwritten:" in done.stdout
