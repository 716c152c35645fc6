"""``make bench``: Rosetta against nginx and hand-written proxies, on loopback, in one run.

Starts an nginx serving a static GeminiDB list-sessions reply (100 sessions) and measures,
with wrk at each connection count, requests/s, p50, p99 and the peak RSS of each server
(VmHWM summed over its process tree):

  1 direct            wrk against the nginx upstream
  2 nginx-proxy       nginx proxy_pass in front of it
  3 nginx-njs         nginx + njs translating FairCom listSessions -> GeminiDB -> FairCom
  4 handwritten       starlette + aiohttp + orjson on uvicorn (uvloop, httptools)
  5 naive             starlette + httpx, standard json
  6 rosetta-*         Rosetta configured as a user would: translated pair, same-dialect pair,
                      local backend; with 1 worker and with 2 (Redis session store)

then the memory check (RSS after N/2 and N requests on a fresh Rosetta) and the translator
micro-benchmark. Prints a table with ratios against rows 3 and 4 and writes everything to
``bench/results/latest.json``. ``--smoke`` is the short CI variant. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))  # also runnable as `python bench/run.py`

import orjson  # noqa: E402
import yaml  # noqa: E402

from bench import payloads, translators_micro  # noqa: E402
from bench.callers import (  # noqa: E402
    ADMIN_PASSWORD,
    ADMIN_USER,
    CALLER_TOKEN,
    UPSTREAM_TOKEN,
    Answer,
    Caller,
    CheckFailed,
    FairComCaller,
    GeminiDbCaller,
    caller_for,
)
from bench.nginx import (  # noqa: E402
    NJS_MODULE,
    nginx_binary,
    njs_conf,
    proxy_conf,
    start_nginx,
    start_upstream,
)
from bench.procs import (  # noqa: E402
    Memory,
    Server,
    WrkResult,
    free_port,
    run_wrk,
    start_server,
    tool_version,
)
from translators.registry import UnknownDialectError, translator_class  # noqa: E402

DEFAULT_JSON = BENCH / "results" / "latest.json"
FALLBACK_PAIR = ("rosetta", "rosetta")
UPSTREAM_DIALECTS = ("geminidb", "rosetta")  # what the nginx upstream can serve
SESSION_SECRET = "bench-session-secret-0123456789abcdef"


# dialect pairs ---------------------------------------------------------------------------------
def placeholder_reason(dialect: str, *, inbound: bool, outbound: bool) -> str | None:
    """Why ``dialect`` cannot play its part yet (a placeholder translator), or None."""
    try:
        cls = translator_class(dialect)
    except UnknownDialectError as exc:
        return str(exc)
    return translators_micro.placeholder_reason(cls, inbound=inbound, outbound=outbound)


def parse_pair(text: str) -> tuple[str, str]:
    inbound, sep, upstream = text.partition(":")
    if not sep or not inbound or not upstream:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected INBOUND:UPSTREAM, e.g. faircom:geminidb"
        )
    return inbound, upstream


def resolve_pair(wanted: tuple[str, str], notes: list[str], label: str) -> tuple[str, str]:
    inbound, upstream = wanted
    if upstream != "local" and upstream not in UPSTREAM_DIALECTS:
        raise SystemExit(
            f"--{label}: the bench upstream serves only {', '.join(UPSTREAM_DIALECTS)}"
        )
    reasons = [
        r
        for r in (
            placeholder_reason(inbound, inbound=True, outbound=False),
            None
            if upstream == "local"
            else placeholder_reason(upstream, inbound=False, outbound=True),
        )
        if r
    ]
    if not reasons:
        return wanted
    fallback = (FALLBACK_PAIR[0], "local" if upstream == "local" else FALLBACK_PAIR[1])
    notes.append(
        f"{label}: {inbound} -> {upstream} not measurable yet ({'; '.join(reasons)}); "
        f"measuring {fallback[0]} -> {fallback[1]} instead"
    )
    return fallback


# Rosetta configuration -----------------------------------------------------------------------
def rosetta_config(
    inbound: str,
    upstream: str,
    upstream_url: str,
    sessions_file: Path,
    store: str,
    workers: int,
    access_log: bool,
) -> dict[str, Any]:
    """The YAML a user would write for this pair."""
    if upstream == "local":
        backends: dict[str, Any] = {
            "local": {
                "type": "local",
                "node_id": "rosetta-node-1",
                "sessions_file": str(sessions_file),
            }
        }
        default = "local"
    else:
        backend: dict[str, Any] = {
            "type": "upstream",
            "dialect": upstream,
            "url": upstream_url,
            "max_connections": 100,
            "auth": {"mode": "static", "token": UPSTREAM_TOKEN},
        }
        if upstream == "geminidb":
            backend["options"] = {
                "project_id": payloads.PROJECT_ID,
                "instance_id": payloads.INSTANCE_ID,
            }
        backends = {"bench-upstream": backend}
        default = "bench-upstream"
    return {
        "server": {"host": "127.0.0.1", "port": 0, "workers": workers},
        "inbound": {inbound: {}},
        "backends": backends,
        "default_backend": default,
        "sessions": {"store": store, "secret": SESSION_SECRET},
        "users": [{"name": ADMIN_USER, "password": ADMIN_PASSWORD, "role": "admin"}],
        "tokens": [{"token": CALLER_TOKEN, "user": ADMIN_USER}],
        "logging": {"format": "json", "level": "info", "access_log": access_log},
    }


def rosetta_command(config: Path, port: int, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "proxy",
        "serve",
        "--config",
        str(config),
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def redis_store_problem(workdir: Path, config: dict[str, Any]) -> str | None:
    """Whether this build of Rosetta accepts a redis:// session store (``rosetta check``)."""
    path = workdir / "redis-check.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [sys.executable, "-m", "proxy", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    if done.returncode == 0:
        return None
    lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"rosetta check exited {done.returncode}"


