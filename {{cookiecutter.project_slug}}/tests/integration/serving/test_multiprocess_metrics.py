"""With `serving.workers: 2`, two worker processes answer, and /metrics counts what both answered."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter

import pytest
from serving_support import Workspace, start_service

from {{ cookiecutter.package_name }}.io.prediction_log import read_prediction_log

pytestmark = pytest.mark.integration

WORKERS = 2
ROUND = 120  # requests sent at a time, until every worker has answered some
MAX_ROUNDS = 20
ROWS_PER_REQUEST = 3
LOG_FILE = re.compile(r"predictions-[0-9TZ]+-(?P<pid>[0-9]+)-[0-9]+\.jsonl$")


@pytest.fixture(scope="module")
def service(workspace: Workspace, service_factory):
    return service_factory(workspace.release("canary", 30), {"serving": {"workers": WORKERS}})


def send_on_fresh_connections(service, count: int, rows: list[dict], clients: int = 8) -> list[int]:
    """POST /predict `count` times, each on a connection of its own, so the kernel spreads them."""
    statuses: list[int] = []
    lock = threading.Lock()

    def client(offset: int) -> None:
        for _ in range(offset, count, clients):
            answer = service.post("/predict", {"instances": rows})
            with lock:
                statuses.append(answer.status)

    threads = [threading.Thread(target=client, args=(offset,)) for offset in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def sample(metrics: dict[str, float], name: str, **labels: str) -> float:
    """The sum of every sample of `name` whose labels include `labels`."""
    total = 0.0
    for key, value in metrics.items():
        metric, _, rest = key.partition("{")
        if metric != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if all(found.get(label) == wanted for label, wanted in labels.items()):
            total += value
    return total


def logging_processes(service) -> set[str]:
    """The process ids that wrote a prediction-log file so far."""
    return {LOG_FILE.search(path.name)["pid"] for path in service.log_directory.glob("predictions-*.jsonl")}


def wait_for_rows(service, count: int) -> list[dict]:
    deadline = time.monotonic() + 15
    while len(read_prediction_log(service.log_directory)) < count:
        assert time.monotonic() < deadline, "the prediction log did not receive every row"
        time.sleep(0.1)
    return read_prediction_log(service.log_directory)


def test_requests_spread_over_the_workers_add_up_in_metrics(workspace: Workspace, service) -> None:
    rows = workspace.rows[:ROWS_PER_REQUEST]
    before = service.metrics()
    # The kernel hands each new connection to whichever worker accepts first: on a busy machine one
    # worker can win a whole round, so rounds go on until both have answered (each writes log files
    # of its own, named by its process id).
    sent = 0
    for _ in range(MAX_ROUNDS):
        statuses = send_on_fresh_connections(service, ROUND, rows)
        assert Counter(statuses) == {200: ROUND}
        sent += ROUND
        wait_for_rows(service, sent * ROWS_PER_REQUEST)
        if len(logging_processes(service)) == WORKERS:
            break
    assert len(logging_processes(service)) == WORKERS, logging_processes(service)
    records = wait_for_rows(service, sent * ROWS_PER_REQUEST)
    assert len(records) == sent * ROWS_PER_REQUEST
    by_variant = Counter(record["variant"] for record in records if record["row"] == 0)

    # Whichever worker answers the scrape, the counts are those of every worker together.
    for _ in range(6):
        after = service.metrics()
        answered = sample(after, "http_requests_total", endpoint="/predict", status="200") - sample(
            before, "http_requests_total", endpoint="/predict", status="200"
        )
        assert answered == sent
        for variant, count in by_variant.items():
            assert (
                sample(after, "http_requests_total", endpoint="/predict", variant=variant)
                - sample(before, "http_requests_total", endpoint="/predict", variant=variant)
                == count
            )
        scored = sample(after, "predictions_total") - sample(before, "predictions_total")
        assert scored == sent * ROWS_PER_REQUEST
        latency = sample(after, "http_request_duration_seconds_count", endpoint="/predict") - sample(
            before, "http_request_duration_seconds_count", endpoint="/predict"
        )
        assert latency == sent


def test_model_info_is_one_series_per_variant_and_process_metrics_are_left_out(
    workspace: Workspace, service
) -> None:
    metrics = service.metrics()
    info = {key: value for key, value in metrics.items() if key.startswith("model_info{")}
    assert sorted(dict(re.findall(r'(\w+)="([^"]*)"', key))["variant"] for key in info) == [
        "challenger",
        "champion",
    ]
    assert set(info.values()) == {1.0}
    # prometheus-client cannot add up CPU and memory across processes: they are not exported at all.
    assert not any(key.startswith("process_") for key in metrics)


def test_both_workers_stop_on_sigterm(workspace: Workspace, service) -> None:
    assert service.stop() == 0


def test_a_worker_that_cannot_load_stops_every_worker_and_serve_exits_2(
    workspace: Workspace, tmp_path
) -> None:
    # Without the check, uvicorn would restart the failing worker forever and the other would serve.
    forged = workspace.release("direct").model_copy(deep=True)
    document = forged.model_dump(by_alias=True)
    document["model"]["artifact_digest"] = "sha256:" + "0" * 64
    release = type(forged).model_validate(document)
    with pytest.raises(AssertionError, match="exited with 2") as failed:
        start_service(workspace, tmp_path / "forged", release, {"serving": {"workers": WORKERS}})
    assert "refusing to serve" in str(failed.value) and "sha256:" + "0" * 64 in str(failed.value)
