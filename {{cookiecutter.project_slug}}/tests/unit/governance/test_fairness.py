"""The fairness audit on hand-made tables whose rates are simple fractions worked out in the comments."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.governance.fairness import compute_fairness, describe_largest_gap, fairness_gaps

pytestmark = pytest.mark.unit

# Six women, six men.
#   F: labels 1 1 1 0 0 0, predictions 1 0 0 1 0 0
#      selection rate 2/6 = 1/3, TPR 1/3, FPR 1/3, accuracy (1 + 0 + 0 + 0 + 1 + 1)/6 = 1/2
#   M: labels 1 1 0 0 0 0, predictions 1 1 1 0 0 0
#      selection rate 3/6 = 1/2, TPR 2/2 = 1, FPR 1/4, accuracy 5/6
# Demographic parity: difference 1/2 - 1/3 = 1/6, ratio (1/3)/(1/2) = 2/3.
# Equalized odds: difference max(|1 - 1/3|, |1/4 - 1/3|) = 2/3, ratio min((1/3)/1, (1/4)/(1/3)) = 1/3.
SEX = ["F"] * 6 + ["M"] * 6
LABELS = [1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0]
PREDICTIONS = [1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 0]
RACE = ["A", "A", "A", "B", "B", "B", "A", "B", "B", "B", "B", "B"]


def audit_of(labels, predictions, sensitive: dict[str, list[str]], min_group_size: int = 1):
    return compute_fairness(
        pd.Series(labels), np.asarray(predictions), pd.DataFrame(sensitive), min_group_size=min_group_size
    )


def test_rates_by_group_are_the_hand_computed_fractions() -> None:
    audit = audit_of(LABELS, PREDICTIONS, {"sex": SEX}).audit("sex")
    expected = {
        "F": {"count": 6, "selection_rate": 1 / 3, "accuracy": 1 / 2, "tpr": 1 / 3, "fpr": 1 / 3},
        "M": {"count": 6, "selection_rate": 1 / 2, "accuracy": 5 / 6, "tpr": 1.0, "fpr": 1 / 4},
    }
    assert list(audit.by_group.index) == ["F", "M"]
    for group, values in expected.items():
        row = audit.by_group.loc[group]
        assert row["count"] == values["count"]
        assert row["selection_rate"] == pytest.approx(values["selection_rate"])
        assert row["accuracy"] == pytest.approx(values["accuracy"])
        assert row["true_positive_rate"] == pytest.approx(values["tpr"])
        assert row["false_positive_rate"] == pytest.approx(values["fpr"])


def test_parity_and_equalized_odds_gaps_match_their_definitions() -> None:
    report = audit_of(LABELS, PREDICTIONS, {"sex": SEX})
    gaps = report.audit("sex").gaps
    assert gaps["demographic_parity_difference"] == pytest.approx(abs(1 / 2 - 1 / 3), abs=1e-6)
    assert gaps["demographic_parity_ratio"] == pytest.approx((1 / 3) / (1 / 2), abs=1e-6)
    assert gaps["equalized_odds_difference"] == pytest.approx(max(1 - 1 / 3, 1 / 3 - 1 / 4), abs=1e-6)
    assert gaps["equalized_odds_ratio"] == pytest.approx(min((1 / 3) / 1, (1 / 4) / (1 / 3)), abs=1e-6)
    # 5 of 12 predicted positive, 8 of 12 correct
    assert report.overall["selection_rate"] == pytest.approx(5 / 12)
    assert report.overall["accuracy"] == pytest.approx(8 / 12)


def test_two_sensitive_columns_add_an_intersection_audit() -> None:
    report = audit_of(LABELS, PREDICTIONS, {"sex": SEX, "race": RACE})
    assert [audit.feature for audit in report.audits] == ["sex", "race", "intersection"]
    by_group = report.audit("intersection").by_group
    counts = by_group["count"].to_dict()
    assert counts == {"sex=F, race=A": 3, "sex=F, race=B": 3, "sex=M, race=A": 1, "sex=M, race=B": 5}
    assert sum(counts.values()) == len(LABELS)
    # men of race B: labels 1 0 0 0 0, predictions 1 1 0 0 0 -> selection rate 2/5
    assert by_group.loc["sex=M, race=B", "selection_rate"] == pytest.approx(2 / 5)
    assert "intersection" not in report.policy_input()


def test_single_sensitive_column_has_no_intersection_audit() -> None:
    report = audit_of(LABELS, PREDICTIONS, {"sex": SEX})
    assert [audit.feature for audit in report.audits] == ["sex"]


def test_small_group_is_kept_and_flagged_but_left_out_of_the_measured_gaps() -> None:
    # A thirteenth person, sex X, label 0, predicted 1: selection rate 1 on a group of one.
    report = audit_of([*LABELS, 0], [*PREDICTIONS, 1], {"sex": [*SEX, "X"]}, min_group_size=2)
    audit = report.audit("sex")
    assert audit.small_groups == ["X"]
    assert audit.by_group.loc["X", "count"] == 1
    assert audit.by_group.loc["X", "selection_rate"] == pytest.approx(1.0)
    # measured over F and M only, as in the table above
    assert audit.gaps["demographic_parity_difference"] == pytest.approx(1 / 6, abs=1e-6)
    assert audit.gaps["demographic_parity_ratio"] == pytest.approx(2 / 3, abs=1e-6)
    # over all groups: 1 - 1/3 and (1/3)/1
    assert audit.gaps_all_groups["demographic_parity_difference"] == pytest.approx(2 / 3, abs=1e-6)
    assert audit.gaps_all_groups["demographic_parity_ratio"] == pytest.approx(1 / 3, abs=1e-6)
    groups = {group["group"]: group for group in audit.to_dict()["groups"]}
    assert groups["X"]["small"] is True
    assert groups["F"]["small"] is False
    assert report.policy_input()["sex"]["small_groups"] == ["X"]


def test_gaps_are_none_when_fewer_than_two_groups_are_measurable() -> None:
    report = audit_of(LABELS, PREDICTIONS, {"sex": ["F"] * 11 + ["M"]}, min_group_size=2)
    audit = report.audit("sex")
    assert audit.small_groups == ["M"]
    assert set(audit.gaps.values()) == {None}
    assert set(audit.gaps_all_groups.values()) != {None}
    json.dumps(report.to_dict(), allow_nan=False)
    assert report.largest_gap() is None
    assert "No fairness gap could be measured" in describe_largest_gap(report)


def test_ratio_of_zero_selection_rates_is_none_not_nan() -> None:
    # nobody is predicted positive: 0/0 selection-rate ratio
    gaps = fairness_gaps(np.array([1, 0, 1, 0]), np.zeros(4, dtype=int), np.array(["a", "a", "b", "b"]))
    assert gaps["demographic_parity_difference"] == 0.0
    assert gaps["demographic_parity_ratio"] is None
    json.dumps(gaps, allow_nan=False)


def test_group_without_positive_labels_has_no_true_positive_rate() -> None:
    # a: labels 1 0, predictions 1 0 -> TPR 1, FPR 0.  b: labels 0 0, predictions 0 0 -> TPR 0/0.
    report = audit_of([1, 0, 0, 0], [1, 0, 0, 0], {"group": ["a", "a", "b", "b"]})
    serialised = report.to_dict()
    json.dumps(serialised, allow_nan=False)
    groups = {group["group"]: group for group in serialised["features"][0]["groups"]}
    assert groups["b"]["true_positive_rate"] is None
    assert serialised["features"][0]["equalized_odds_difference"] is None


def test_largest_gap_is_described_with_feature_groups_and_rates() -> None:
    # equalized odds (2/3, driven by TPR 100% for M vs 33.3% for F) beats parity (1/6)
    sentence = describe_largest_gap(audit_of(LABELS, PREDICTIONS, {"sex": SEX, "race": RACE}))
    assert "equalized odds for sex" in sentence
    assert "true positive rate is 100.0% for 'M' but 33.3% for 'F'" in sentence
    assert "0.667" in sentence


def test_parity_gap_is_described_when_it_is_the_largest() -> None:
    # perfect predictions: TPR 1 and FPR 0 everywhere, selection rates F 2/6 and M 4/6
    labels = [1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0]
    sentence = describe_largest_gap(audit_of(labels, labels, {"sex": SEX}))
    assert "demographic parity for sex" in sentence
    assert "66.7% of 'M' but 33.3% of 'F'" in sentence
    assert "0.333" in sentence


def test_gaps_read_off_the_table_equal_fairlearns_gap_functions() -> None:
    rng = np.random.default_rng(7)
    size = 600
    labels = rng.integers(0, 2, size)
    predictions = np.where(rng.random(size) < 0.8, labels, 1 - labels)
    groups = rng.choice(["a", "b", "c"], size, p=[0.5, 0.3, 0.2])
    report = compute_fairness(pd.Series(labels), predictions, pd.DataFrame({"g": groups}), min_group_size=1)
    independent = fairness_gaps(labels, predictions, groups)
    audit = report.audit("g")
    for name, value in independent.items():
        assert audit.gaps[name] == pytest.approx(value, abs=1e-6), name


def test_large_held_out_sets_are_audited_on_a_bounded_stratified_sample() -> None:
    rng = np.random.default_rng(3)
    size = 40_000
    labels = rng.integers(0, 2, size)
    predictions = labels.copy()
    groups = np.where(rng.random(size) < 0.01, "rare", "common")  # about 400 rare rows, kept whole
    sensitive = pd.DataFrame({"g": groups})
    report = compute_fairness(pd.Series(labels), predictions, sensitive, min_group_size=10, max_rows=5_000)
    counts = report.audit("g").by_group["count"]
    assert report.rows_held_out == size
    assert 5_000 <= report.rows_audited < 6_000
    assert counts["rare"] == int((groups == "rare").sum())
    full = compute_fairness(pd.Series(labels), predictions, sensitive, min_group_size=10)
    assert full.rows_audited == size


def test_sampling_keeps_each_groups_rates_unbiased() -> None:
    # group a: 1,500 positives in 41,500 rows; group b: 20,000 in 60,000; perfect predictions
    labels = np.concatenate([np.ones(1_500), np.zeros(40_000), np.ones(20_000), np.zeros(40_000)]).astype(int)
    groups = np.array(["a"] * 41_500 + ["b"] * 60_000)
    sensitive = pd.DataFrame({"g": groups})
    report = compute_fairness(pd.Series(labels), labels.copy(), sensitive, min_group_size=10, max_rows=50_000)
    table = report.audit("g").by_group
    assert report.rows_audited < len(labels)
    assert table.loc["a", "selection_rate"] == pytest.approx(1_500 / 41_500, abs=0.005)
    assert table.loc["b", "selection_rate"] == pytest.approx(20_000 / 60_000, abs=0.01)
    assert report.audit("g").gaps["demographic_parity_difference"] == pytest.approx(
        20_000 / 60_000 - 1_500 / 41_500, abs=0.01
    )
    assert table.loc["a", "count"] == 41_500 and table.loc["b", "count"] == 60_000
    assert report.overall["selection_rate"] == pytest.approx(21_500 / 101_500)
