"""Held-out sets too small to measure anything are warned about."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.governance.fairness import compute_fairness
from {{ cookiecutter.package_name }}.governance.sample_size import held_out_warnings

pytestmark = pytest.mark.unit


def audit(size: int, groups: list[str], min_group_size: int):
    labels = pd.Series([index % 2 for index in range(size)])
    sensitive = pd.DataFrame({"sex": [groups[index % len(groups)] for index in range(size)]})
    report = compute_fairness(labels, np.asarray(labels), sensitive, min_group_size=min_group_size)
    return labels, report


def test_thirty_rows_are_warned_about() -> None:
    labels, report = audit(30, ["F", "M"], min_group_size=30)
    warnings = held_out_warnings(labels, report)
    assert any("only 30 rows (15 positive, 15 negative)" in warning for warning in warnings)
    assert any("fairness of sex cannot be measured: 0 of its 2 groups" in warning for warning in warnings)


def test_a_large_enough_held_out_set_gets_no_warning() -> None:
    labels, report = audit(400, ["F", "M"], min_group_size=30)
    assert held_out_warnings(labels, report) == []


def test_one_measurable_group_is_not_enough_for_a_gap() -> None:
    labels, report = audit(400, ["F"] * 19 + ["M"], min_group_size=30)
    (warning,) = held_out_warnings(labels, report)
    assert "1 of its 2 groups have at least 30 held-out rows" in warning
