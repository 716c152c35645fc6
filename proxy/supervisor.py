"""``rosetta serve --workers N``: N worker processes on one port, each accepting on a
listening socket of its own (``SO_REUSEPORT``), so the kernel spreads new connections over
the workers. With one socket shared by all workers (uvicorn's own supervisor), whichever
worker wakes first accepts everything waiting: a client that opens a few long-lived
connections at once could find all of them on one worker (docs/performance.md).

The supervisor keeps one socket bound to the port, never listening (so no connection waits
on it), which holds the port while workers come and go and tells them which port ``0``
became. It restarts a worker that dies, stops everything if one fails while starting (its
app cannot start, and would fail the same way again), and on SIGTERM or SIGINT asks every
worker to stop (each lets its requests in flight finish, uvicorn's graceful shutdown) and
waits for them. SIGHUP replaces the workers one at a time, on the configuration read at
start, as uvicorn's supervisor did: each new worker accepts connections before the old one
stops. A connection the kernel had queued for a worker's own socket when that worker stops
(it crashed, or SIGHUP replaced it) is reset, as a shared socket's would not be: the price
of the even spread, paid only when a worker goes. Workers are spawned, not forked; they
rebuild the app from the resolved settings in their environment (``proxy.worker``).
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import sys
import threading
import time
from multiprocessing.process import BaseProcess
from typing import Any

STARTUP_FAILURE = 3  # uvicorn's exit code for a worker whose app or socket failed to start
_POLL_SECONDS = 0.2
_READY_SECONDS = 60.0


def _socket_for(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def run_worker(host: str, port: int, options: dict[str, Any], ready: Any) -> None:
    """One worker process: its own socket on the shared port, one uvicorn server on it;
    ``ready`` (an event) is set once the server accepts connections."""
    import uvicorn

    try:
        sock = _socket_for(host, port)
    except OSError as exc:
        print(f"rosetta: worker cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        sys.exit(STARTUP_FAILURE)
    config = uvicorn.Config("proxy.worker:app_from_environment", factory=True, **options)
    server = uvicorn.Server(config)

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            ready.set()

    threading.Thread(target=announce, daemon=True).start()
    server.run(sockets=[sock])


class Supervisor:
    def __init__(self, workers: int, host: str, port: int, options: dict[str, Any]) -> None:
        self.workers = workers
        self.host = host
        self.port = port
        self.options = options
        grace = options.get("timeout_graceful_shutdown")
        self.grace = 30.0 if grace is None else float(grace)
        self._context = multiprocessing.get_context("spawn")
        self._stopping = False
        self._restarting = False
        self._events: dict[BaseProcess, Any] = {}

    def run(self) -> int:
        try:  # bound, never listening: see the module docstring
            holder = _socket_for(self.host, self.port)
        except OSError as exc:
            print(f"rosetta: cannot listen on {self.host}:{self.port}: {exc}", file=sys.stderr)
            return 1
        self.port = holder.getsockname()[1]
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._restart)
        processes = [self._start() for _ in range(self.workers)]
        status = 0
        try:
            while not self._stopping:
                time.sleep(_POLL_SECONDS)
                for index, process in enumerate(processes):
                    if process.is_alive() or self._stopping:
                        continue
                    if process.exitcode == STARTUP_FAILURE:
                        print("rosetta: a worker failed to start; stopping", file=sys.stderr)
                        self._stopping, status = True, 1
                        break
                    self._end(process)
                    processes[index] = self._start()
                if self._restarting and not self._stopping:
                    self._restarting = False
                    for index, old in enumerate(processes):
                        processes[index] = self._start(wait=True)
                        self._end(old)
        finally:
            for process in processes:
                if process.is_alive():
                    process.terminate()  # SIGTERM: uvicorn's graceful shutdown
            for process in processes:
                self._end(process, asked=True)
            holder.close()
        return status

    def _start(self, *, wait: bool = False) -> BaseProcess:
        """A new worker; with ``wait``, once it accepts connections (or has failed)."""
        ready = self._context.Event()
        process = self._context.Process(
            target=run_worker, args=(self.host, self.port, self.options, ready), daemon=False
        )
        process.start()
        # the event lives as long as its worker: a spawned child opens it only after start()
        self._events[process] = ready
        deadline = time.monotonic() + _READY_SECONDS
        while wait and not ready.wait(_POLL_SECONDS) and process.is_alive():
            if time.monotonic() > deadline or self._stopping:
                break
        return process

    def _end(self, process: BaseProcess, *, asked: bool = False) -> None:
        if not asked and process.is_alive():
            process.terminate()
        process.join(self.grace + 5)
        if process.is_alive():
            process.kill()
            process.join(5)
        self._events.pop(process, None)

    def _stop(self, _signum: int, _frame: Any) -> None:
        self._stopping = True

    def _restart(self, _signum: int, _frame: Any) -> None:
        self._restarting = True
