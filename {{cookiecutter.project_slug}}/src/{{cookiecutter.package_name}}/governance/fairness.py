"""Fairlearn audit of held-out predictions: metrics by group, parity and equalized-odds gaps.

Each sensitive feature is audited on its own and all of them together (their intersection). Groups
smaller than `min_group_size` stay in every table and are flagged; the gaps a policy acts on are
computed over the groups large enough to measure, and the gaps over all groups are reported beside them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import accuracy_score

INTERSECTION = "intersection"


def defined_true_positive_rate(labels: np.ndarray, predictions: np.ndarray) -> float:
    """TPR, or NaN for a group without positive labels (Fairlearn would report 0.0)."""
    return true_positive_rate(labels, predictions) if np.any(np.asarray(labels) == 1) else math.nan


def defined_false_positive_rate(labels: np.ndarray, predictions: np.ndarray) -> float:
    """FPR, or NaN for a group without negative labels (Fairlearn would report 0.0)."""
    return false_positive_rate(labels, predictions) if np.any(np.asarray(labels) == 0) else math.nan


GROUP_METRICS = {
    "count": count,
    "selection_rate": selection_rate,
    "accuracy": accuracy_score,
    "true_positive_rate": defined_true_positive_rate,
    "false_positive_rate": defined_false_positive_rate,
}
GAP_FUNCTIONS = {
    "demographic_parity_difference": demographic_parity_difference,
    "demographic_parity_ratio": demographic_parity_ratio,
    "equalized_odds_difference": equalized_odds_difference,
    "equalized_odds_ratio": equalized_odds_ratio,
}


@dataclass(frozen=True)
class FeatureAudit:
    """One sensitive feature (or the intersection): metrics by group and the gaps between groups."""

    feature: str
    by_group: pd.DataFrame
    small_groups: list[str]
    gaps: dict[str, float | None]
    gaps_all_groups: dict[str, float | None]
    overall: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        groups = [
            {
                "group": str(group),
                **{name: _number(value) for name, value in row.items()},
                "small": str(group) in self.small_groups,
            }
            for group, row in self.by_group.iterrows()
        ]
        return {
            "feature": self.feature,
            "groups": groups,
            "small_groups": self.small_groups,
            **self.gaps,
            "all_groups": self.gaps_all_groups,
        }


@dataclass(frozen=True)
class FairnessReport:
    overall: dict[str, float]
    audits: list[FeatureAudit]
    min_group_size: int
    rows_audited: int = 0
    rows_held_out: int = 0

    def audit(self, feature: str) -> FeatureAudit:
        return next(audit for audit in self.audits if audit.feature == feature)

    def largest_gap(self) -> tuple[str, str, float] | None:
        """(feature, gap name, value) of the largest difference among single sensitive features."""
        candidates = [
            (audit.feature, name, value)
            for audit in self.audits
            if audit.feature != INTERSECTION
            for name, value in audit.gaps.items()
            if name.endswith("_difference") and value is not None
        ]
        return max(candidates, key=lambda item: item[2], default=None)

    def policy_input(self) -> dict[str, dict]:
        """The per-feature gaps the promotion policy reads (single features only)."""
        return {
            audit.feature: {**audit.gaps, "small_groups": audit.small_groups}
            for audit in self.audits
            if audit.feature != INTERSECTION
        }

    def to_dict(self) -> dict:
        return {
            "min_group_size": self.min_group_size,
            "rows_audited": self.rows_audited,
            "rows_held_out": self.rows_held_out,
            "overall": {name: _number(value) for name, value in self.overall.items()},
            "features": [audit.to_dict() for audit in self.audits],
        }


def _number(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) else round(value, 6)


def fairness_gaps(labels: np.ndarray, predictions: np.ndarray, groups: np.ndarray) -> dict[str, float | None]:
    """Fairlearn's parity and equalized-odds differences and ratios (None when not computable)."""
    labels, predictions, groups = (
        np.asarray(labels),
        np.asarray(predictions),
        np.asarray(groups, dtype=object),
    )
    if len(set(groups)) < 2:
        return dict.fromkeys(GAP_FUNCTIONS)
    both_classes_everywhere = all(
        set(np.unique(labels[groups == group])) == {0, 1} for group in np.unique(groups)
    )
    with warnings.catch_warnings():
        # A group without positives (or negatives) makes sklearn warn about an undefined rate; the
        # gap is then reported as undefined below, so the warning carries nothing more.
        warnings.filterwarnings("ignore", category=UndefinedMetricWarning)
        warnings.filterwarnings("ignore", category=RuntimeWarning, message="invalid value encountered")
        gaps = {
            name: _number(function(labels, predictions, sensitive_features=groups))
            for name, function in GAP_FUNCTIONS.items()
        }
    if not both_classes_everywhere:
        # A group without positives (or negatives) has no TPR (or FPR): equalized odds is undefined.
        gaps["equalized_odds_difference"] = gaps["equalized_odds_ratio"] = None
    return gaps


