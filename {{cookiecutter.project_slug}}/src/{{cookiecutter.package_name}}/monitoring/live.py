"""Live figures from labelled and logged rows: performance with its uncertainty, fairness, operations.

Fairness is the evidence bundle's own computation (`governance.fairness.compute_fairness`), run on
the rows whose label came back, so a live figure and a held-out figure mean the same thing.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from {{ cookiecutter.package_name }}.governance.fairness import compute_fairness

Z_95 = 1.959964
MIN_LABELS_FOR_AUC = 50


def wilson_interval(successes: int, trials: int) -> list[float] | None:
    """95% Wilson score interval of a proportion (sound for small counts and rates near 0 or 1)."""
    if trials <= 0:
        return None
    share = successes / trials
    denominator = 1 + Z_95**2 / trials
    centre = (share + Z_95**2 / (2 * trials)) / denominator
    half = Z_95 * math.sqrt(share * (1 - share) / trials + Z_95**2 / (4 * trials**2)) / denominator
    return [round(max(0.0, centre - half), 6), round(min(1.0, centre + half), 6)]


def auc_interval(auc: float, positives: int, negatives: int) -> list[float]:
    """95% interval of a ROC AUC from the Hanley-McNeil standard error."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)) / (
        positives * negatives
    )
    half = Z_95 * math.sqrt(max(variance, 0.0))
    return [round(max(0.0, auc - half), 6), round(min(1.0, auc + half), 6)]


def live_performance(labels: np.ndarray, predictions: np.ndarray, scores: np.ndarray) -> dict:
    """Accuracy (Wilson interval), balanced accuracy and, with enough labels of both classes, ROC AUC."""
    labels, predictions, scores = (
        np.asarray(labels, dtype=int),
        np.asarray(predictions, dtype=int),
        np.asarray(scores, dtype=float),
    )
    count = int(labels.size)
    positives = int(labels.sum())
    negatives = count - positives
    document = {
        "labels": count,
        "positives": positives,
        "accuracy": None,
        "accuracy_interval": None,
        "balanced_accuracy": None,
        "roc_auc": None,
        "roc_auc_interval": None,
    }
    if count == 0:
        return document
    correct = int((labels == predictions).sum())
    document["accuracy"] = round(correct / count, 6)
    document["accuracy_interval"] = wilson_interval(correct, count)
    if positives and negatives:
        document["balanced_accuracy"] = round(float(balanced_accuracy_score(labels, predictions)), 6)
        if count >= MIN_LABELS_FOR_AUC:
            auc = float(roc_auc_score(labels, scores))
            document["roc_auc"] = round(auc, 6)
            document["roc_auc_interval"] = auc_interval(auc, positives, negatives)
    return document


def live_fairness(
    labels: np.ndarray, predictions: np.ndarray, sensitive: pd.DataFrame, min_group_size: int
) -> dict:
    """The bundle's fairness document, computed on the labelled live rows (empty without labels)."""
    if len(labels) == 0 or sensitive.shape[1] == 0:
        return {"rows_audited": 0, "features": []}
    return compute_fairness(
        pd.Series(np.asarray(labels, dtype=int)),
        np.asarray(predictions, dtype=int),
        sensitive,
        min_group_size,
    ).to_dict()


def latency_quantiles(latencies: np.ndarray) -> dict[str, float | None]:
    if len(latencies) == 0:
        return {"p50": None, "p90": None, "p99": None}
    values = np.quantile(np.asarray(latencies, dtype=float), [0.5, 0.9, 0.99])
    return {name: round(float(value), 3) for name, value in zip(("p50", "p90", "p99"), values, strict=True)}
