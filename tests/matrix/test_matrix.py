"""The conformance matrix: every inbound dialect against every backend, over real HTTP."""

from __future__ import annotations

import pytest

from tests.matrix.cells import Cell, CellReport
from tests.matrix.cluster import BACKENDS, ROWS, Cluster, Row


@pytest.mark.anyio
@pytest.mark.parametrize("column", BACKENDS)
@pytest.mark.parametrize("row", ROWS, ids=[r.name.replace(" ", "-") for r in ROWS])
async def test_cell(
    row: Row, column: str, cluster: Cluster, reports: dict[tuple[str, str], CellReport]
) -> None:
    cell = Cell(row, cluster.columns[column])
    try:
        report = await cell.run()
    finally:
        await cell.close()
    reports[(row.name, column)] = report
    failures = "\n".join(f"{o.operation}: {o.detail}" for o in report.failures())
    assert not failures, failures
