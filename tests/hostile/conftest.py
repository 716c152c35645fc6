"""Prints how many hostile requests were sent per dialect at the end of the run."""

from __future__ import annotations

import pytest

from tests.hostile.harness import tally_lines

DIALECTS = ("faircom", "blobcity", "maxscale", "geminidb", "jump", "rosetta")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = tally_lines(DIALECTS)
    if lines:
        terminalreporter.section("hostile input: requests sent per dialect")
        for line in lines:
            terminalreporter.write_line(line)
