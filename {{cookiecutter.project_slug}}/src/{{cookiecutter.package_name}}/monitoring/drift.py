"""Drift of live values against the reference profile: PSI, two-sample KS, chi-square, unseen share.

Pure functions over counts and samples; the caller streams the log into them. PSI uses the
reference's own bins, with half a count added to every bin of both sides (so an empty bin gives a
large but finite term). KS compares a uniform sample of the live values with the reference sample
stored in the profile; chi-square compares the live category counts with the reference ones on the
reference's top categories plus "other". Whether a feature has drifted is not decided here: the
monitoring policy does it, from these statistics and its limits.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import chi2_contingency, ks_2samp

OTHER = "(other)"


def population_stability_index(reference: np.ndarray, live: np.ndarray) -> float | None:
    """PSI = sum((live% - ref%) * ln(live% / ref%)) over shared bins; None without rows on a side."""
    reference, live = np.asarray(reference, dtype=float), np.asarray(live, dtype=float)
    if reference.sum() <= 0 or live.sum() <= 0:
        return None
    expected = (reference + 0.5) / (reference.sum() + 0.5 * reference.size)
    actual = (live + 0.5) / (live.sum() + 0.5 * live.size)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def numeric_drift(profile: dict, live_counts: np.ndarray, live_sample: np.ndarray, missing: int) -> dict:
    """PSI on the reference bins and KS of the live sample against the reference sample."""
    reference_counts = np.asarray(profile["counts"], dtype=float)
    rows = int(np.sum(live_counts))
    reference_sample = np.asarray(profile.get("sample", []), dtype=float)
    statistic, p_value = ks_test(reference_sample, np.asarray(live_sample, dtype=float))
    return {
        "kind": "numeric",
        "rows": rows,
        "missing": int(missing),
        "psi": _rounded(population_stability_index(reference_counts, live_counts)),
        "ks_statistic": _rounded(statistic),
        "ks_p_value": _rounded(p_value, 8),
        "ks_sample": len(live_sample),
        "reference_mean": profile.get("mean"),
        "live_mean": _rounded(float(np.mean(live_sample))) if len(live_sample) else None,
        "edges": profile["edges"],
        "reference_counts": [int(count) for count in reference_counts],
        "live_counts": [int(count) for count in live_counts],
    }


def ks_test(reference: np.ndarray, live: np.ndarray) -> tuple[float | None, float | None]:
    if reference.size < 2 or live.size < 2:
        return None, None
    result = ks_2samp(reference, live)
    return float(result.statistic), float(result.pvalue)


def categorical_drift(profile: dict, live_counts: dict[str, int]) -> dict:
    """PSI and chi-square on the reference's top categories plus "other"; the share of live values in
    no category the reference has seen."""
    top = list(profile["categories"])
    known = set(profile.get("known", top))
    rows = int(sum(live_counts.values()))
    live_top = [int(live_counts.get(name, 0)) for name in top]
    live_other = rows - sum(live_top)
    unseen = sum(count for name, count in live_counts.items() if name not in known)
    reference = np.asarray([*profile["categories"].values(), profile["other"]], dtype=float)
    live = np.asarray([*live_top, live_other], dtype=float)
    statistic, p_value = chi_square_test(reference, live)
    return {
        "kind": "categorical",
        "rows": rows,
        "psi": _rounded(population_stability_index(reference, live)),
        "chi2_statistic": _rounded(statistic),
        "chi2_p_value": _rounded(p_value, 8),
        "unseen_share": _rounded(unseen / rows) if rows else None,
        "unseen_categories": sorted(name for name in live_counts if name not in known)[:20],
        "categories": [*top, OTHER],
        "reference_counts": [int(count) for count in reference],
        "live_counts": [int(count) for count in live],
    }


def chi_square_test(reference: np.ndarray, live: np.ndarray) -> tuple[float | None, float | None]:
    """Chi-square test of homogeneity of two count vectors (categories empty on both sides dropped)."""
    table = np.vstack([reference, live])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or reference.sum() <= 0 or live.sum() <= 0:
        return None, None
    result = chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def score_drift(profile: dict, live_counts: np.ndarray, live_sample: np.ndarray) -> dict:
    """The scores' PSI on the held-out score bins and KS against the held-out score sample."""
    drift = numeric_drift(
        {"counts": profile["counts"], "sample": profile.get("sample", []), "edges": profile["edges"]},
        live_counts,
        live_sample,
        missing=0,
    )
    drift.pop("reference_mean")
    drift["kind"] = "score"
    drift["reference_mean"] = _rounded(float(np.mean(profile["sample"]))) if profile.get("sample") else None
    return drift


def _rounded(value: float | None, digits: int = 6) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)
