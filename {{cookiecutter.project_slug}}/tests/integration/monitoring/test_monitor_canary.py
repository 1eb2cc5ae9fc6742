"""Canary analysis through `monitor`: the challenger's requests against rollout.analysis decide
rollback, hold or advance to the next of rollout.steps."""

from __future__ import annotations

import pytest
from monitoring_support import Workspace, adult_test_rows, log_failures, log_rows, write_environment

from {{ cookiecutter.package_name }}.commands.monitoring import monitor

pytestmark = pytest.mark.integration

ANALYSIS = {"min_requests": 300, "max_error_rate": 0.01, "max_p99_latency_ms": 250}
ROLLOUT = {"strategy": "canary", "challenger_weight": 10, "steps": [10, 25, 50, 100], "analysis": ANALYSIS}


def canary(
    workspace: Workspace, name: str, challenger_rows: int, failures: int, latency_ms: float = 40.0
) -> dict:
    """A fresh log where the champion answered 2,000 rows and the challenger `challenger_rows`, of
    which `failures` more failed with a 500."""
    environment = workspace.config.environments[-1]
    write_environment(workspace.config, environment, f"logs/{name}", rollout=ROLLOUT)
    features, _ = adult_test_rows(workspace.config)
    champion_rows = features.sample(2000, random_state=1).reset_index(drop=True)
    log_rows(
        workspace.config,
        environment,
        workspace.champion_model,
        workspace.champion,
        champion_rows,
        prefix=f"{name}-a",
        status=200,
        latency_ms=30.0,
    )
    challenger = features.sample(challenger_rows, random_state=2).reset_index(drop=True)
    log_rows(
        workspace.config,
        environment,
        workspace.challenger_model,
        workspace.challenger,
        challenger,
        variant="challenger",
        prefix=f"{name}-b",
        status=200,
        latency_ms=latency_ms,
    )
    if failures:
        log_failures(workspace.config, environment, workspace.challenger, failures, prefix=f"{name}-f")
    return monitor(workspace.config, environment, out=workspace.root / "reports" / name).document


def test_a_challenger_with_injected_errors_is_rolled_back(workspace: Workspace) -> None:
    document = canary(workspace, "errors", challenger_rows=400, failures=40)
    traffic = document["traffic"]["challenger"]
    assert traffic["requests"] == 440 and traffic["errors"] == 40
    assert traffic["error_rate"] == pytest.approx(40 / 440, abs=1e-6)
    decision = document["decision"]
    assert decision["action"] == "rollback" and decision["canary"] == "rollback"
    environment = document["environment"]
    assert (
        f"error rate of the challenger is {40 / 440:.3f}, limit 0.010 in {environment} (440 requests)"
        in (decision["reasons"])
    )


def test_errors_that_no_later_success_can_absorb_roll_back_before_min_requests(workspace: Workspace) -> None:
    document = canary(workspace, "early", challenger_rows=50, failures=5)
    assert document["traffic"]["challenger"]["requests"] < ANALYSIS["min_requests"]
    assert document["decision"]["action"] == "rollback" and document["decision"]["canary"] == "rollback"


def test_a_healthy_challenger_advances_to_the_next_step(workspace: Workspace) -> None:
    document = canary(workspace, "healthy", challenger_rows=400, failures=0)
    decision = document["decision"]
    # the canary's verdict stands on its own; the action is "advance" unless the champion's traffic
    # also asks for retraining (a strict pack may, on the fixture's small training set)
    assert decision["canary"] == "advance"
    assert decision["action"] == ("retrain" if decision["retrain"] else "advance")
    assert decision["next_weight"] == 25
    assert document["comparison"]["challenger_error_rate"] == 0.0


def test_a_slow_challenger_is_rolled_back(workspace: Workspace) -> None:
    document = canary(workspace, "slow", challenger_rows=400, failures=0, latency_ms=400.0)
    assert document["traffic"]["challenger"]["latency_ms"]["p99"] == pytest.approx(400.0)
    assert document["decision"]["action"] == "rollback" and document["decision"]["canary"] == "rollback"
    assert any(
        "p99 latency of the challenger is 400.000 ms, limit 250.000 ms" in reason
        for reason in document["decision"]["reasons"]
    )


def test_a_challenger_short_of_min_requests_holds(workspace: Workspace) -> None:
    document = canary(workspace, "young", challenger_rows=100, failures=0)
    assert document["decision"]["canary"] == "hold"
    assert document["decision"]["action"] == ("retrain" if document["decision"]["retrain"] else "hold")
    assert document["decision"]["next_weight"] is None
    environment = document["environment"]
    assert (
        f"the challenger answered 100 requests, the canary analysis needs 300 in {environment}"
        in (document["decision"]["reasons"])
    )
