"""32 concurrent clients get no 5xx and the metrics count what was sent; SIGTERM loses no answered row."""

from __future__ import annotations

import http.client
import signal
import threading
import time
from collections import Counter

import pytest
from serving_support import Workspace

from {{ cookiecutter.package_name }}.io.prediction_log import read_prediction_log

pytestmark = pytest.mark.integration

CLIENTS = 32
REQUESTS_PER_CLIENT = 50


def predict_counts(samples: dict[str, float]) -> Counter:
    counts: Counter = Counter()
    for name, value in samples.items():
        if name.startswith('http_requests_total{endpoint="/predict"'):
            counts[name] = value
    return counts


def test_concurrent_clients_get_no_5xx_and_the_metrics_add_up(workspace: Workspace, service_factory) -> None:
    service = service_factory(workspace.release("canary", 30))
    before = predict_counts(service.metrics())
    requests = [
        ("/predict", {"instances": workspace.rows[index % 50 : index % 50 + 1 + index % 3]}, {})
        for index in range(CLIENTS * REQUESTS_PER_CLIENT)
    ]
    answers = service.send_many(requests, concurrency=CLIENTS)
    statuses = Counter(answer.status if answer is not None else None for answer in answers)
    assert statuses == {200: len(requests)}

    sent: Counter = Counter()
    rows_sent: Counter = Counter()
    for answer in answers:
        predictions = answer.json()["predictions"]
        sent[predictions[0]["variant"]] += 1
        rows_sent[predictions[0]["variant"]] += len(predictions)
    samples = service.metrics()
    after = predict_counts(samples)
    for variant in ("champion", "challenger"):
        # Built without doubled braces: this file is a cookiecutter (Jinja) template too.
        labels = f'endpoint="/predict",status="200",variant="{variant}"'
        name = "http_requests_total" + "{" + labels + "}"
        assert after[name] - before.get(name, 0) == sent[variant], name
        scored = sum(
            value
            for key, value in samples.items()
            if key.startswith("predictions_total{") and f'variant="{variant}"' in key
        )
        assert scored == rows_sent[variant]
    assert not any(key.startswith('prediction_errors_total{kind="model_failure"') for key in samples)
    # Micro-batching: concurrent requests shared model calls.
    calls = sum(value for key, value in samples.items() if key.startswith("model_batch_rows_count"))
    assert calls < len(requests)


def test_sigterm_loses_no_answered_row(workspace: Workspace, service_factory) -> None:
    service = service_factory(workspace.release("direct"))
    answered: list[tuple[str, int]] = []
    stop = threading.Event()

    def client() -> None:
        index = 0
        while not stop.is_set():
            rows = workspace.rows[index % 40 : index % 40 + 2]
            try:
                answer = service.post("/predict", {"instances": rows})
            except (OSError, http.client.HTTPException):
                return
            if answer.status == 200:
                answered.append((answer.json()["request_id"], len(rows)))
            index += 1

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    returncode = service.stop(signal.SIGTERM)
    stop.set()
    for thread in threads:
        thread.join()
    assert returncode == 0
    assert len(answered) > 20
    logged = Counter(row["request_id"] for row in read_prediction_log(service.log_directory))
    missing = [(request_id, rows) for request_id, rows in answered if logged[request_id] != rows]
    assert missing == []
