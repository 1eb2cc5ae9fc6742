from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.pipeline.evaluation import classification_metrics, majority_baseline

pytestmark = pytest.mark.unit


def test_metrics_match_a_hand_computed_example() -> None:
    labels = pd.Series([1, 0, 1, 1, 0])
    scores = np.array([0.9, 0.2, 0.4, 0.8, 0.6])
    # predictions at 0.5: [1, 0, 0, 1, 1] -> TP=2, FN=1, TN=1, FP=1
    metrics = classification_metrics(labels, scores)
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["precision"] == pytest.approx(2 / 3, abs=1e-6)
    assert metrics["recall"] == pytest.approx(2 / 3, abs=1e-6)
    assert metrics["f1"] == pytest.approx(2 / 3, abs=1e-6)
    assert metrics["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2) / 2, abs=1e-6)
    # 5 of the 6 (positive, negative) pairs are ranked correctly
    assert metrics["roc_auc"] == pytest.approx(5 / 6, abs=1e-6)
    expected_log_loss = -sum(math.log(p) for p in [0.9, 0.8, 0.4, 0.8, 0.4]) / 5
    assert metrics["log_loss"] == pytest.approx(expected_log_loss, abs=1e-6)


def test_majority_baseline_always_predicts_the_majority_class() -> None:
    train = pd.Series([0, 0, 0, 1])
    test = pd.Series([0, 1, 0, 0, 1])
    baseline = majority_baseline(train, test)
    assert baseline["accuracy"] == pytest.approx(3 / 5)
    assert baseline["recall"] == 0.0
    assert baseline["roc_auc"] == pytest.approx(0.5)
    assert baseline["balanced_accuracy"] == pytest.approx(0.5)


@pytest.mark.parametrize("positive_rate", [0.05, 0.3, 0.5, 0.83, 0.97])
def test_majority_baseline_scores_one_half_on_roc_auc_and_balanced_accuracy_at_any_balance(
    positive_rate: float,
) -> None:
    """The project tests compare a team's model with 0.5 on both: that must hold for any class balance."""
    rng = np.random.default_rng(7)
    train = pd.Series((rng.random(400) < positive_rate).astype(int))
    test = pd.Series((rng.random(200) < positive_rate).astype(int))
    test.iloc[:2] = [0, 1]  # both classes held out
    baseline = majority_baseline(train, test)
    assert baseline["roc_auc"] == pytest.approx(0.5)
    assert baseline["balanced_accuracy"] == pytest.approx(0.5)
    majority = int(train.mean() >= 0.5)
    assert baseline["accuracy"] == pytest.approx(float((test == majority).mean()), abs=1e-6)
