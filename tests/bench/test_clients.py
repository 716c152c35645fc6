"""``bench/clients.py`` runs end to end: each client fetches the benchmark's reply from the
nginx upstream and a CPU figure is printed for each. It never checks how fast anything is."""

from __future__ import annotations

import re

import pytest

from tests.bench.test_inprocess import _missing, run_module


@pytest.mark.skipif(
    bool(_missing()), reason=f"needs {', '.join(_missing())} (bench/setup installs them)"
)
def test_every_client_fetches_the_reply() -> None:
    done = run_module("bench.clients", "--requests", "40", "--rounds", "1")
    figures = dict(re.findall(r"^([a-z-]+) +([0-9.]+) us CPU per exchange$", done.stdout, re.M))
    assert set(figures) == {"httptools", "aiohttp", "aiohttp-tr", "httpx"}, done.stdout
    assert all(float(value) > 0 for value in figures.values())
