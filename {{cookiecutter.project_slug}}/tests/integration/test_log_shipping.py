"""Several replicas' prediction logs shipped to a real MLflow store and fetched back as one log."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures import install_fixture_project

from {{ cookiecutter.package_name }}.config import load_config
from {{ cookiecutter.package_name }}.io.log_shipping import ShippingError, fetch, ship
from {{ cookiecutter.package_name }}.io.prediction_log import PredictionLog, read_prediction_log

pytestmark = pytest.mark.integration


def write(directory: Path, replica: str, first: int, count: int) -> None:
    log = PredictionLog(directory, max_file_bytes=4096)  # small chunks: several per replica
    log.append(
        {"request_id": f"{replica}-{index}", "row": 0, "time": "2026-12-01T00:00:00+00:00", "score": 0.5}
        for index in range(first, first + count)
    )
    log.close()


def keys(directory: Path) -> list[str]:
    return sorted(record["request_id"] for record in read_prediction_log(directory))


def test_every_replica_shipped_is_fetched_once_and_a_grown_chunk_again(tmp_path: Path) -> None:
    config = load_config(install_fixture_project(tmp_path / "project"))
    with pytest.raises(ShippingError, match="no prediction log of staging was shipped"):
        fetch(config, "staging", tmp_path / "fetched")
    assert not (tmp_path / "fetched").exists(), "a failed fetch writes nothing"

    pods = {name: tmp_path / name for name in ("pod-a", "pod-b")}
    for name, directory in pods.items():
        write(directory, name, 0, 120)
    results = {name: ship(config, "staging", directory, replica=name) for name, directory in pods.items()}
    assert results["pod-a"].run_id == results["pod-b"].run_id, "one run per environment"
    assert all(len(result.chunks) > 1 for result in results.values())
    assert ship(config, "production", pods["pod-a"], replica="pod-a").run_id != results["pod-a"].run_id

    fetched = tmp_path / "fetched"
    fetch(config, "staging", fetched)
    expected = sorted(key for directory in pods.values() for key in keys(directory))
    assert keys(fetched) == expected, "every row of every replica, none twice"

    # Only what changed is shipped again; fetching again replaces, never duplicates.
    write(pods["pod-a"], "pod-a", 120, 5)
    again = ship(config, "staging", pods["pod-a"], replica="pod-a")
    chunks = len(list(pods["pod-a"].glob("predictions-*.jsonl")))
    assert (len(again.chunks), again.unchanged) == (1, chunks - 1)
    assert ship(config, "staging", pods["pod-b"], replica="pod-b").chunks == []
    fetch(config, "staging", fetched)
    assert keys(fetched) == sorted(expected + [f"pod-a-{index}" for index in range(120, 125)])
