"""The prediction log writes every appended record, rotates by size, and drains on close."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.io.prediction_log import PredictionLog, read_prediction_log

pytestmark = pytest.mark.unit


def test_close_writes_every_record_in_order_across_rotated_files(tmp_path) -> None:
    written = []
    log = PredictionLog(tmp_path, max_file_bytes=1024, on_written=written.extend)
    for number in range(500):
        log.append([{"request_id": f"r{number}", "row": 0, "score": number / 500, "features": {"age": None}}])
    log.close()
    records = read_prediction_log(tmp_path)
    assert [record["request_id"] for record in records] == [f"r{number}" for number in range(500)]
    assert len(log.files()) > 1
    assert len(written) == 500


def test_nan_features_are_written_as_null(tmp_path) -> None:
    log = PredictionLog(tmp_path)
    log.append([{"features": {"hours": float("nan")}}])
    log.close()
    assert read_prediction_log(tmp_path) == [{"features": {"hours": None}}]
