"""Password checks do not leave argon2's 19 MiB working memory resident in a worker."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import os
from proxy.allocator import release_large_buffers
from proxy.auth import password_hasher
def rss():
    status = open(f"/proc/{os.getpid()}/status").read()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024
print(release_large_buffers())
hasher = password_hasher()
encoded = hasher.hash("x")
before = rss()
for _ in range(5):
    hasher.verify(encoded, "x")
print(rss() - before)
"""


def test_argon2_buffers_are_returned_after_each_check() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    took_effect, grown = result.stdout.split()
    assert took_effect == "True"
    assert float(grown) < 5.0  # MB; a retained argon2 buffer alone is 19 MiB
