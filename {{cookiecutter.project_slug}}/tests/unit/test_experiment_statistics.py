"""A/B statistics checked against scipy: Wilson intervals and the pooled two-proportion z-test."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from {{ cookiecutter.package_name }}.serving.experiment import (
    LabelledRow,
    Proportion,
    compare_variants,
    two_proportion_z_test,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("successes", "trials"), [(0, 10), (3, 10), (10, 10), (57, 400), (1, 1), (480, 500)])
def test_wilson_interval_equals_scipys(successes: int, trials: int) -> None:
    expected = stats.binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = Proportion(successes, trials).interval()
    assert low == pytest.approx(expected.low, abs=1e-12)
    assert high == pytest.approx(expected.high, abs=1e-12)


@pytest.mark.parametrize(
    ("a", "b"), [((120, 500), (150, 480)), ((5, 40), (9, 38)), ((300, 1000), (300, 1000)), ((2, 7), (6, 9))]
)
def test_z_test_equals_the_chi_square_test_of_the_two_by_two_table(a, b) -> None:
    # Without continuity correction the chi-square statistic of the 2x2 table is z squared, with the
    # same two-sided p-value: an independent route to the same test.
    table = [[a[0], a[1] - a[0]], [b[0], b[1] - b[0]]]
    chi2, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    test = two_proportion_z_test(Proportion(*a), Proportion(*b))
    assert test.z**2 == pytest.approx(chi2, rel=1e-9, abs=1e-12)
    assert test.p_value == pytest.approx(p_value, rel=1e-9)
    assert test.difference == pytest.approx(b[0] / b[1] - a[0] / a[1])
    assert math.copysign(1, test.z) == math.copysign(1, test.difference) or test.z == 0


def test_the_z_test_needs_both_samples_and_is_neutral_when_every_outcome_is_the_same() -> None:
    assert two_proportion_z_test(Proportion(0, 0), Proportion(3, 10)) is None
    identical = two_proportion_z_test(Proportion(0, 20), Proportion(0, 30))
    assert (identical.z, identical.p_value) == (0.0, 1.0)
    assert Proportion(0, 0).interval() is None


def test_compare_variants_counts_positive_labels_and_correct_predictions_per_variant() -> None:
    rows = [
        LabelledRow("champion", 3, ">50K", ">50K"),
        LabelledRow("champion", 3, "<=50K", ">50K"),
        LabelledRow("champion", 3, "<=50K", None),
        LabelledRow("challenger", 4, ">50K", ">50K"),
        LabelledRow("challenger", 4, ">50K", "<=50K"),
    ]
    report = compare_variants("exp", "staging", rows, ">50K", served_requests=9)
    champion, challenger = report.variants["champion"], report.variants["challenger"]
    assert (champion.positive.successes, champion.positive.trials) == (1, 3)
    assert (champion.correct.successes, champion.correct.trials) == (1, 2)
    assert (challenger.positive.successes, challenger.positive.trials) == (2, 2)
    assert (challenger.correct.successes, challenger.correct.trials) == (1, 2)
    document = report.to_dict()
    assert list(document["variants"]) == ["champion", "challenger"]
    assert document["challenger_minus_champion"]["positive_label_rate"]["difference"] == pytest.approx(
        1 - 1 / 3
    )


def test_one_variant_alone_is_reported_but_not_tested() -> None:
    report = compare_variants(
        "exp", "staging", [LabelledRow("champion", 3, ">50K")], ">50K", served_requests=1
    )
    assert report.positive_rate_test is None and report.accuracy_test is None
    assert report.to_dict()["variants"]["champion"]["accuracy"] is None
