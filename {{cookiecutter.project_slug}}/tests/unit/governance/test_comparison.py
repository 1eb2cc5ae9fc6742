"""The champion scored on the candidate's held-out rows, checked against sklearn directly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score

from {{ cookiecutter.package_name }}.governance.comparison import ChampionComparison, compare_with_champion

pytestmark = pytest.mark.unit


def rows(seed: int, size: int = 200) -> tuple[pd.DataFrame, pd.Series]:
    generator = np.random.default_rng(seed)
    features = pd.DataFrame({"x": generator.normal(size=size), "z": generator.normal(size=size)})
    labels = pd.Series((features["x"] + generator.normal(scale=0.8, size=size) > 0).astype(int))
    return features, labels


@pytest.fixture(scope="module")
def champion() -> LogisticRegression:
    features, labels = rows(0)
    return LogisticRegression().fit(features[["x"]], labels)


def test_champion_metrics_are_measured_on_the_given_rows(champion: LogisticRegression) -> None:
    features, labels = rows(1)
    comparison = compare_with_champion("staging", 2, champion, features, labels, same_data=True)
    scores = champion.predict_proba(features[["x"]])[:, 1]
    assert comparison.status == "compared"
    assert comparison.rows == len(labels)
    assert comparison.metrics["roc_auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-6)
    assert comparison.metrics["accuracy"] == pytest.approx(accuracy_score(labels, scores >= 0.5), abs=1e-6)
    assert comparison.policy_champion() == {"version": 2, "metrics": comparison.metrics}


def test_champion_missing_a_column_means_a_new_schema(champion: LogisticRegression) -> None:
    features, labels = rows(1)
    comparison = compare_with_champion("staging", 2, champion, features[["z"]], labels, same_data=False)
    assert comparison.status == "new_schema"
    assert "'x'" in comparison.detail
    assert comparison.policy_champion() is None
    assert "first release for the new schema" in comparison.describe()


def test_comparison_round_trips_through_json() -> None:
    comparison = ChampionComparison("production", "compared", 4, {"roc_auc": 0.9}, 100, True)
    assert ChampionComparison.from_dict(comparison.to_dict()) == comparison
