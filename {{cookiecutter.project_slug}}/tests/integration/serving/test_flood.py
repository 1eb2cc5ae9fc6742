"""Flooding the real service past its queue: 503 + Retry-After at once, the rest answered, then full recovery.

And a request that outlives serving.request_timeout_seconds gets a 504 while the probes still answer.
"""

from __future__ import annotations

import threading

import pytest
from serving_support import Workspace

pytestmark = pytest.mark.integration

MAX_QUEUED_ROWS = 4
FLOOD_REQUESTS = 240
FLOOD_CONNECTIONS = 24


@pytest.fixture(scope="module")
def small_queue(workspace: Workspace, service_factory):
    settings = {
        "serving": {"max_queued_rows": MAX_QUEUED_ROWS, "predict_batch_rows": 2, "batch_window_ms": 5}
    }
    return service_factory(workspace.release("direct"), settings)


def test_a_flood_past_the_queue_is_refused_with_503_while_the_service_keeps_answering(
    workspace: Workspace, small_queue
) -> None:
    requests = [
        ("/predict", {"instances": workspace.rows[index % 50 : index % 50 + 2]}, {})
        for index in range(FLOOD_REQUESTS)
    ]
    probes: list[int] = []
    flooding = threading.Event()

    def probe() -> None:
        while not flooding.is_set():
            probes.append(small_queue.get("/health/live").status)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        answers = small_queue.send_many(requests, concurrency=FLOOD_CONNECTIONS)
    finally:
        flooding.set()
        prober.join()

    statuses = [answer.status if answer is not None else None for answer in answers]
    assert set(statuses) <= {200, 503}, statuses  # no connection dropped, no 500
    refused = [answer for answer in answers if answer.status == 503]
    answered = [answer for answer in answers if answer.status == 200]
    assert refused and answered, statuses
    assert all(answer.headers["retry-after"].isdigit() for answer in refused)
    assert {answer.json()["error"]["kind"] for answer in refused} == {"queue_full"}
    assert probes and set(probes) == {200}  # liveness answered throughout the flood
    samples = small_queue.metrics()
    assert samples['prediction_errors_total{kind="queue_full"}'] == len(refused)
    assert samples['http_requests_total{endpoint="/predict",status="503",variant="none"}'] == len(refused)

    # Recovery: once the flood stops, every request is answered again.
    after = [small_queue.post("/predict", {"instances": workspace.rows[:2]}) for _ in range(20)]
    assert [answer.status for answer in after] == [200] * 20
    assert small_queue.get("/health/ready").status == 200


@pytest.fixture(scope="module")
def short_deadline(workspace: Workspace, service_factory):
    # Scoring a few hundred rows takes tens of milliseconds on any machine: far past a 1 ms deadline.
    return service_factory(workspace.release("direct"), {"serving": {"request_timeout_seconds": 0.001}})


def test_a_request_past_the_deadline_is_a_counted_504_and_probes_still_answer(
    workspace: Workspace, short_deadline
) -> None:
    timed_out = short_deadline.post("/predict", {"instances": workspace.rows[:300]})
    assert timed_out.status == 504, timed_out.body
    assert timed_out.json()["error"]["kind"] == "request_timeout"
    assert short_deadline.get("/health/live").status == 200
    assert short_deadline.get("/health/ready").status == 200
    samples = short_deadline.metrics()
    assert samples['prediction_errors_total{kind="request_timeout"}'] == 1
    assert samples['http_requests_total{endpoint="/predict",status="504",variant="none"}'] == 1
