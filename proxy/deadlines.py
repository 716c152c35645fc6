"""Total time-outs for the upstream exchanges of one process, without a timer per exchange.

``asyncio.timeout`` arms and disarms an event-loop timer on every use: about 9 us of an
upstream request's CPU on uvloop, for a deadline that almost never fires. Here every
exchange in flight shares one ticker instead. ``Deadlines.bound(seconds)`` notes the current
task and its deadline in a set and removes them when the block ends; while anything is
noted, the ticker wakes every ``resolution`` seconds and cancels each task past its deadline.
The block then ends in ``TimeoutError``, as with ``asyncio.timeout``: a cancellation from
anywhere else (a shutdown, a caller that went away) passes through as ``CancelledError``.

A deadline fires up to ``resolution`` (50 ms) late; the time-outs it serves are seconds.
One ``Deadlines`` serves one event loop at a time, like the HTTP client it sits beside: on
another loop it starts over.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

RESOLUTION = 0.05


class Deadlines:
    """The deadlines of the blocks in flight, checked by one ticker per event loop."""

    def __init__(self, resolution: float = RESOLUTION) -> None:
        self.resolution = resolution
        self._active: set[Bound] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ticking = False

    def bound(self, seconds: float) -> Bound:
        """A ``with`` block that ends in ``TimeoutError`` once ``seconds`` have passed."""
        return Bound(self, seconds)

    def _add(self, bound: Bound, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:  # a new loop: what the old one noted can never end here
            self._loop, self._active, self._ticking = loop, set(), False
        self._active.add(bound)
        if not self._ticking:
            self._ticking = True
            loop.call_later(self.resolution, self._tick, loop)

    def _remove(self, bound: Bound) -> None:
        self._active.discard(bound)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:  # the ticker of a loop this object has left: it stops
            return
        if not self._active:
            self._ticking = False
            return
        now = loop.time()
        for bound in self._active:
            if bound.when <= now and not bound.expired:
                bound.expired = True
                bound.task.cancel()
        loop.call_later(self.resolution, self._tick, loop)

    def __len__(self) -> int:
        """How many blocks are in flight (for tests and diagnostics)."""
        return len(self._active)


class Bound:
    """One block under a deadline; see ``Deadlines.bound``."""

    __slots__ = ("_cancelling", "_deadlines", "_seconds", "expired", "task", "when")

    def __init__(self, deadlines: Deadlines, seconds: float) -> None:
        self._deadlines = deadlines
        self._seconds = seconds
        self.expired = False

    def __enter__(self) -> Bound:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline bounds a task: enter it inside one")
        loop = task.get_loop()
        self.task = task
        self.when = loop.time() + self._seconds
        self._cancelling = task.cancelling()
        self._deadlines._add(self, loop)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._deadlines._remove(self)
        # the deadline passed: take back our cancellation (uncancel, always, once expired);
        # if no other is pending, the block ends in TimeoutError
        if (
            self.expired
            and self.task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc
