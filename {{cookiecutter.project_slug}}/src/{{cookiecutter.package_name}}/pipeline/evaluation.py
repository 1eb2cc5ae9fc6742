"""Held-out metrics for a fitted classifier and for the majority-class baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

METRIC_NAMES = ("accuracy", "balanced_accuracy", "roc_auc", "f1", "precision", "recall", "log_loss")


def classification_metrics(labels: pd.Series, scores: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """All held-out metrics from true labels and positive-class probabilities."""
    predictions = (np.asarray(scores) >= threshold).astype(int)
    metrics = {
        "accuracy": accuracy_score(labels, predictions),
        "balanced_accuracy": balanced_accuracy_score(labels, predictions),
        "roc_auc": roc_auc_score(labels, scores),
        "f1": f1_score(labels, predictions, zero_division=0),
        "precision": precision_score(labels, predictions, zero_division=0),
        "recall": recall_score(labels, predictions, zero_division=0),
        "log_loss": log_loss(labels, np.clip(scores, 1e-15, 1 - 1e-15), labels=[0, 1]),
    }
    return {name: round(float(value), 6) for name, value in metrics.items()}


def positive_scores(model, features: pd.DataFrame) -> np.ndarray:
    """Probability of the positive class (label 1) for each row."""
    return model.predict_proba(features)[:, list(model.classes_).index(1)]


def evaluate(model, features: pd.DataFrame, labels: pd.Series) -> dict[str, float]:
    return classification_metrics(labels, positive_scores(model, features))


def majority_baseline(train_labels: pd.Series, test_labels: pd.Series) -> dict[str, float]:
    """Metrics of always predicting the training set's class frequencies (the bar any model must clear)."""
    positive_rate = float(train_labels.mean())
    scores = np.full(len(test_labels), positive_rate)
    return classification_metrics(test_labels, scores)
