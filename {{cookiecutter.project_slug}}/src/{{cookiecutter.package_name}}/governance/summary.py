"""The decision and the evidence in brief, as the PR comment, EVIDENCE.md and the terminal show them.

One object (`summarise`) holds every figure; the templates in governance/templates/ render it, so a
table reads the same wherever it appears. The candidate's metrics stand beside the champion's
measured on the same held-out rows (recorded in the decision), never beside stored figures of
another held-out set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from {{ cookiecutter.package_name }}.governance import evidence
from {{ cookiecutter.package_name }}.governance.comparison import ChampionComparison
from {{ cookiecutter.package_name }}.governance.fairness import INTERSECTION
from {{ cookiecutter.package_name }}.governance.model_card import METRIC_LABELS
from {{ cookiecutter.package_name }}.governance.policy import Decision
from {{ cookiecutter.package_name }}.governance.rendering import render

TOP_FEATURES = 5


def champion_line(decision: Decision) -> str:
    """Which champion the decision compared against, in one sentence."""
    if decision.champion is None:
        return f"no champion comparison recorded for {decision.environment}"
    return ChampionComparison.from_dict(decision.champion).describe()


def summarise(
    decision: Decision,
    metrics: dict[str, float] | None = None,
    fairness: dict[str, Any] | None = None,
    shap: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the summary templates show, from the decision and the bundle's JSON documents."""
    champion_metrics = (decision.champion or {}).get("metrics") or {}
    metric_rows = [
        {
            "name": name,
            "label": METRIC_LABELS.get(name, name),
            "candidate": value,
            "champion": champion_metrics.get(name),
            "change": None
            if champion_metrics.get(name) is None or value is None
            else value - champion_metrics[name],
        }
        for name, value in (metrics or {}).items()
    ]
    fairness_rows = [
        {
            "feature": item.get("feature"),
            "parity_difference": item.get("demographic_parity_difference"),
            "equalized_odds_difference": item.get("equalized_odds_difference"),
            "small_groups": item.get("small_groups", []),
        }
        for item in (fairness or {}).get("features", [])
        if item.get("feature") != INTERSECTION
    ]
    return {
        "model": decision.model,
        "environment": decision.environment,
        "allow": decision.allow,
        "verdict": "ALLOW" if decision.allow else "DENY",
        "policy_pack": decision.policy_pack,
        "champion": decision.champion,
        "champion_line": champion_line(decision),
        "metrics": metric_rows,
        "fairness": fairness_rows,
        "top_features": (shap or {}).get("importance", [])[:TOP_FEATURES],
        "reasons": decision.reasons,
        "notes": decision.notes,
        "warnings": decision.warnings,
    }


def summarise_bundle(directory: Path, decision: Decision) -> dict[str, Any]:
    """`summarise` over the evidence bundle in `directory` (a missing file leaves its table empty)."""

    def document(name: str) -> dict:
        return evidence.read_json(directory, name) if (directory / name).is_file() else {}

    return summarise(
        decision, document("metrics.json").get("metrics"), document("fairness.json"), document("shap.json")
    )


def render_pull_request_comment(summary: dict[str, Any], marker: str) -> str:
    """Markdown of the sticky pull-request comment (and the job summary), starting with `marker`."""
    return render("pull_request.md.j2", marker=marker, **summary)


def render_evidence_summary(summary: dict[str, Any]) -> str:
    """EVIDENCE.md of an environment branch."""
    return render("evidence_summary.md.j2", **summary)


def render_decision_text(decision: Decision) -> str:
    """The decision as the command line prints it."""
    return render("decision.txt.j2", **summarise(decision))


def render_metrics_text(metrics: dict[str, float], baseline: dict[str, float]) -> str:
    """Held-out metrics beside the majority-class baseline, as the command line prints them."""
    return render("metrics.txt.j2", metrics=metrics, baseline=baseline)
