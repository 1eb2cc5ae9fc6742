"""Micro-batching: concurrent requests share one model call; failures reach every waiting request."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.serving.batching import MicroBatcher, QueueFull, scoring_executor
from {{ cookiecutter.package_name }}.serving.model import Scores

pytestmark = pytest.mark.unit


class CountingModel:
    """Scores a row as its first value / 100 and remembers the size of every call."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.calls: list[int] = []
        self.delay = delay
        self.fail = fail

    def score(self, rows):
        self.calls.append(len(rows))
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("model broke")
        values = np.array([row[0] / 100 for row in rows])
        return Scores(values, [int(value > 0.5) for value in values])


async def run_concurrently(batcher: MicroBatcher, requests):
    batcher.start()
    try:
        return await asyncio.gather(*(batcher.score(rows) for rows in requests), return_exceptions=True)
    finally:
        await batcher.stop()


def test_concurrent_requests_are_scored_in_one_call_and_get_their_own_rows() -> None:
    model = CountingModel()
    batcher = MicroBatcher(model.score, window_seconds=0.02, max_batch_rows=100, max_queued_rows=100)
    requests = [[[10 * number + offset] for offset in range(number + 1)] for number in range(6)]
    results = asyncio.run(run_concurrently(batcher, requests))
    assert model.calls == [21]
    for rows, result in zip(requests, results, strict=True):
        assert list(result.scores) == [row[0] / 100 for row in rows]


def test_batches_hold_whole_requests_up_to_the_row_limit() -> None:
    model = CountingModel()
    batcher = MicroBatcher(model.score, window_seconds=0.02, max_batch_rows=5, max_queued_rows=100)
    asyncio.run(run_concurrently(batcher, [[[1]] * 3, [[2]] * 3, [[3]] * 7]))
    assert model.calls == [3, 3, 7]


def test_a_model_failure_reaches_every_request_of_the_batch_and_the_next_batch_runs() -> None:
    model = CountingModel(fail=True)
    batcher = MicroBatcher(model.score, window_seconds=0.01, max_batch_rows=10, max_queued_rows=100)
    results = asyncio.run(run_concurrently(batcher, [[[1]], [[2]]]))
    assert all(isinstance(result, RuntimeError) for result in results)


def test_a_full_queue_refuses_at_once() -> None:
    model = CountingModel(delay=0.05)
    batcher = MicroBatcher(model.score, window_seconds=0.0, max_batch_rows=1, max_queued_rows=2)
    results = asyncio.run(run_concurrently(batcher, [[[1]], [[2]], [[3]], [[4]]]))
    refused = [result for result in results if isinstance(result, QueueFull)]
    assert refused and len(refused) < 4


def test_a_lone_client_is_scored_at_once_not_after_the_window() -> None:
    model = CountingModel()
    batcher = MicroBatcher(model.score, window_seconds=1.0, max_batch_rows=100, max_queued_rows=100)

    async def one_request_at_a_time() -> list[float]:
        batcher.start()
        waits = []
        try:
            for value in range(3):
                started = time.perf_counter()
                await batcher.score([[value]])
                waits.append(time.perf_counter() - started)
        finally:
            await batcher.stop()
        return waits

    waits = asyncio.run(one_request_at_a_time())
    assert model.calls == [1, 1, 1]
    assert max(waits) < 0.5, waits


def test_variants_sharing_the_scoring_thread_are_scored_and_answered_in_one_cycle() -> None:
    champion, challenger = CountingModel(delay=0.01), CountingModel(delay=0.01)
    thread = scoring_executor()
    batchers = [
        MicroBatcher(
            model.score, window_seconds=0.05, max_batch_rows=100, max_queued_rows=100, executor=thread
        )
        for model in (champion, challenger)
    ]
    answered_at: dict[str, float] = {}

    async def request(name: str, batcher: MicroBatcher, rows) -> None:
        await batcher.score(rows)
        answered_at[name] = time.perf_counter()

    async def scenario() -> None:
        for batcher in batchers:
            batcher.start()
        try:
            await asyncio.gather(
                request("champion-1", batchers[0], [[1], [2]]),
                request("champion-2", batchers[0], [[3]]),
                request("challenger-1", batchers[1], [[4]]),
            )
        finally:
            for batcher in batchers:
                await batcher.stop()
            thread.shutdown(wait=True)

    asyncio.run(scenario())
    assert champion.calls == [3] and challenger.calls == [1]
    assert thread.cycles == 1
    # Answered together: the champion's clients did not wait for the challenger's call to be answered
    # separately, nor the challenger's for another cycle.
    assert max(answered_at.values()) - min(answered_at.values()) < 0.005
