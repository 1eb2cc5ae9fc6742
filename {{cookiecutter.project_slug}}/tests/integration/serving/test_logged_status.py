"""The log says how each request ended: status and latency per answered row, a failure as one row."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from test_model_failures import BROKEN_AGE, SCHEMA, StandInPipeline, serve_in_thread

from {{ cookiecutter.package_name }}.io.prediction_log import read_prediction_log
from {{ cookiecutter.package_name }}.serving.model import CHAMPION, ServedModel
from {{ cookiecutter.package_name }}.serving.routing import RoutingPolicy

pytestmark = pytest.mark.integration


def test_answered_rows_carry_their_status_and_latency_and_a_failure_is_logged_without_a_score(
    tmp_path: Path,
) -> None:
    pipeline = StandInPipeline()
    models = {CHAMPION: ServedModel(CHAMPION, 1, "sha256:x", pipeline, SCHEMA)}
    client, stop = serve_in_thread(tmp_path, RoutingPolicy("direct", 0, has_challenger=False), models)
    try:
        pipeline.delay = 0.05
        sent = time.perf_counter()
        fine = client.post(
            "/predict", {"instances": [{"age": 40, "sex": "Male"}, {"age": 50, "sex": "Female"}]}
        )
        elapsed_ms = (time.perf_counter() - sent) * 1000
        failed = client.post("/predict", {"instances": [{"age": BROKEN_AGE, "sex": "Male"}]})
    finally:
        stop()
    assert (fine.status, failed.status) == (200, 500)
    records = read_prediction_log(tmp_path / "predictions")
    answered = [record for record in records if record["request_id"] == fine.json()["request_id"]]
    assert [(record["row"], record["status"]) for record in answered] == [(0, 200), (1, 200)]
    # The model took 50 ms; the client waited at least as long as the service measured.
    assert all(50 <= record["latency_ms"] <= elapsed_ms for record in answered)
    [failure] = [record for record in records if record["request_id"] not in {fine.json()["request_id"]}]
    assert (failure["row"], failure["status"], failure["score"], failure["label"]) == (0, 500, None, None)
    assert failure["variant"] == CHAMPION and failure["model_version"] == 1
