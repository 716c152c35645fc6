"""A serving worker freezes what start-up built and collects its young objects less often,
and still frees reference cycles made while serving."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import gc, os, weakref
from proxy.settings import parse_settings
from proxy.worker import RESOLVED_SETTINGS_ENV, app_from_environment
from tests.conftest import base_config
os.environ[RESOLVED_SETTINGS_ENV] = parse_settings(base_config(), "<test>").model_dump_json()
app_from_environment()
print(gc.get_threshold(), gc.get_freeze_count())
class Node:
    pass
freed = []
for _ in range(50):
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: reference counting alone never frees it
    weakref.finalize(a, freed.append, 1)
    del a, b
live = [[] for _ in range(30_000)]  # what requests in flight hold at once
print(len(freed))
"""


def test_a_worker_tunes_its_collector_and_still_frees_cycles() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    first, freed = result.stdout.splitlines()[-2:]
    thresholds, frozen = first.rsplit(" ", 1)
    assert thresholds == "(10000, 50, 100)"
    assert int(frozen) > 10_000  # start-up's objects: modules, settings, translators
    assert int(freed) == 50  # cycles made while serving are collected as before
