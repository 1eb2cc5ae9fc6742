"""Folding log records into a window's statistics: what is counted, what is left out."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.monitoring.window import WindowStatistics

pytestmark = pytest.mark.unit

PROFILE = {
    "features": {
        "age": {"kind": "numeric", "edges": [30.0, 50.0], "counts": [1, 1, 1], "sample": [20.0, 40.0, 60.0]},
        "name": {"kind": "categorical", "categories": {"ann": 1}, "other": 0, "known": ["ann"]},
        "sex": {"kind": "categorical", "categories": {"F": 1, "M": 1}, "other": 0, "known": ["F", "M"]},
    },
    "score": {"edges": [0.5], "counts": [1, 1], "sample": [0.2, 0.8]},
}


def record(request_id: str, age: float | None, sex: str | None, **extra) -> dict:
    return {
        "request_id": request_id,
        "row": 0,
        "time": "2026-01-01T00:00:00+00:00",
        "environment": "staging",
        "variant": "champion",
        "model_version": 1,
        "shadow": False,
        "features": {"age": age, "name": "3f2a9c", "sex": sex},
        "score": 0.7,
        "label": 1,
        **extra,
    }


def test_personal_columns_are_left_out_of_drift_and_missing_values_counted_apart() -> None:
    statistics = WindowStatistics(PROFILE, {}, ["sex"], unmeasured=frozenset({"name"}))
    for index, age in enumerate([25.0, 30.0, 45.0, None]):
        statistics.add(record(str(index), age, "F"))
    statistics.flush()
    assert statistics.categorical == ["sex"] and statistics.unmeasured == ["name"]
    assert statistics.numeric_counts["age"].tolist() == [2, 1, 0]
    assert statistics.numeric_missing["age"] == 1
    assert dict(statistics.category_counts["sex"]) == {"F": 4}


def test_labelled_rows_take_their_group_from_the_record_and_missing_as_missing() -> None:
    labels = {("a", 0): 1, ("b", 0): 0}
    statistics = WindowStatistics(PROFILE, labels, ["sex"])
    statistics.add(record("a", 40.0, None, groups={"sex": "F"}))
    statistics.add(record("b", 40.0, None))
    statistics.add(record("c", 40.0, "M"))
    frame = statistics.labelled_frame()
    assert frame["sensitive:sex"].tolist() == ["F", "missing"]
    assert frame["label"].tolist() == [1, 0]


def test_a_failed_request_counts_as_an_error_but_not_as_an_answered_row() -> None:
    statistics = WindowStatistics(PROFILE, {}, [])
    statistics.add({**record("ok", 40.0, "F"), "status": 200, "latency_ms": 10.0})
    statistics.add({**record("failed", None, None), "status": 500, "score": None, "features": None})
    traffic = statistics.traffic["champion"]
    assert (traffic.requests, traffic.rows, traffic.errors, traffic.with_status) == (2, 1, 1, 2)
    assert traffic.latencies == [10.0]


def test_shadow_answers_are_paired_with_the_answer_the_client_got() -> None:
    statistics = WindowStatistics(PROFILE, {}, [], pair_shadow=True)
    for request_id, answered, shadowed in (("a", 1, 1), ("b", 0, 1), ("c", 1, 1), ("d", 0, 0)):
        statistics.add({**record(request_id, 40.0, "F"), "label": answered})
        statistics.add(
            {**record(request_id, 40.0, "F"), "label": shadowed, "shadow": True, "variant": "challenger"}
        )
    assert (statistics.pairs, statistics.agreements) == (4, 3)
    assert statistics.shadow.rows == 4 and statistics.traffic["champion"].rows == 4
