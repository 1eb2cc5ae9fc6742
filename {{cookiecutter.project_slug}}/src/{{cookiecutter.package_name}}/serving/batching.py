"""Adaptive micro-batching: the rows of concurrent requests are scored in one model call.

A model call costs about the same for one row as for a few hundred (the ColumnTransformer's fixed
cost dominates), so rows that arrive while the model is busy, or within the batching window, are
concatenated and scored together. The queue is bounded in rows: beyond it a request is refused at
once (503) rather than left waiting past any latency budget.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from {{ cookiecutter.package_name }}.serving.model import Scores


def _one_thread_per_call() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def scoring_executor(name: str = "model") -> ThreadPoolExecutor:
    """One scoring thread, its OpenMP pool pinned to one thread (the limit is per thread, set in it).

    The service shares one between its variants: model calls are CPU-bound and hold the GIL for much
    of their time, so two scoring threads only contend with each other and with the event loop
    (measured: one shared thread answered about 15% more requests than one thread per variant).
    """
    return ThreadPoolExecutor(
        max_workers=1, thread_name_prefix=f"score-{name}", initializer=_one_thread_per_call
    )


class QueueFull(Exception):
    """More rows are waiting than the service accepts; the client should retry later."""


@dataclass
class _Pending:
    rows: list[list[Any]]
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """Scores rows through `score` (a blocking call) in batches on `executor` (default: its own thread)."""

    def __init__(
        self,
        score: Callable[[list[list[Any]]], Scores],
        *,
        window_seconds: float,
        max_batch_rows: int,
        max_queued_rows: int,
        name: str = "model",
        on_batch: Callable[[int], None] | None = None,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self._score = score
        self.window_seconds = window_seconds
        self.max_batch_rows = max_batch_rows
        self.max_queued_rows = max_queued_rows
        self._pending: list[_Pending] = []
        self._queued_rows = 0
        self._wakeup = asyncio.Event()
        self._owns_executor = executor is None
        self._executor = executor or scoring_executor(name)
        self._task: asyncio.Task | None = None
        self.batches = 0
        self._on_batch = on_batch

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Finish what is queued, then stop the loop and the scoring thread."""
        while self._pending:
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._owns_executor:
            self._executor.shutdown(wait=True)

    async def score(self, rows: list[list[Any]]) -> Scores:
        """The scores of `rows`, computed with the rows of whatever requests arrive meanwhile."""
        if self._queued_rows + len(rows) > self.max_queued_rows and self._queued_rows:
            raise QueueFull(f"{self._queued_rows} rows are waiting to be scored")
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(rows, future))
        self._queued_rows += len(rows)
        self._wakeup.set()
        return await future

    def _take_batch(self) -> list[_Pending]:
        """Whole requests, oldest first, up to max_batch_rows (a larger request goes alone)."""
        taken, count = [], 0
        while self._pending and (not taken or count + len(self._pending[0].rows) <= self.max_batch_rows):
            item = self._pending.pop(0)
            taken.append(item)
            count += len(item.rows)
        self._queued_rows -= count
        return taken

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            # Every batch short of full waits the window for company, not only the first of an idle
            # period: clients answered by the previous call send their next requests within it, and
            # a call costs nearly the same for 1 row as for 8. Measured at concurrency 8 on the demo
            # model: about 300 requests/s with this wait, 190 without it.
            if self.window_seconds > 0 and self._queued_rows < self.max_batch_rows:
                await asyncio.sleep(self.window_seconds)
            batch = self._take_batch()
            rows = [row for item in batch for row in item.rows]
            try:
                result = await loop.run_in_executor(self._executor, self._score, rows)
            except Exception as error:
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(error)
                continue
            self.batches += 1
            if self._on_batch is not None:
                self._on_batch(len(rows))
            start = 0
            for item in batch:
                end = start + len(item.rows)
                if not item.future.done():
                    item.future.set_result(Scores(result.scores[start:end], result.labels[start:end]))
                start = end
