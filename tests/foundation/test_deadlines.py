"""The shared-ticker deadlines bounding upstream exchanges (proxy.deadlines): a block past
its deadline ends in TimeoutError, one in time ends as it would, and any other cancellation
passes through untouched."""

from __future__ import annotations

import asyncio
import time

import pytest

from proxy.deadlines import Deadlines

RESOLUTION = 0.02


def test_a_block_past_its_deadline_ends_in_timeout_error_soon_after() -> None:
    deadlines = Deadlines(RESOLUTION)

    async def main() -> float:
        started = time.monotonic()
        with pytest.raises(TimeoutError), deadlines.bound(0.1):
            await asyncio.sleep(10)
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0  # the deadline took back its cancel
        return time.monotonic() - started

    waited = asyncio.run(main())
    assert 0.1 <= waited < 1.0
    assert len(deadlines) == 0


def test_a_block_in_time_ends_as_it_would_and_leaves_its_task_uncancelled() -> None:
    deadlines = Deadlines(RESOLUTION)

    async def main() -> str:
        with deadlines.bound(0.2):
            await asyncio.sleep(0.01)
            result = "done"
        await asyncio.sleep(0.3)  # past the deadline: nothing may cancel the task now
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
        return result

    assert asyncio.run(main()) == "done"
    assert len(deadlines) == 0


def test_other_errors_pass_through_the_block() -> None:
    deadlines = Deadlines(RESOLUTION)

    async def main() -> None:
        with deadlines.bound(5):
            await asyncio.sleep(0)
            raise KeyError("mine")

    with pytest.raises(KeyError, match="mine"):
        asyncio.run(main())
    assert len(deadlines) == 0


def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    deadlines = Deadlines(RESOLUTION)

    async def bounded(seconds: float) -> None:
        with deadlines.bound(seconds):
            await asyncio.sleep(10)

    async def main(seconds: float, cancel_after: float) -> None:
        task = asyncio.create_task(bounded(seconds))
        await asyncio.sleep(cancel_after)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main(5, 0.05))  # cancelled long before its deadline
    asyncio.run(main(0.05, 0.05 + RESOLUTION / 2))  # cancelled about when the deadline passed
    assert len(deadlines) == 0


def test_many_blocks_in_flight_each_keep_their_own_deadline() -> None:
    deadlines = Deadlines(RESOLUTION)

    async def bounded(seconds: float, work: float) -> str:
        try:
            with deadlines.bound(seconds):
                await asyncio.sleep(work)
        except TimeoutError:
            return "timed out"
        return "done"

    async def main() -> list[str]:
        return list(
            await asyncio.gather(
                bounded(0.05, 10), bounded(5, 0.2), bounded(0.15, 10), bounded(5, 0.01)
            )
        )

    assert asyncio.run(main()) == ["timed out", "done", "timed out", "done"]
    assert len(deadlines) == 0


def test_one_deadlines_object_serves_one_loop_after_another() -> None:
    deadlines = Deadlines(RESOLUTION)

    async def main() -> None:
        with pytest.raises(TimeoutError), deadlines.bound(0.05):
            await asyncio.sleep(10)

    asyncio.run(main())
    asyncio.run(main())


def test_a_deadline_bounds_a_task_only() -> None:
    with pytest.raises(RuntimeError), Deadlines().bound(1):
        pass
