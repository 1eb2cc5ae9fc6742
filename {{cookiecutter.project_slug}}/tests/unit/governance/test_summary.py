"""The decision as the PR comment, EVIDENCE.md and the terminal show it: one object, three templates."""

from __future__ import annotations

import re

import pytest

from {{ cookiecutter.package_name }}.governance.policy import Decision
from {{ cookiecutter.package_name }}.governance.summary import (
    render_decision_text,
    render_evidence_summary,
    render_metrics_text,
    render_pull_request_comment,
    summarise,
)

pytestmark = pytest.mark.unit

METRICS = {"roc_auc": 0.9031, "balanced_accuracy": 0.7712}
CHAMPION_METRICS = {"roc_auc": 0.8950, "balanced_accuracy": 0.7801}
FAIRNESS = {
    "features": [
        {
            "feature": "race|ethnicity",
            "demographic_parity_difference": 0.1234,
            "equalized_odds_difference": None,
            "small_groups": ["Other"],
        },
        {"feature": "intersection", "demographic_parity_difference": 0.5, "equalized_odds_difference": 0.5},
    ]
}
SHAP = {"importance": [{"feature": f"f{index}", "mean_abs_shap": 1 / (index + 1)} for index in range(8)]}


def decision(champion: dict | None, allow: bool = True) -> Decision:
    return Decision(
        environment="staging",
        allow=allow,
        reasons=[] if allow else ["roc_auc is 0.903, minimum 0.950 in staging"],
        notes=["a note"],
        limits={},
        policy_pack="strict",
        model={"name": "income-classifier", "version": 5},
        champion=champion,
        warnings=["the held-out set has only 30 rows"],
    )


COMPARED = {
    "environment": "staging",
    "status": "compared",
    "version": 4,
    "metrics": CHAMPION_METRICS,
    "rows": 1500,
    "same_data": True,
    "detail": "",
}


def table_rows(markdown: str, first_cell: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        for line in markdown.splitlines()
        if line.startswith(f"| {first_cell}")
    ]


def test_pull_request_comment_puts_the_champion_on_the_same_rows_beside_the_candidate() -> None:
    summary = summarise(decision(COMPARED), METRICS, FAIRNESS, SHAP)
    comment = render_pull_request_comment(summary, "<!-- marker -->")
    assert comment.startswith("<!-- marker -->\n")
    assert "**Policy decision for staging: ALLOW** (policy pack `strict`)" in comment
    assert "champion v4 (same rows)" in comment
    (row,) = table_rows(comment, "roc_auc")
    expected_change = METRICS["roc_auc"] - CHAMPION_METRICS["roc_auc"]
    assert row == [
        "roc_auc",
        f"{METRICS['roc_auc']:.4f}",
        f"{CHAMPION_METRICS['roc_auc']:.4f}",
        f"{expected_change:+.4f}",
    ]
    (fairness_row,) = table_rows(comment, "race")
    assert fairness_row == [r"race\|ethnicity", "0.123", "n/a", "Other"]
    assert "intersection" not in comment
    assert "Top SHAP features: f0 (1.000), f1 (0.500), f2 (0.333), f3 (0.250), f4 (0.200)" in comment
    assert "> **Warning:** the held-out set has only 30 rows" in comment
    assert "- note: a note" in comment


def test_evidence_summary_and_comment_share_their_tables() -> None:
    summary = summarise(decision(COMPARED, allow=False), METRICS, FAIRNESS, SHAP)
    evidence = render_evidence_summary(summary)
    comment = render_pull_request_comment(summary, "<!-- marker -->")
    assert evidence.startswith("# Evidence for income-classifier version 5 in staging\n")
    assert "Policy decision (strict): **DENY**" in evidence
    tables = [line for line in evidence.splitlines() if line.startswith("|")]
    assert tables and all(line in comment for line in tables)
    assert "- roc_auc is 0.903, minimum 0.950 in staging" in evidence


def test_without_a_compared_champion_there_is_no_champion_column() -> None:
    first = {"environment": "staging", "status": "first_release", "version": None}
    comment = render_pull_request_comment(summarise(decision(first), METRICS, FAIRNESS, SHAP), "m")
    assert "| metric | candidate |" in comment and "champion v" not in comment
    assert "Champion: no champion in staging yet (first release)." in comment


def test_terminal_decision_names_the_current_champion_instead_of_none_yet() -> None:
    own = {"environment": "staging", "status": "is_champion", "version": 5}
    text = render_decision_text(decision(own))
    assert text.splitlines()[0] == "Policy decision for staging: ALLOW (policy pack strict)"
    assert "champion: version 5 is the current champion in staging" in text
    assert "none yet" not in text
    assert "  - note: a note" in text and "  - warning: the held-out set has only 30 rows" in text


def test_terminal_metrics_table_lines_up_model_and_baseline() -> None:
    text = render_metrics_text({"roc_auc": 0.91234}, {"roc_auc": 0.5})
    assert text.splitlines() == [
        f"  {'metric':<20}{'model':>10}{'baseline':>10}",
        f"  {'roc_auc':<20}{0.9123:>10.4f}{0.5:>10.4f}",
    ]
