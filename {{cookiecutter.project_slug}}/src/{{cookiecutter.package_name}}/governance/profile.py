"""The reference profile: what monitoring compares live traffic with, saved in every evidence bundle.

Monitoring reads only this document, never the training data. Per numeric feature it keeps the
training rows' quantile bin edges with the count in each bin (for PSI) and a fixed-size seeded sample
of the values (for the two-sample KS test: a KS test needs reference values, and a CDF rebuilt from
ten bins would make every live value inside one bin look tied, which biases the statistic). Per
categorical feature it keeps the top-K categories' counts, the count of all the others and every
category name seen (up to a cap) so that unseen categories can be told from rare ones. For the
scores it keeps the held-out score histogram on quantile edges and a sample of the held-out scores;
per sensitive group the held-out base rate (share of positive labels) and selection rate.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

PROFILE_FILE = "profile.json"
PROFILE_FORMAT = 1
NUMERIC_BINS = 10
TOP_CATEGORIES = 20
KNOWN_CATEGORIES = 500
SAMPLE_SIZE = 1000


def quantile_edges(values: np.ndarray, bins: int = NUMERIC_BINS) -> list[float]:
    """Interior bin edges at the quantiles of `values`, duplicates removed (a feature with many
    equal values, such as capital-gain's zeros, gets fewer bins). Bin i holds edges[i-1] < x <= edges[i];
    the first bin is open below and the last open above."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    quantiles = np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])
    return [float(edge) for edge in np.unique(quantiles)]


def bin_counts(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Counts of `values` in the bins `edges` define (len(edges) + 1 bins); NaN values are left out."""
    finite = values[np.isfinite(values)]
    positions = np.searchsorted(np.asarray(edges, dtype=float), finite, side="left")
    return np.bincount(positions, minlength=len(edges) + 1)


def seeded_sample(values: np.ndarray, size: int = SAMPLE_SIZE, random_state: int = 0) -> list[float]:
    """At most `size` of the finite values, drawn without replacement with a fixed seed."""
    finite = values[np.isfinite(values)]
    if finite.size > size:
        finite = np.random.default_rng(random_state).choice(finite, size, replace=False)
    return [float(value) for value in np.sort(finite)]


def numeric_profile(values: pd.Series, random_state: int = 0) -> dict:
    array = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    edges = quantile_edges(array)
    return {
        "kind": "numeric",
        "rows": int(array.size),
        "missing": int(np.isnan(array).sum()),
        "edges": edges,
        "counts": [int(count) for count in bin_counts(array, edges)],
        "sample": seeded_sample(array, random_state=random_state),
        "mean": _number(np.nanmean(array)) if array.size else None,
    }


def categorical_profile(values: pd.Series, top: int = TOP_CATEGORIES) -> dict:
    counts = values.astype("string").fillna("").value_counts()
    kept = counts.iloc[:top]
    return {
        "kind": "categorical",
        "rows": len(values),
        "categories": {str(name): int(count) for name, count in kept.items()},
        "other": int(counts.iloc[top:].sum()),
        "known": sorted(str(name) for name in counts.index[:KNOWN_CATEGORIES]),
    }


def build_profile(
    train_features: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    held_out_scores: np.ndarray,
    held_out_labels: pd.Series,
    held_out_sensitive: pd.DataFrame,
    threshold: float = 0.5,
    random_state: int = 0,
) -> dict:
    """The reference profile of a version: its training features and its held-out scores."""
    scores = np.asarray(held_out_scores, dtype=float)
    labels = np.asarray(held_out_labels, dtype=int)
    predictions = (scores >= threshold).astype(int)
    score_edges = quantile_edges(scores)
    features = {}
    for column in numeric:
        features[column] = numeric_profile(train_features[column], random_state)
    for column in categorical:
        features[column] = categorical_profile(train_features[column])
    groups = {}
    for column in held_out_sensitive.columns:
        values = held_out_sensitive[column].astype(str).to_numpy()
        groups[column] = {
            str(group): {
                "count": int(mask.sum()),
                "base_rate": _number(labels[mask].mean()),
                "selection_rate": _number(predictions[mask].mean()),
            }
            for group in sorted(set(values))
            for mask in [values == group]
        }
    return {
        "format": PROFILE_FORMAT,
        "training_rows": len(train_features),
        "held_out_rows": int(scores.size),
        "threshold": threshold,
        "features": features,
        "score": {
            "edges": score_edges,
            "counts": [int(count) for count in bin_counts(scores, score_edges)],
            "sample": seeded_sample(scores, random_state=random_state),
            "base_rate": _number(labels.mean()) if labels.size else None,
            "selection_rate": _number(predictions.mean()) if labels.size else None,
        },
        "sensitive": groups,
    }


def _number(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) else round(value, 6)
