"""The matrix table in Markdown: rows inbound dialects, columns upstream backends."""

from __future__ import annotations

from tests.matrix.cells import CellReport
from tests.matrix.cluster import BACKENDS, ROWS


def render_table(reports: dict[tuple[str, str], CellReport]) -> str:
    header = "| inbound \\ upstream | " + " | ".join(BACKENDS) + " |"
    lines = [header, "|" + "---|" * (len(BACKENDS) + 1)]
    for row in ROWS:
        cells = []
        for column in BACKENDS:
            report = reports.get((row.name, column))
            cells.append(report.summary if report is not None else "—")
        lines.append(f"| {row.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_details(reports: dict[tuple[str, str], CellReport]) -> str:
    """Per cell, each operation's outcome (and why, for a failure)."""
    lines = []
    for row in ROWS:
        for column in BACKENDS:
            report = reports.get((row.name, column))
            if report is None:
                continue
            parts = ", ".join(f"{o.operation}: {o.result}" for o in report.outcomes)
            lines.append(f"- **{row.name} → {column}**: {parts}")
            lines.extend(f"  - {o.operation}: {o.detail}" for o in report.failures())
    return "\n".join(lines)
