"""Live performance and fairness from joined feedback, recomputed independently with Fairlearn and
scikit-learn on the same joined rows."""

from __future__ import annotations

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from monitoring_support import Workspace, adult_test_rows, serve_rows, write_environment
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

from {{ cookiecutter.package_name }}.commands.monitoring import monitor

pytestmark = pytest.mark.integration

LABELLED = 1200


@pytest.fixture(scope="module")
def labelled(workspace: Workspace) -> dict:
    environment = workspace.config.environments[0]
    write_environment(workspace.config, environment, "logs/feedback")
    features, labels = adult_test_rows(workspace.config)
    rows = features.iloc[:1500].reset_index(drop=True)
    # the service answers every row; labels come back through /feedback for the first LABELLED only
    answered = serve_rows(workspace, environment, rows, labels[:LABELLED])[:LABELLED]
    document = monitor(workspace.config, environment, out=workspace.root / "reports" / "feedback").document
    joined = rows.iloc[:LABELLED]
    # What the client was answered: the label and the score of each labelled row.
    predictions = np.array([item["label"] for item in answered])
    scores = np.array([item["score"] for item in answered])
    return {
        "document": document,
        "rows": joined,
        "labels": labels[:LABELLED],
        "predictions": predictions,
        "scores": scores,
    }


def test_live_performance_equals_scikit_learn_on_the_joined_rows(labelled: dict) -> None:
    figures = labelled["document"]["performance"]["champion"]
    labels, predictions = labelled["labels"], labelled["predictions"]
    assert figures["labels"] == LABELLED
    assert figures["accuracy"] == pytest.approx(accuracy_score(labels, predictions), abs=1e-6)
    assert figures["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(labels, predictions), abs=1e-6
    )
    assert figures["roc_auc"] == pytest.approx(roc_auc_score(labels, labelled["scores"]), abs=1e-6)
    low, high = figures["accuracy_interval"]
    assert low < figures["accuracy"] < high


@pytest.mark.parametrize("feature", ["sex", "race"])
def test_live_fairness_equals_fairlearn_on_the_joined_rows(labelled: dict, feature: str) -> None:
    groups = labelled["rows"][feature].astype(str).to_numpy()
    labels, predictions = labelled["labels"], labelled["predictions"]
    frame = MetricFrame(
        metrics={"selection_rate": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
        y_true=labels,
        y_pred=predictions,
        sensitive_features=groups,
    )
    report = next(item for item in labelled["document"]["fairness"]["features"] if item["feature"] == feature)
    by_group = {item["group"]: item for item in report["groups"]}
    assert set(by_group) == set(frame.by_group.index)
    for group, expected in frame.by_group.iterrows():
        assert by_group[group]["count"] == np.sum(groups == group)
        assert by_group[group]["selection_rate"] == pytest.approx(expected["selection_rate"], abs=1e-6)
        if np.any(labels[groups == group] == 1):
            assert by_group[group]["true_positive_rate"] == pytest.approx(expected["tpr"], abs=1e-6)
        if np.any(labels[groups == group] == 0):
            assert by_group[group]["false_positive_rate"] == pytest.approx(expected["fpr"], abs=1e-6)
    parity = demographic_parity_difference(labels, predictions, sensitive_features=groups)
    assert report["all_groups"]["demographic_parity_difference"] == pytest.approx(parity, abs=1e-6)
    both_classes = all(set(labels[groups == group]) == {0, 1} for group in set(groups))
    if both_classes:
        odds = equalized_odds_difference(labels, predictions, sensitive_features=groups)
        assert report["all_groups"]["equalized_odds_difference"] == pytest.approx(odds, abs=1e-6)
