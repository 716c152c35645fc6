"""The serving garbage-collector settings (proxy.gctune): what `rosetta serve` applies once
the app is built, and the scoped form the translator micro-benchmark measures under. Run in
a child process, since they change the interpreter's collector for good."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import gc
from proxy.gctune import THRESHOLDS, serving_gc, tune_for_serving
built = [{"n": i} for i in range(1000)]  # what start-up builds
before = gc.get_threshold()
with serving_gc():
    assert gc.get_threshold() == THRESHOLDS, gc.get_threshold()
    assert gc.get_freeze_count() >= len(built)  # start-up's objects: out of sight
assert gc.get_threshold() == before and gc.get_freeze_count() == 0  # as it was
tune_for_serving()
assert gc.get_threshold() == THRESHOLDS and gc.get_freeze_count() >= len(built)
print("ok")
"""


def test_serving_settings_apply_and_the_scoped_form_restores_the_defaults() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
