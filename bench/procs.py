"""Process plumbing for the benchmark: free loopback ports, servers started in the
foreground and stopped by their own pid, readiness polling, process trees and their memory
(``VmHWM`` / ``VmRSS`` from ``/proc``), and ``wrk`` runs with their output parsed."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

STARTUP_SECONDS = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """One request with the standard library; HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Server:
    """A server process running in the foreground; ``pids()`` is its whole process tree."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    stop_signal: int = signal.SIGTERM

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def pids(self) -> list[int]:
        return process_tree(self.process.pid)

    def memory(self) -> Memory:
        return memory_of(self.pids())

    def cpu_seconds(self) -> float:
        return cpu_seconds_of(self.pids())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_server(
    name: str,
    command: list[str],
    port: int,
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    ready_path: str | None = "/healthz",
    stop_signal: int = signal.SIGTERM,
    cwd: Path | None = None,
) -> Server:
    """Start ``command`` and wait until ``ready_path`` answers 200 (or the port accepts a
    connection when ``ready_path`` is None)."""
    log_file = log_path.open("ab")
    process = subprocess.Popen(
        command,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    log_file.close()
    server = Server(name, process, port, log_path, stop_signal)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{server.log_tail()}")
        try:
            if ready_path is None:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return server
            elif http("GET", server.url + ready_path)[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} did not become ready in {STARTUP_SECONDS}s:\n{server.log_tail()}")


# process trees and memory ----------------------------------------------------------------------
def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants that are alive now."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent_of(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        if Path(f"/proc/{pid}").exists():
            found.append(pid)
        queue.extend(children.get(pid, []))
    return sorted(found)


@dataclass
class Memory:
    """Summed over a process tree, in MiB: ``peak`` from VmHWM, ``current`` from VmRSS."""

    peak_mb: float = 0.0
    current_mb: float = 0.0
    processes: int = 0
    per_process_peak_mb: list[float] = field(default_factory=list)


def memory_of(pids: list[int]) -> Memory:
    memory = Memory()
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        values = dict(re.findall(r"^(VmHWM|VmRSS):\s+(\d+) kB", status, re.MULTILINE))
        if not values:
            continue  # a zombie or a kernel thread
        peak = int(values.get("VmHWM", 0)) / 1024
        memory.peak_mb += peak
        memory.current_mb += int(values.get("VmRSS", 0)) / 1024
        memory.processes += 1
        memory.per_process_peak_mb.append(round(peak, 1))
    memory.peak_mb = round(memory.peak_mb, 1)
    memory.current_mb = round(memory.current_mb, 1)
    return memory


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds_of(pids: list[int]) -> float:
    """User + system CPU seconds used so far, summed over ``pids`` (``/proc/<pid>/stat``).
    Time the machine gave to other processes is not in it, so CPU per request stays
    comparable between runs when throughput does not."""
    ticks = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()  # after "pid (comm)": state is field 3
        ticks += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15
    return ticks / _CLOCK_TICKS


# wrk -------------------------------------------------------------------------------------------
_UNITS_US = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0, "m": 60_000_000.0, "h": 3_600_000_000.0}
_TIME = r"([\d.]+)(us|ms|s|m|h)"


@dataclass
class WrkTarget:
    """What wrk sends: a URL, an optional Lua script with its arguments, extra headers."""

    url: str
    script: Path | None = None
    script_args: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)


@dataclass
class WrkResult:
    connections: int
    requests: int
    seconds: float
    rps: float
    p50_us: float
    p75_us: float
    p90_us: float
    p99_us: float
    non_2xx: int
    socket_errors: int
    timeouts: int


def _to_us(value: str, unit: str) -> float:
    return round(float(value) * _UNITS_US[unit], 1)


def parse_wrk(output: str, connections: int) -> WrkResult:
    """Parse ``wrk --latency`` output; raises ValueError when a number is missing."""

    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise ValueError(f"wrk output has no match for {pattern!r}:\n{output}")
        return match

    percentiles = {}
    for pct in (50, 75, 90, 99):
        m = find(rf"^\s*{pct}(?:\.0+)?%\s+{_TIME}")
        percentiles[pct] = _to_us(m.group(1), m.group(2))
    total = find(rf"(\d+) requests in {_TIME}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    socket_errors = sum(int(g) for g in errors.groups()[:3]) if errors else 0
    return WrkResult(
        connections=connections,
        requests=int(total.group(1)),
        seconds=_to_us(total.group(2), total.group(3)) / 1_000_000,
        rps=float(find(r"Requests/sec:\s+([\d.]+)").group(1)),
        p50_us=percentiles[50],
        p75_us=percentiles[75],
        p90_us=percentiles[90],
        p99_us=percentiles[99],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=socket_errors,
        timeouts=int(errors.group(4)) if errors else 0,
    )


def run_wrk(
    target: WrkTarget, connections: int, seconds: int, *, threads: int = 1, timeout: str = "10s"
) -> WrkResult:
    command = [
        "wrk",
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={timeout}",
        "--latency",
    ]
    for header in target.headers:
        command += ["-H", header]
    if target.script is not None:
        command += ["-s", str(target.script)]
    command.append(target.url)
    if target.script_args:
        command += ["--", *target.script_args]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout, connections)


def tool_version(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not installed"
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else "unknown"
