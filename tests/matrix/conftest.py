"""Fixtures of the conformance matrix: the processes (started once for the module), and the
table of results, printed at the end of the run and kept in ``docs/matrix.md``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.matrix.cells import CellReport
from tests.matrix.cluster import BACKENDS, ROWS, Cluster, start_cluster
from tests.matrix.table import render_table

REPORTS: dict[tuple[str, str], CellReport] = {}
EXPECTED_CELLS = len(ROWS) * len(BACKENDS)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = start_cluster(tmp_path_factory.mktemp("matrix"))
    yield started
    started.stop()


@pytest.fixture(scope="session")
def reports() -> dict[tuple[str, str], CellReport]:
    return REPORTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORTS:
        return
    terminalreporter.section("conformance matrix (rows: inbound, columns: upstream)")
    table = render_table(REPORTS)
    terminalreporter.write_line(table)
    docs = Path(__file__).parents[2] / "docs" / "matrix.md"
    if len(REPORTS) == EXPECTED_CELLS and docs.exists():
        state = "up to date" if table in docs.read_text(encoding="utf-8") else "OUT OF DATE"
        terminalreporter.write_line(f"docs/matrix.md: {state}")
