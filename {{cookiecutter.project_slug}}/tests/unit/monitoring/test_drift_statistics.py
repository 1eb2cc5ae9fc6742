"""Drift statistics on small tables, against the formulas written out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.governance.profile import bin_counts, categorical_profile, numeric_profile
from {{ cookiecutter.package_name }}.monitoring.drift import (
    categorical_drift,
    chi_square_test,
    population_stability_index,
)
from {{ cookiecutter.package_name }}.monitoring.live import live_performance, wilson_interval

pytestmark = pytest.mark.unit


def test_psi_is_the_sum_of_share_differences_times_their_log_ratio() -> None:
    reference, live = np.array([50, 30, 20]), np.array([20, 30, 50])
    expected_shares = (reference + 0.5) / (100 + 1.5)
    live_shares = (live + 0.5) / (100 + 1.5)
    by_hand = sum(
        (actual - expected) * math.log(actual / expected)
        for actual, expected in zip(live_shares, expected_shares, strict=True)
    )
    assert population_stability_index(reference, live) == pytest.approx(by_hand)


def test_psi_of_the_same_shares_is_zero_and_of_an_empty_side_undefined() -> None:
    assert population_stability_index(np.array([10, 20]), np.array([100, 200])) == pytest.approx(0, abs=1e-3)
    assert population_stability_index(np.array([10, 20]), np.array([0, 0])) is None


def test_a_value_on_an_edge_falls_in_the_bin_below_it() -> None:
    assert bin_counts(np.array([1.0, 2.0, 2.5, 3.0, 9.0, np.nan]), [2.0, 3.0]).tolist() == [2, 2, 1]


def test_chi_square_is_the_sum_of_squared_deviations_over_expected_counts() -> None:
    reference, live = np.array([30.0, 50.0, 20.0]), np.array([10.0, 30.0, 60.0])
    table = np.vstack([reference, live])
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic, _ = chi_square_test(reference, live)
    assert statistic == pytest.approx(((table - expected) ** 2 / expected).sum())


def test_unseen_share_counts_only_categories_training_never_had() -> None:
    profile = categorical_profile(pd.Series(["a"] * 6 + ["b"] * 3 + ["c"]), top=2)
    assert profile["categories"] == {"a": 6, "b": 3} and profile["other"] == 1
    drift = categorical_drift(profile, {"a": 4, "c": 2, "new": 4})
    assert drift["unseen_share"] == pytest.approx(0.4)
    assert drift["unseen_categories"] == ["new"]
    assert drift["live_counts"] == [4, 0, 6]  # "c" and "new" both land in (other)


def test_the_numeric_profile_keeps_bins_and_a_bounded_seeded_sample() -> None:
    values = pd.Series(np.arange(5000, dtype=float))
    profile = numeric_profile(values)
    assert sum(profile["counts"]) == 5000
    assert len(profile["sample"]) == 1000
    assert profile["sample"] == numeric_profile(values)["sample"]


def test_wilson_interval_matches_the_published_value_for_8_of_10() -> None:
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)


def test_live_performance_leaves_roc_auc_out_with_too_few_labels() -> None:
    figures = live_performance(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]), np.array([0.1, 0.9, 0.4, 0.2]))
    assert figures["labels"] == 4 and figures["accuracy"] == 0.75 and figures["roc_auc"] is None