def audit_feature(
    name: str,
    labels: np.ndarray,
    predictions: np.ndarray,
    groups: pd.Series | pd.DataFrame,
    min_group_size: int,
    true_counts: pd.Series | None = None,
) -> FeatureAudit:
    """One MetricFrame; `true_counts` (group sizes before any sampling) replace the sampled counts."""
    frame = MetricFrame(metrics=GROUP_METRICS, y_true=labels, y_pred=predictions, sensitive_features=groups)
    by_group = frame.by_group
    if isinstance(by_group.index, pd.MultiIndex):
        by_group.index = [
            ", ".join(f"{level}={value}" for level, value in zip(by_group.index.names, key, strict=True))
            for key in by_group.index
        ]
    by_group.index = by_group.index.map(str)
    if true_counts is not None:
        by_group["count"] = [
            float(true_counts.get(group, count)) for group, count in by_group["count"].items()
        ]
    small = by_group.index[by_group["count"] < min_group_size].tolist()
    return FeatureAudit(
        feature=name,
        by_group=by_group,
        small_groups=small,
        gaps=gaps_from_table(by_group.drop(index=small)),
        gaps_all_groups=gaps_from_table(by_group),
        overall=dict(frame.overall.items()),
    )


def gaps_from_table(by_group: pd.DataFrame) -> dict[str, float | None]:
    """The same gaps as `fairness_gaps`, from one MetricFrame's by-group table.

    Fairlearn's gap functions each build a MetricFrame of their own; on large held-out sets that
    dominates the audit's cost, so the gaps are read off the table already computed: difference =
    max - min and ratio = min / max across groups; equalized odds takes the worse of the true- and
    false-positive-rate gaps. A group without positives (or negatives) leaves equalized odds undefined.
    """
    if len(by_group) < 2:
        return dict.fromkeys(GAP_FUNCTIONS)

    def spread(column: str) -> tuple[float, float]:
        values = by_group[column].astype(float)
        if values.isna().any():
            return math.nan, math.nan
        low, high = values.min(), values.max()
        return high - low, (low / high if high > 0 else math.nan)

    parity_difference, parity_ratio = spread("selection_rate")
    tpr_difference, tpr_ratio = spread("true_positive_rate")
    fpr_difference, fpr_ratio = spread("false_positive_rate")
    odds_defined = not any(math.isnan(value) for value in (tpr_difference, fpr_difference))
    return {
        "demographic_parity_difference": _number(parity_difference),
        "demographic_parity_ratio": _number(parity_ratio),
        "equalized_odds_difference": _number(max(tpr_difference, fpr_difference)) if odds_defined else None,
        "equalized_odds_ratio": _number(min(tpr_ratio, fpr_ratio)) if odds_defined else None,
    }


WHOLE_GROUP = 2_000


def bounded_sample(sensitive: pd.DataFrame, max_rows: int, random_state: int = 0) -> np.ndarray:
    """Row positions to audit: every row when there are at most `max_rows`, else a seeded sample.

    Strata are the groups of the intersection of every sensitive column. A group of up to WHOLE_GROUP
    rows is kept whole; larger groups are sampled uniformly, so within every group the mix of labels
    and predictions, and hence every per-group rate, is an unbiased estimate. Large groups keep at
    least WHOLE_GROUP rows. The audit's cost is then bounded whatever the size of the held-out set.
    """
    size = len(sensitive)
    if size <= max_rows:
        return np.arange(size)
    strata = sensitive.astype(str).reset_index(drop=True)
    rng = np.random.default_rng(random_state)
    chosen = []
    for positions in strata.groupby(list(strata.columns), sort=True).indices.values():
        keep = max(int(np.ceil(len(positions) * max_rows / size)), WHOLE_GROUP)
        chosen.append(positions if keep >= len(positions) else rng.choice(positions, keep, replace=False))
    return np.sort(np.concatenate(chosen))


