"""Uncertainty sampling and Label Studio tasks (pipeline/feedback.py), checked against plain formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.pipeline.feedback import (
    FeedbackError,
    answered_rows,
    label_studio_task,
    labelling_candidates,
    most_uncertain,
    uncertainty,
)

pytestmark = pytest.mark.unit

SCORES = [0.97, 0.52, 0.10, 0.45, 0.70, 0.01, 0.61, 0.38, 0.88, 0.50]


def binary_entropy(p: float) -> float:
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p)) if 0 < p < 1 else 0.0


@pytest.mark.parametrize("n", [1, 3, 5, len(SCORES)])
def test_margin_picks_the_smallest_distance_to_one_half(n: int) -> None:
    expected = sorted(range(len(SCORES)), key=lambda index: abs(2 * SCORES[index] - 1))[:n]
    assert list(most_uncertain(SCORES, "margin", n)) == expected


@pytest.mark.parametrize("n", [1, 4, len(SCORES)])
def test_entropy_picks_the_largest_binary_entropy(n: int) -> None:
    expected = sorted(range(len(SCORES)), key=lambda index: -binary_entropy(SCORES[index]))[:n]
    assert list(most_uncertain(SCORES, "entropy", n)) == expected


def test_entropy_is_in_bits_and_finite_at_certain_scores() -> None:
    values = uncertainty([0.0, 0.5, 1.0, 0.25], "entropy")
    assert values[1] == pytest.approx(1.0)
    assert values[3] == pytest.approx(binary_entropy(0.25))
    assert np.isfinite(values).all() and values[0] == pytest.approx(0, abs=1e-9)


def test_asking_for_more_rows_than_there_are_returns_them_all() -> None:
    assert sorted(most_uncertain(SCORES, "margin", 50)) == list(range(len(SCORES)))


def test_equal_uncertainty_keeps_the_log_order() -> None:
    assert list(most_uncertain([0.4, 0.6, 0.4, 0.9], "margin", 3)) == [0, 1, 2]


@pytest.mark.parametrize("n", [0, -1])
def test_a_count_that_is_not_positive_is_refused(n: int) -> None:
    with pytest.raises(FeedbackError, match=f"--n {n}: expected a positive number"):
        most_uncertain(SCORES, "margin", n)


def test_an_unknown_strategy_is_refused_with_the_choices() -> None:
    with pytest.raises(FeedbackError, match="'random': expected one of margin, entropy"):
        uncertainty(SCORES, "random")


def record(request_id: str, row: int, **changes) -> dict:
    base = {
        "request_id": request_id,
        "row": row,
        "environment": "production",
        "variant": "champion",
        "shadow": False,
        "model_version": 3,
        "features": {"age": 40, "city": "Lyon"},
        "score": 0.3,
        "label": 0,
    }
    return {**base, **changes}


def test_candidates_are_the_champions_answered_unlabelled_rows_of_the_environment() -> None:
    records = [
        record("a", 0),
        record("a", 0, variant="challenger", shadow=True),  # shadow score of the same row
        record("b", 0, variant="challenger"),  # answered by the challenger under canary
        record("c", 0, environment="staging"),
        record("d", 0),
        record("d", 1),
    ]
    answered = answered_rows(records, "production")
    assert set(answered) == {("a", 0), ("b", 0), ("d", 0), ("d", 1)}
    assert answered[("a", 0)]["variant"] == "champion"
    candidates = labelling_candidates(answered, {("d", 1)})
    assert [(item["request_id"], item["row"]) for item in candidates] == [("a", 0), ("d", 0)]


def test_a_task_carries_the_features_the_key_and_the_prediction_with_its_confidence() -> None:
    task = label_studio_task(record("a", 2, score=0.3, label=0), ("<=50K", ">50K"))
    assert task["data"] == {"age": 40, "city": "Lyon", "request_id": "a", "row": 2}
    (prediction,) = task["predictions"]
    assert prediction["model_version"] == "3"
    assert prediction["score"] == pytest.approx(0.7)
    assert prediction["result"] == [
        {"from_name": "label", "to_name": "row", "type": "choices", "value": {"choices": ["<=50K"]}}
    ]
