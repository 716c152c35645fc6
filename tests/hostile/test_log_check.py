"""The hostile harness's log check itself: it flags failures by what a log line reports, not
by text a caller can put in a path."""

from __future__ import annotations

from typing import Any, cast

import orjson
import pytest

from tests.hostile.harness import assert_clean_log
from tests.support.servers import ServerProcess


class _Logged:
    def __init__(self, *lines: str) -> None:
        self.text = "\n".join(lines) + "\n"

    def logs(self) -> str:
        return self.text


def _check(*lines: str) -> None:
    assert_clean_log(cast(ServerProcess, _Logged(*lines)))


def _line(**fields: Any) -> str:
    return orjson.dumps(fields).decode()


def test_a_hostile_path_that_spells_an_alarm_is_not_one() -> None:
    _check(
        _line(event="request", level="info", route="/v3/backend_failure/Traceback/x"),
        _line(event="request", level="info", route='/api/"level": "error"'),
        "INFO:     Started server process [1]",
    )


@pytest.mark.parametrize(
    "line",
    [
        _line(event="decode_failure", level="error", dialect="geminidb"),
        _line(event="backend_failure", level="info"),
        _line(event="something", level="critical"),
        _line(event="request", level="info", exception="Traceback (most recent call last): ..."),
        "Traceback (most recent call last):",
        "ERROR:    Exception in ASGI application",
    ],
)
def test_a_reported_failure_is_flagged(line: str) -> None:
    with pytest.raises(AssertionError):
        _check(_line(event="request", level="info", route="/api"), line)
