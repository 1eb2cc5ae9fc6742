"""Is the held-out evidence large enough to measure anything? Warnings for people, not a gate.

A held-out set of a few dozen rows gives metrics with a wide margin of error, and sensitive groups
below `governance.min_group_size` leave the fairness gaps unmeasured (null). The policy denies on
null gaps where it has limits; these warnings say why, in the command output and on the model card.
"""

from __future__ import annotations

import pandas as pd

from {{ cookiecutter.package_name }}.governance.fairness import INTERSECTION, FairnessReport

# Below these, a held-out metric moves by several points when a handful of rows change.
MIN_HELD_OUT_ROWS = 100
MIN_HELD_OUT_ROWS_PER_CLASS = 10


def held_out_warnings(labels: pd.Series, fairness: FairnessReport) -> list[str]:
    """One sentence per reason the held-out set is too small to measure the model or its fairness."""
    warnings = []
    rows = len(labels)
    positives = int((pd.Series(labels) == 1).sum())
    negatives = rows - positives
    if rows < MIN_HELD_OUT_ROWS or min(positives, negatives) < MIN_HELD_OUT_ROWS_PER_CLASS:
        warnings.append(
            f"the held-out set has only {rows} rows ({positives} positive, {negatives} negative): its "
            f"metrics are uncertain; use more data or a larger model.test_size (at least "
            f"{MIN_HELD_OUT_ROWS} rows and {MIN_HELD_OUT_ROWS_PER_CLASS} of each class)"
        )
    for audit in fairness.audits:
        if audit.feature == INTERSECTION:
            continue
        groups = len(audit.by_group)
        measured = groups - len(audit.small_groups)
        if measured < 2:
            warnings.append(
                f"the fairness of {audit.feature} cannot be measured: {measured} of its {groups} groups "
                f"have at least {fairness.min_group_size} held-out rows (governance.min_group_size) and "
                "gaps need two"
            )
    return warnings
