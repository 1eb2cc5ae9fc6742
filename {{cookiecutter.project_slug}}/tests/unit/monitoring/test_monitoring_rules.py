"""monitoring.rego on hand-written reports: which action, and what each reason says."""

from __future__ import annotations

import copy

import pytest
from fixtures import PROJECT_ROOT

from {{ cookiecutter.package_name }}.monitoring.policy import decide, load_monitoring_policy

pytestmark = pytest.mark.unit

ANALYSIS = {"min_requests": 500, "max_error_rate": 0.01, "max_p99_latency_ms": 250}
QUIET = {
    "environment": "staging",
    "features": {
        "age": {"kind": "numeric", "rows": 1000, "psi": 0.01, "ks_p_value": 0.6},
        "sex": {"kind": "categorical", "rows": 1000, "psi": 0.0, "chi2_p_value": 0.9, "unseen_share": 0.0},
    },
    "score": {"rows": 1000, "psi": 0.01, "ks_p_value": 0.5},
    "performance": {},
    "fairness": {},
    "traffic": {"champion": {"requests": 1000, "errors": 0, "error_rate": 0.0, "latency_ms": {"p99": 20.0}}},
    "rollout": {
        "strategy": "direct",
        "challenger_weight": 0,
        "steps": [10, 25, 50, 100],
        "analysis": ANALYSIS,
    },
}


@pytest.fixture(scope="module")
def policy():
    return load_monitoring_policy(PROJECT_ROOT / "policies")


def report(**changes) -> dict:
    document = copy.deepcopy(QUIET)
    for path, value in changes.items():
        target = document
        *parents, last = path.split("__")
        for key in parents:
            target = target[key]
        target[last] = value
    return document


def canary(challenger: dict, weight: int = 10) -> dict:
    document = report()
    document["rollout"] = {**document["rollout"], "strategy": "canary", "challenger_weight": weight}
    document["traffic"]["challenger"] = challenger
    return document


def test_a_quiet_window_is_ok(policy) -> None:
    decision = decide(policy, report())
    assert decision.action == "ok" and decision.reasons == []
    assert decision.canary is None and decision.retrain is False
    assert decision.drifted == {"age": False, "sex": False}


def test_a_drifted_feature_warns_with_value_limit_and_environment(policy) -> None:
    decision = decide(
        policy, report(features__age={"kind": "numeric", "rows": 1000, "psi": 0.31, "ks_p_value": 0.0})
    )
    assert decision.action == "warn"
    limits = policy.limits.limits_for("staging").drift
    assert decision.reasons == [
        f"PSI of age is 0.310, limit {limits.max_psi:.3f} in staging "
        f"(KS p-value 0.000, limit {limits.max_p_value:.3f})"
    ]
    assert decision.drifted["age"] is True


def test_a_large_psi_the_test_does_not_confirm_is_not_drift(policy) -> None:
    decision = decide(
        policy, report(features__age={"kind": "numeric", "rows": 1000, "psi": 0.5, "ks_p_value": 0.2})
    )
    assert decision.drifted["age"] is False and decision.action == "ok"


def test_the_environment_entry_of_the_pack_replaces_the_default_section(policy) -> None:
    # The packs' production entry, under the name of the project's last environment.
    [last] = policy.limits.environments
    limits = policy.limits.limits_for(last).drift
    assert limits.min_rows > policy.limits.default.drift.min_rows  # the packs judge production on more rows
    few = {"kind": "numeric", "rows": limits.min_rows - 1, "psi": 0.9, "ks_p_value": 0.0}
    decision = decide(policy, report(environment=last, features__age=few))
    assert decision.drifted["age"] is False
    assert (
        f"drift of age not judged: {limits.min_rows - 1} live rows, {limits.min_rows} needed in {last}"
        in (decision.notes)
    )


def test_a_drifted_score_asks_for_retraining(policy) -> None:
    decision = decide(policy, report(score={"rows": 1000, "psi": 0.4, "ks_p_value": 0.0}))
    assert decision.action == "retrain" and decision.score_drifted is True
    assert decision.reasons[0].startswith("PSI of the score is 0.400, limit ")


def test_a_live_metric_under_its_minimum_asks_for_retraining_once_enough_labels_are_in(policy) -> None:
    poor = {"labels": 500, "accuracy": 0.5, "balanced_accuracy": 0.5, "roc_auc": 0.5}
    assert decide(policy, report(performance={"champion": poor})).action == "retrain"
    assert decide(policy, report(performance={"champion": {**poor, "labels": 10}})).action == "ok"


def test_a_passing_canary_advances_to_the_next_step(policy) -> None:
    healthy = {"requests": 600, "errors": 0, "error_rate": 0.0, "latency_ms": {"p99": 40.0}}
    decision = decide(policy, canary(healthy, weight=25))
    assert decision.action == "advance" and decision.canary == "advance" and decision.next_weight == 50


def test_a_passing_canary_still_advances_when_the_window_asks_for_retraining(policy) -> None:
    healthy = {"requests": 600, "errors": 0, "error_rate": 0.0, "latency_ms": {"p99": 40.0}}
    document = canary(healthy)
    document["score"] = {"rows": 1000, "psi": 0.9, "ks_p_value": 0.0}
    decision = decide(policy, document)
    assert decision.action == "retrain" and decision.retrain is True
    assert decision.canary == "advance" and decision.next_weight == 25


def test_a_canary_at_the_last_step_does_not_advance(policy) -> None:
    healthy = {"requests": 600, "errors": 0, "error_rate": 0.0, "latency_ms": {"p99": 40.0}}
    decision = decide(policy, canary(healthy, weight=100))
    assert decision.action == "ok" and decision.next_weight is None
    assert any("last step of rollout.steps" in note for note in decision.notes)


def test_a_failing_canary_rolls_back_and_an_undecided_one_holds(policy) -> None:
    failing = {"requests": 600, "errors": 30, "error_rate": 0.05, "latency_ms": {"p99": 40.0}}
    decision = decide(policy, canary(failing))
    assert decision.action == "rollback"
    assert decision.reasons == [
        "error rate of the challenger is 0.050, limit 0.010 in staging (600 requests)"
    ]
    young = {"requests": 100, "errors": 1, "error_rate": 0.01, "latency_ms": {"p99": 40.0}}
    assert decide(policy, canary(young)).action == "hold"
    unmeasured = {"requests": 600, "errors": 0, "error_rate": None, "latency_ms": {"p99": None}}
    assert decide(policy, canary(unmeasured)).action == "hold"