# rows --------------------------------------------------------------------------------------------
@dataclass
class Measurement:
    connections: int
    rps: float
    p50_us: float
    p99_us: float
    p75_us: float
    p90_us: float
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    timeouts: int
    rss_peak_mb: float
    rss_now_mb: float
    cpu_us_per_request: float = 0.0  # the server's CPU (all its processes) per request


@dataclass
class Row:
    id: str
    label: str
    group: str
    workers: int | None = None
    pair: str | None = None
    status: str = "pending"  # ok, skipped, failed
    reason: str | None = None
    sessions: int | None = None
    processes: int | None = None
    results: dict[str, Measurement] = field(default_factory=dict)
    ratios: dict[str, dict[str, float | None]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    """How to run one row: start its server (or reuse one), and what wrk sends."""

    row: Row
    start: Callable[[], Server] | None
    caller: Caller
    shared_server: Server | None = None
    skip: str | None = None


class Harness:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.connections: list[int] = args.connections
        self.notes: list[str] = []
        self.servers: list[Server] = []
        self.answers: dict[str, Answer] = {}
        keep = args.keep_workdir
        self.workdir = Path(tempfile.mkdtemp(prefix="rosetta-bench-"))
        self.workdir.chmod(0o755)
        self.keep_workdir = keep
        self.redis: Server | None = None

    # lifecycle -----------------------------------------------------------------------------
    def cleanup(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        if not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            print(f"work directory kept: {self.workdir}")

    def track(self, server: Server) -> Server:
        self.servers.append(server)
        return server

    def stop(self, server: Server) -> None:
        server.stop()
        if server in self.servers:
            self.servers.remove(server)

    # servers -------------------------------------------------------------------------------
    def python_proxy(self, name: str, module: str, upstream: Server) -> Server:
        port = free_port()
        env = {
            "BENCH_UPSTREAM": upstream.url,
            "BENCH_PROJECT_ID": payloads.PROJECT_ID,
            "BENCH_INSTANCE_ID": payloads.INSTANCE_ID,
            "BENCH_UPSTREAM_TOKEN": UPSTREAM_TOKEN,
            "BENCH_CALLER_TOKEN": CALLER_TOKEN,
        }
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            f"{module}:app",
            "--app-dir",
            str(BENCH / "proxies"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
            "--lifespan",
            "on",
        ]
        return start_server(name, command, port, self.workdir / f"{name}.log", env=env)

    def rosetta(
        self, name: str, inbound: str, upstream: str, upstream_url: str, workers: int, store: str
    ) -> Server:
        config = rosetta_config(
            inbound,
            upstream,
            upstream_url,
            self.workdir / "static" / payloads.SESSIONS_FILE,
            store,
            workers,
            not self.args.no_access_log,
        )
        path = self.workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        port = free_port()
        return start_server(
            name,
            rosetta_command(path, port, workers),
            port,
            self.workdir / f"{name}.log",
            env={"PYTHONUNBUFFERED": "1"},
            cwd=ROOT,
        )

    def start_redis(self) -> Server:
        port = free_port()
        command = [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--daemonize",
            "no",
        ]
        return start_server("redis", command, port, self.workdir / "redis.log", ready_path=None)

    # plans ---------------------------------------------------------------------------------
    def plans(self, upstream: Server) -> list[Plan]:
        args = self.args
        workers = args.nginx_workers
        plans: list[Plan] = []
        faircom_fixed = FairComCaller(login=False)

        plans.append(
            Plan(
                Row("direct", "1 direct: nginx static upstream", "baseline"),
                None,
                GeminiDbCaller(UPSTREAM_TOKEN),
                shared_server=upstream,
            )
        )

        def start_proxy() -> Server:
            port = free_port()
            conf = proxy_conf(self.workdir / "nginx-proxy", port, upstream.port, workers)
            return start_nginx("nginx-proxy", self.workdir, conf, port)

        plans.append(
            Plan(
                Row("nginx-proxy", "2 nginx proxy_pass", "baseline"),
                start_proxy,
                GeminiDbCaller(UPSTREAM_TOKEN),
            )
        )

        def start_njs() -> Server:
            port = free_port()
            conf = njs_conf(
                self.workdir / "nginx-njs",
                port,
                upstream.port,
                CALLER_TOKEN,
                UPSTREAM_TOKEN,
                workers,
            )
            return start_nginx("nginx-njs", self.workdir, conf, port)

        plans.append(
            Plan(
                Row("nginx-njs", "3 nginx + njs, faircom->geminidb", "baseline"),
                start_njs,
                faircom_fixed,
                skip=None if NJS_MODULE.exists() else f"njs module missing ({NJS_MODULE})",
            )
        )
        aiohttp_missing = None
        try:
            import aiohttp  # noqa: F401
        except ImportError:
            aiohttp_missing = "aiohttp is not installed in this Python (bench/setup installs it)"
        plans.append(
            Plan(
                Row("handwritten", "4 hand-written aiohttp+orjson", "baseline", workers=1),
                lambda: self.python_proxy("handwritten", "handwritten", upstream),
                faircom_fixed,
                skip=aiohttp_missing,
            )
        )
        plans.append(
            Plan(
                Row("naive", "5 naive starlette+httpx", "baseline", workers=1),
                lambda: self.python_proxy("naive", "naive", upstream),
                faircom_fixed,
            )
        )

        pairs = {
            "translated": resolve_pair(args.translated, self.notes, "translated"),
            "same": resolve_pair(args.same, self.notes, "same"),
            "local": resolve_pair((args.local, "local"), self.notes, "local"),
        }
        names = {"translated": "6a", "same": "6b", "local": "6c"}
        redis_problem: str | None = None
        if 2 in args.rosetta_workers:
            inbound, upstream_dialect = pairs["translated"]
            probe = rosetta_config(
                inbound,
                upstream_dialect,
                upstream.url,
                self.workdir / "x.json",
                "redis://127.0.0.1:6379/0",
                2,
                True,
            )
            redis_problem = redis_store_problem(self.workdir, probe)
            if redis_problem:
                self.notes.append(
                    "2-worker Rosetta rows skipped: this build has no Redis session store "
                    f"(rosetta check says: {redis_problem})"
                )
        for count in args.rosetta_workers:
            for kind in ("translated", "same", "local"):
                inbound, upstream_dialect = pairs[kind]
                row = Row(
                    f"rosetta-{kind}-w{count}",
                    f"{names[kind]} rosetta {inbound}->{upstream_dialect}, {count}w",
                    "rosetta",
                    workers=count,
                    pair=f"{inbound}->{upstream_dialect}",
                )
                skip = None
                if count > 1 and redis_problem:
                    skip = f"no Redis session store in this build: {redis_problem}"

                def start(
                    kind: str = kind,
                    inbound: str = inbound,
                    up: str = upstream_dialect,
                    count: int = count,
                ) -> Server:
                    store = "memory"
                    if count > 1:
                        if self.redis is None:
                            self.redis = self.track(self.start_redis())
                        store = f"redis://127.0.0.1:{self.redis.port}/0"
                    return self.rosetta(
                        f"rosetta-{kind}-w{count}", inbound, up, upstream.url, count, store
                    )

                plans.append(
                    Plan(row, start, caller_for(inbound, rosetta_issues_tokens=True), skip=skip)
                )
        if args.rows:
            wanted = set(args.rows)
            plans = [p for p in plans if p.row.id in wanted or p.row.id.split("-w")[0] in wanted]
        return plans

    # measuring -----------------------------------------------------------------------------
    def measure(self, plan: Plan) -> None:
        row = plan.row
        if plan.skip:
            row.status, row.reason = "skipped", plan.skip
            print(f"  {row.id}: skipped: {plan.skip}", flush=True)
            return
        server: Server | None = None
        try:
            server = plan.shared_server or self.track(plan.start())  # type: ignore[misc]
            answer = plan.caller.check(server.url)
            target = plan.caller.target(server.url)
            row.sessions = answer.sessions
            self.answers[row.id] = answer
            if self.args.warmup > 0:
                run_wrk(target, max(self.connections), self.args.warmup, threads=self.args.threads)
            for connections in self.connections:
                cpu_before = server.cpu_seconds()
                result = run_wrk(target, connections, self.args.duration, threads=self.args.threads)
                cpu = server.cpu_seconds() - cpu_before
                memory = server.memory()
                row.results[str(connections)] = self._measurement(result, memory, cpu)
                row.processes = memory.processes
                print(
                    f"  {row.id} c={connections}: {_brief(result)}, "
                    f"peak RSS {memory.peak_mb:.1f} MB",
                    flush=True,
                )
            if not server.alive():
                raise RuntimeError(f"{server.name} died during the run:\n{server.log_tail()}")
            plan.caller.check(server.url)  # still answering correctly after the load
            row.status = "ok"
        except (CheckFailed, RuntimeError, ValueError, OSError, subprocess.SubprocessError) as exc:
            row.status, row.reason = "failed", f"{type(exc).__name__}: {exc}"
            tail = server.log_tail(15) if server is not None else ""
            print(f"  {row.id}: FAILED: {exc}\n{tail}", flush=True)
        finally:
            if server is not None and plan.shared_server is None:
                self.stop(server)

    @staticmethod
    def _measurement(result: WrkResult, memory: Memory, cpu_seconds: float) -> Measurement:
        return Measurement(
            connections=result.connections,
            rps=round(result.rps, 1),
            p50_us=result.p50_us,
            p99_us=result.p99_us,
            p75_us=result.p75_us,
            p90_us=result.p90_us,
            requests=result.requests,
            seconds=result.seconds,
            non_2xx=result.non_2xx,
            socket_errors=result.socket_errors,
            timeouts=result.timeouts,
            rss_peak_mb=memory.peak_mb,
            rss_now_mb=memory.current_mb,
            cpu_us_per_request=round(cpu_seconds / result.requests * 1e6, 1)
            if result.requests
            else 0.0,
        )

    # memory check --------------------------------------------------------------------------
    def memory_check(self, upstream: Server, rates: dict[str, float]) -> dict[str, Any]:
        """RSS of a fresh 1-worker Rosetta (translated pair) after N/2 and N requests."""
        total = self.args.memory_requests
        inbound, up = resolve_pair(self.args.translated, [], "translated")
        report: dict[str, Any] = {
            "row": "rosetta-translated-w1",
            "pair": f"{inbound}->{up}",
            "target_requests": total,
            "connections": max(self.connections),
        }
        if total <= 0:
            report["status"] = "skipped"
            return report
        server = self.track(self.rosetta("memory-check", inbound, up, upstream.url, 1, "memory"))
        try:
            caller = caller_for(inbound, rosetta_issues_tokens=True)
            caller.check(server.url)
            target = caller.target(server.url)
            rate = rates.get("rosetta-translated-w1") or 500.0
            done = 0
            deadline = time.monotonic() + self.args.memory_max_seconds
            points = []
            for goal in (total // 2, total):
                while done < goal and time.monotonic() < deadline:
                    seconds = max(1, min(30, int((goal - done) / rate) + 1))
                    result = run_wrk(
                        target, max(self.connections), seconds, threads=self.args.threads
                    )
                    done += result.requests
                    rate = max(result.rps, 1.0)
                memory = server.memory()
                points.append(
                    {"requests": done, "rss_mb": memory.current_mb, "peak_mb": memory.peak_mb}
                )
            half, end = points
            growth = round(end["rss_mb"] - half["rss_mb"], 1)
            report.update(
                status="ok" if done >= total else "incomplete",
                half=half,
                end=end,
                growth_mb=growth,
                growth_pct=round(100 * growth / half["rss_mb"], 1) if half["rss_mb"] else None,
            )
            if done < total:
                report["reason"] = (
                    f"stopped at {done} requests after --memory-max-seconds "
                    f"{self.args.memory_max_seconds}"
                )
        except (CheckFailed, RuntimeError, ValueError, OSError) as exc:
            report.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
        finally:
            self.stop(server)
        return report

    # the whole run -------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        args = self.args
        started = datetime.now(UTC)
        if nginx_binary() is None or shutil.which("wrk") is None:
            raise SystemExit("bench: nginx and wrk are required (run bench/setup)")
        print(
            f"bench: {len(self.connections)} connection counts {self.connections}, "
            f"{args.duration}s per measurement, warm-up {args.warmup}s",
            flush=True,
        )
        upstream = self.track(start_upstream(self.workdir, UPSTREAM_TOKEN, args.nginx_workers))
        plans = self.plans(upstream)
        for note in self.notes:
            print(f"note: {note}", flush=True)
        rows = [p.row for p in plans]
        for plan in plans:
            self.measure(plan)
        consistency = self.compare_answers()
        compute_ratios(rows, self.connections)
        rates = {
            r.id: r.results[str(max(self.connections))].rps
            for r in rows
            if r.status == "ok" and str(max(self.connections)) in r.results
        }
        memory = self.memory_check(upstream, rates) if not args.no_memory else {"status": "skipped"}
        micro = (
            translators_micro.run(iterations=args.micro_iterations)
            if not args.no_micro
            else {"status": "skipped"}
        )
        return {
            "meta": {
                "started_at": started.isoformat(),
                "finished_at": datetime.now(UTC).isoformat(),
                "smoke": args.smoke,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "connections": self.connections,
                "wrk_threads": args.threads,
                "nginx_workers": args.nginx_workers,
                "rosetta_access_log": not args.no_access_log,
                "sessions_in_payload": payloads.SESSION_COUNT,
                "machine": {
                    "cpus": os.cpu_count(),
                    "load_avg_at_start": list(os.getloadavg()),
                    "kernel": platform.release(),
                    "python": platform.python_version(),
                },
                "tools": {
                    "nginx": tool_version([nginx_binary() or "nginx", "-v"]),
                    "wrk": tool_version(["wrk", "-v"]),
                },
                "notes": self.notes,
                "answers_consistent": consistency,
            },
            "rows": [asdict(r) for r in rows],
            "memory": memory,
            "translators_micro": micro,
        }

    def compare_answers(self) -> dict[str, Any]:
        """Rows 3, 4 and 5 implement one translation and must answer alike."""
        present = {
            k: v.body for k, v in self.answers.items() if k in ("nginx-njs", "handwritten", "naive")
        }
        if len(present) < 2:
            return {"compared": sorted(present), "equal": None}
        first = next(iter(present.values()))
        equal = all(body == first for body in present.values())
        if not equal:
            self.notes.append("rows 3, 4 and 5 answered differently: their translations diverge")
        return {"compared": sorted(present), "equal": equal}


# ratios and the table ------------------------------------------------------------------------
REFERENCES = {"njs": "nginx-njs", "handwritten": "handwritten"}


def compute_ratios(rows: list[Row], connections: list[int]) -> None:
    by_id = {r.id: r for r in rows}
    direct = by_id.get("direct")
    for row in rows:
        for name, ref_id in REFERENCES.items():
            ref = by_id.get(ref_id)
            ratios: dict[str, float | None] = {}
            for c in map(str, connections):
                mine = row.results.get(c)
                theirs = ref.results.get(c) if ref else None
                ratios[c] = (
                    round(mine.rps / theirs.rps, 3) if mine and theirs and theirs.rps else None
                )
            row.ratios[f"rps_vs_{name}"] = ratios
        if direct is not None:
            added: dict[str, float | None] = {}
            for c in map(str, connections):
                mine, base = row.results.get(c), direct.results.get(c)
                added[c] = round(mine.p50_us - base.p50_us, 1) if mine and base else None
            row.extra["added_p50_us_vs_direct"] = added


def _brief(result: WrkResult) -> str:
    errors = result.non_2xx + result.socket_errors + result.timeouts
    text = f"{result.rps:,.0f} req/s, p50 {_us(result.p50_us)}, p99 {_us(result.p99_us)}"
    return text + (f", {errors} errors" if errors else "")


def _us(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1_000_000:
        return f"{value / 1_000_000:.2f}s"
    if value >= 1000:
        return f"{value / 1000:.2f}ms"
    return f"{value:.0f}us"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def table(report: dict[str, Any]) -> str:
    lines = []
    header = (
        f"{'row':<40} {'conns':>5} {'req/s':>9} {'p50':>9} {'p99':>9} {'CPU/req':>8} "
        f"{'RSS MB':>7} "
        f"{'vs njs':>7} {'vs hand':>7} {'errors':>6}"
    )
    lines += [header, "-" * len(header)]
    for row in report["rows"]:
        if row["status"] != "ok" and not row["results"]:
            lines.append(f"{row['label']:<40} {row['status']}: {row['reason']}")
            continue
        for c, m in row["results"].items():
            errors = m["non_2xx"] + m["socket_errors"] + m["timeouts"]
            lines.append(
                f"{row['label']:<40} {c:>5} {m['rps']:>9,.0f} {_us(m['p50_us']):>9} "
                f"{_us(m['p99_us']):>9} {_us(m.get('cpu_us_per_request', 0.0)):>8} "
                f"{m['rss_peak_mb']:>7.1f} "
                f"{_ratio(row['ratios']['rps_vs_njs'].get(c)):>7} "
                f"{_ratio(row['ratios']['rps_vs_handwritten'].get(c)):>7} {errors:>6}"
            )
        if row["status"] != "ok":
            lines.append(f"{'':<40} {row['status']}: {row['reason']}")
    memory = report["memory"]
    if memory.get("status") in ("ok", "incomplete"):
        half, end = memory["half"], memory["end"]
        lines.append(
            f"memory ({memory['pair']}, 1 worker, {memory['connections']} conns): "
            f"{half['rss_mb']:.1f} MB after {half['requests']:,} requests, "
            f"{end['rss_mb']:.1f} MB after {end['requests']:,} "
            f"(growth {memory['growth_mb']:+.1f} MB, {memory['growth_pct']:+.1f}%)"
        )
    elif memory.get("status"):
        lines.append(f"memory: {memory['status']}: {memory.get('reason', '')}")
    lines.extend(translators_micro.table(report["translators_micro"]))
    return "\n".join(lines)


def targets(report: dict[str, Any]) -> list[str]:
    """The issue's targets, judged on this run's ratios."""
    rows = {r["id"]: r for r in report["rows"]}
    top = str(max(report["meta"]["connections"]))
    out = []

    def rps_ratio(row_id: str, ref: str, c: str) -> float | None:
        row = rows.get(row_id)
        return row["ratios"][f"rps_vs_{ref}"].get(c) if row else None

    def judge(text: str, value: float | None, goal: float, higher: bool = True) -> None:
        if value is None:
            out.append(f"  {text}: not measured")
            return
        met = value >= goal if higher else value <= goal
        verdict = "met" if met else "MISSED"
        out.append(f"  {text}: {value:.2f} ({verdict}, goal {'>=' if higher else '<='} {goal})")

    judge(
        f"rosetta translated 1w / hand-written at {top} conns",
        rps_ratio("rosetta-translated-w1", "handwritten", top),
        1.0,
    )
    judge(
        f"rosetta translated 2w / njs at {top} conns",
        rps_ratio("rosetta-translated-w2", "njs", top),
        0.5,
    )
    translated, hand, naive = (
        rows.get("rosetta-translated-w1"),
        rows.get("handwritten"),
        rows.get("naive"),
    )
    if translated and hand and translated["results"].get("1") and hand["results"].get("1"):
        mine = translated["extra"]["added_p50_us_vs_direct"]["1"]
        theirs = hand["extra"]["added_p50_us_vs_direct"]["1"]
        out.append(
            f"  added p50 at 1 conn: rosetta {_us(mine)} vs hand-written {_us(theirs)} "
            f"({'met' if mine <= theirs else 'MISSED'})"
        )
    if translated and naive and translated["results"].get(top) and naive["results"].get(top):
        ratio = translated["results"][top]["rps"] / max(naive["results"][top]["rps"], 0.001)
        judge(f"rosetta translated 1w / naive at {top} conns", ratio, 10.0)
    memory = report["memory"]
    if memory.get("status") in ("ok", "incomplete"):
        judge("RSS per worker after memory check (MB)", memory["end"]["rss_mb"], 80.0, higher=False)
        judge("RSS growth between halves (%)", memory["growth_pct"], 2.0, higher=False)
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="CI variant: 1s per row, 1 connection count, small checks",
    )
    parser.add_argument("--duration", type=int, help="seconds per measurement (default 5; smoke 1)")
    parser.add_argument("--warmup", type=int, help="warm-up seconds per row (default 1; smoke 0)")
    parser.add_argument(
        "--connections",
        type=lambda s: [int(x) for x in s.split(",")],
        help="comma-separated connection counts (default 1,32; smoke 1)",
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--nginx-workers", default="auto", help="worker_processes of every nginx")
    parser.add_argument(
        "--rosetta-workers",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 2],
        help="Rosetta worker counts (default 1,2)",
    )
    parser.add_argument(
        "--translated",
        type=parse_pair,
        default=("faircom", "geminidb"),
        help="row 6a dialect pair INBOUND:UPSTREAM (default faircom:geminidb)",
    )
    parser.add_argument(
        "--same",
        type=parse_pair,
        default=("geminidb", "geminidb"),
        help="row 6b dialect pair (default geminidb:geminidb)",
    )
    parser.add_argument(
        "--local", default="faircom", help="row 6c inbound dialect (default faircom)"
    )
    parser.add_argument(
        "--rows", nargs="*", help="only these row ids (e.g. direct rosetta-translated)"
    )
    parser.add_argument("--no-access-log", action="store_true", help="Rosetta without access log")
    parser.add_argument(
        "--memory-requests",
        type=int,
        help="memory check size (default 100000; smoke 2000; 0 = off)",
    )
    parser.add_argument(
        "--memory-max-seconds", type=int, default=600, help="bound on the memory check"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the memory check")
    parser.add_argument(
        "--micro-iterations", type=int, help="micro-benchmark iterations (default 200; smoke 20)"
    )
    parser.add_argument(
        "--no-micro", action="store_true", help="skip the translator micro-benchmark"
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        help=f"results file (default {DEFAULT_JSON.relative_to(ROOT)})",
    )
    parser.add_argument("--keep-workdir", action="store_true", help="keep configs and logs")
    args = parser.parse_args(argv)
    smoke = args.smoke
    args.duration = args.duration or (1 if smoke else 5)
    args.warmup = args.warmup if args.warmup is not None else (0 if smoke else 1)
    args.connections = args.connections or ([1] if smoke else [1, 32])
    args.memory_requests = (
        args.memory_requests if args.memory_requests is not None else (2000 if smoke else 100_000)
    )
    args.micro_iterations = args.micro_iterations or (20 if smoke else 200)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    harness = Harness(args)
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        report = harness.run()
    finally:
        harness.cleanup()
        signal.signal(signal.SIGTERM, previous)
    print()
    print(table(report))
    print("targets (ratios from this run):")
    for line in targets(report):
        print(line)
    for note in report["meta"]["notes"]:
        print(f"note: {note}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print(f"results: {args.json}")
    failed = [r["id"] for r in report["rows"] if r["status"] == "failed"]
    if failed:
        print(f"bench: rows failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
