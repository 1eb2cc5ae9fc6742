"""A failing model is a 500 counted in the metrics and the service stays up; a full queue is a 503.

The app runs under a real uvicorn on 127.0.0.1 (in a thread of the test process) with a stand-in
pipeline whose behaviour the test controls.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from serving_support import Service
from support.in_thread_service import serve_app_in_thread

from {{ cookiecutter.package_name }}.serving.app import PredictionService, ServiceOptions, create_app
from {{ cookiecutter.package_name }}.serving.model import CHALLENGER, CHAMPION, ServedModel
from {{ cookiecutter.package_name }}.serving.routing import RoutingPolicy
from {{ cookiecutter.package_name }}.serving.schema import InputSchema

pytestmark = pytest.mark.integration

SCHEMA = InputSchema(("age", "sex"), ("long", "string"))
BROKEN_AGE = 999


class StandInPipeline:
    """Scores age / 100; an age of 999 makes it raise, as a broken model would; `delay` slows it."""

    classes_ = np.array([0, 1])

    def __init__(self) -> None:
        self.delay = 0.0

    def predict_proba(self, frame):
        time.sleep(self.delay)
        if (frame["age"] == BROKEN_AGE).any():
            raise ValueError("the model cannot score this")
        positive = frame["age"].to_numpy() / 100
        return np.column_stack([1 - positive, positive])


def serve_in_thread(directory: Path, policy: RoutingPolicy, models: dict[str, ServedModel]):
    """Start the app on a free port in a thread; returns (client, stop)."""
    options = ServiceOptions(
        environment="staging",
        policy=policy,
        max_request_rows=10,
        max_body_bytes=4096,
        batch_window_seconds=0.001,
        predict_batch_rows=1,
        max_queued_rows=2,
        prediction_log_dir=directory / "predictions",
        prediction_log_max_bytes=1 << 20,
        feedback_url=f"sqlite:///{directory / 'feedback.db'}",
        flags={},
    )
    service = PredictionService(options, lambda: models)
    port, stop = serve_app_in_thread(
        create_app(service), lambda port: Service(None, port, directory).get("/health/ready").status == 200
    )
    client = Service(None, port, directory)  # type: ignore[arg-type]
    return client, stop


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory):
    pipeline = StandInPipeline()
    models = {CHAMPION: ServedModel(CHAMPION, 1, "sha256:x", pipeline, SCHEMA)}
    client, stop = serve_in_thread(
        tmp_path_factory.mktemp("stand-in"), RoutingPolicy("direct", 0, has_challenger=False), models
    )
    yield client, pipeline
    stop()


def test_a_model_failure_is_a_counted_500_and_the_next_request_is_answered(running) -> None:
    client, _ = running
    failed = client.post("/predict", {"instances": [{"age": BROKEN_AGE, "sex": "Male"}]})
    assert failed.status == 500 and failed.json()["error"]["kind"] == "model_failure"
    fine = client.post("/predict", {"instances": [{"age": 40, "sex": "Male"}]})
    assert fine.status == 200 and fine.json()["predictions"][0]["score"] == pytest.approx(0.4)
    samples = client.metrics()
    assert samples['prediction_errors_total{kind="model_failure"}'] == 1
    assert samples['http_requests_total{endpoint="/predict",status="500",variant="champion"}'] == 1


def test_a_full_queue_answers_503_with_retry_after(running) -> None:
    client, pipeline = running
    pipeline.delay = 0.2
    try:
        answers = client.send_many(
            [("/predict", {"instances": [{"age": 30, "sex": "Female"}]}, {}) for _ in range(12)],
            concurrency=12,
        )
    finally:
        pipeline.delay = 0.0
    refused = [answer for answer in answers if answer.status == 503]
    assert refused, [answer.status for answer in answers]
    assert all(answer.headers["retry-after"] == "1" for answer in refused)
    assert {answer.status for answer in answers} <= {200, 503}


class BrokenPipeline(StandInPipeline):
    def predict_proba(self, frame):
        raise RuntimeError("the challenger is broken")


def test_a_failing_shadow_never_reaches_the_client(tmp_path: Path) -> None:
    models = {
        CHAMPION: ServedModel(CHAMPION, 1, "sha256:x", StandInPipeline(), SCHEMA),
        CHALLENGER: ServedModel(CHALLENGER, 2, "sha256:y", BrokenPipeline(), SCHEMA),
    }
    client, stop = serve_in_thread(tmp_path, RoutingPolicy("shadow", 0, has_challenger=True), models)
    try:
        answers = [client.post("/predict", {"instances": [{"age": 70, "sex": "Male"}]}) for _ in range(5)]
        assert [answer.status for answer in answers] == [200] * 5
        assert {answer.json()["predictions"][0]["variant"] for answer in answers} == {"champion"}
        deadline = time.monotonic() + 5
        while client.metrics().get('prediction_errors_total{kind="shadow_failure"}', 0) < 5:
            assert time.monotonic() < deadline, "the shadow failures were not counted"
            time.sleep(0.05)
    finally:
        stop()