def overall_rates(labels: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """The MetricFrame metrics over every held-out row (cheap: counts of a confusion matrix)."""
    positives, negatives = labels == 1, labels == 0
    return {
        "count": float(len(labels)),
        "selection_rate": float(predictions.mean()) if len(labels) else math.nan,
        "accuracy": float((labels == predictions).mean()) if len(labels) else math.nan,
        "true_positive_rate": float(predictions[positives].mean()) if positives.any() else math.nan,
        "false_positive_rate": float(predictions[negatives].mean()) if negatives.any() else math.nan,
    }


def compute_fairness(
    labels: pd.Series,
    predictions: np.ndarray,
    sensitive: pd.DataFrame,
    min_group_size: int,
    max_rows: int | None = None,
) -> FairnessReport:
    """Audit predictions for each sensitive column and, with two or more, for their intersection.

    With `max_rows`, a held-out set larger than that is audited on `bounded_sample` rows; group
    counts and the overall figures are still those of every held-out row.
    """
    labels_array, predictions_array = np.asarray(labels), np.asarray(predictions)
    sensitive = sensitive.reset_index(drop=True).astype(str)
    held_out = len(labels_array)
    overall = overall_rates(labels_array, predictions_array)
    rows = bounded_sample(sensitive, max_rows) if max_rows is not None else np.arange(held_out)
    sample_labels, sample_predictions, sample_groups = (
        labels_array[rows],
        predictions_array[rows],
        sensitive.iloc[rows],
    )
    audits = [
        audit_feature(
            column,
            sample_labels,
            sample_predictions,
            sample_groups[column],
            min_group_size,
            true_counts=sensitive[column].value_counts(),
        )
        for column in sensitive.columns
    ]
    if sensitive.shape[1] > 1:
        intersection_counts = sensitive.value_counts()
        intersection_counts.index = [
            ", ".join(f"{name}={value}" for name, value in zip(sensitive.columns, key, strict=True))
            for key in intersection_counts.index
        ]
        audits.append(
            audit_feature(
                INTERSECTION,
                sample_labels,
                sample_predictions,
                sample_groups,
                min_group_size,
                true_counts=intersection_counts,
            )
        )
    return FairnessReport(
        overall=overall,
        audits=audits,
        min_group_size=min_group_size,
        rows_audited=len(rows),
        rows_held_out=held_out,
    )


def describe_largest_gap(report: FairnessReport) -> str:
    """One plain-language sentence about the largest gap among single sensitive features."""
    largest = report.largest_gap()
    if largest is None:
        return (
            "No fairness gap could be measured: each sensitive feature has fewer than two measurable groups."
        )
    feature, gap, value = largest
    audit = report.audit(feature)
    table = audit.by_group.drop(index=audit.small_groups)
    if gap == "demographic_parity_difference":
        rates = table["selection_rate"].astype(float)
        high, low = rates.idxmax(), rates.idxmin()
        return (
            f"The largest gap is in demographic parity for {feature}: the model predicts the positive class "
            f"for {rates[high]:.1%} of '{high}' but {rates[low]:.1%} of '{low}' (difference {value:.3f})."
        )
    tpr = table["true_positive_rate"].astype(float)
    fpr = table["false_positive_rate"].astype(float)
    metric, rates = (
        ("true positive rate", tpr)
        if tpr.max() - tpr.min() >= fpr.max() - fpr.min()
        else ("false positive rate", fpr)
    )
    high, low = rates.idxmax(), rates.idxmin()
    return (
        f"The largest gap is in equalized odds for {feature}: the {metric} is {rates[high]:.1%} for '{high}' "
        f"but {rates[low]:.1%} for '{low}' (difference {value:.3f})."
    )
