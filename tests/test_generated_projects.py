"""Bake projects and run their own tooling: pre-commit on every file, then their test suite.

One virtual environment (this one) serves every baked project: it holds the generated project's
pinned dependencies, installed from the template's pyproject.toml by `make install`. Each matrix entry
is baked once per module and shared by its tests; in the template's CI each interpreter's leg runs
only the entry generated for its Python (BAKE_PYTHON_VERSION, see test_bake), so each leg runs the
whole suite of its one entry.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import tool_environment
from test_bake import matrix_for_this_interpreter

pytestmark = pytest.mark.slow


# The first entry baked for this interpreter runs the generated suite whole, on two workers (its
# longest module then bounds this test, which is the template suite's longest). The other entries (more
# than one only where a single interpreter bakes the whole matrix, as `make test` and `.ci/run` do) run
# the tests whose inputs the answers change: training, evidence and the gate read the chosen model family
# and policy pack; the CLI, promotion, rollout and the project checks use the chosen package name and
# environments; serving answers with the chosen model family. The serving, monitoring, feedback, access
# and GitOps-mechanics tests build their inputs themselves (a stand-in model, their own streams, their
# own policy), so another answer cannot change what they show; they run once, with the first entry.
ANSWER_DEPENDENT = (
    "tests/unit",
    "tests/project",
    "tests/integration/test_training.py",
    "tests/integration/test_evidence_bundle.py",
    "tests/integration/test_inferred_schema.py",
    "tests/integration/test_rollout.py",
    "tests/integration/serving/test_predict.py",
    "tests/e2e/test_cli.py",
    "tests/e2e/test_governance_cli.py",
    "tests/e2e/test_gitops_workflows.py::test_main_to_staging_to_production",
)


def suite_arguments(options: dict) -> list[str]:
    """pytest's arguments for a baked entry's own suite: all of it for the first entry, else the
    tests its answers can change (see ANSWER_DEPENDENT)."""
    if options == matrix_for_this_interpreter()[0]:
        return ["-n", "2", "--dist", "loadfile"]
    return list(ANSWER_DEPENDENT)


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # The project's browser and PostgreSQL tests must run, not skip: .ci/install-system-packages
    # installs Chromium and PostgreSQL.
    environment = tool_environment(REQUIRE_BROWSER="1", REQUIRE_POSTGRES="1", PYTHONPATH=str(cwd / "src"))
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, env=environment, check=False, timeout=1800
    )


def ensure_git_repository(project: Path) -> None:
    """pre-commit works on git-tracked files; a project baked with init_git=false gets a repository here."""
    if not (project / ".git").exists():
        for command in (["git", "init", "-q", "-b", "main"], ["git", "add", "--all"]):
            subprocess.run(command, cwd=project, check=True)


@pytest.fixture(
    scope="module",
    params=matrix_for_this_interpreter(),
    ids=lambda options: f"{options['model_family']}-py{options['python_version']}",
)
def project(request: pytest.FixtureRequest, cookies_session) -> tuple[dict, Path]:
    """One bake per entry (its answers and its directory), shared by the module's tests."""
    result = cookies_session.bake(extra_context=request.param)
    assert result.exit_code == 0, result.exception
    ensure_git_repository(result.project_path)
    return request.param, result.project_path


def test_generated_project_passes_its_own_pre_commit_and_tests(project: tuple[dict, Path]) -> None:
    options, project = project
    lint = run([sys.executable, "-m", "pre_commit", "run", "--all-files", "--show-diff-on-failure"], project)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *suite_arguments(options)]
    tests = run(command, project)
    assert tests.returncode == 0, tests.stdout[-5000:] + tests.stderr[-3000:]
    # The summary line alone (a warning's text may say "failed"): passes, and nothing failed or skipped.
    summary = tests.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed(, \d+ warnings?)? in .*", summary), summary


def test_only_the_first_entry_runs_a_part_and_each_part_exists(project: tuple[dict, Path]) -> None:
    options, project = project
    first = options == matrix_for_this_interpreter()[0]
    assert (suite_arguments(options) == list(ANSWER_DEPENDENT)) != first
    if first:
        return
    listed = run([sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider"], project)
    assert listed.returncode == 0, listed.stdout[-3000:] + listed.stderr[-3000:]
    collected = [line for line in listed.stdout.splitlines() if "::" in line]
    for node in ANSWER_DEPENDENT:
        assert any(test == node or test.startswith((f"{node}::", f"{node}/")) for test in collected), node


def test_generated_run_builds_a_complete_verified_bundle(project: tuple[dict, Path]) -> None:
    _, project = project
    package = project.name.replace("-", "_")
    loop = run([sys.executable, "-m", package, "run"], project)
    assert loop.returncode in (0, 1), loop.stdout + loop.stderr
    config = yaml.safe_load((project / "project.yaml").read_text())
    decision = json.loads((project / "reports" / config["name"] / "1" / "decision.json").read_text())
    assert loop.returncode == (0 if decision["allow"] else 1)
    assert (
        f"Policy decision for {config['environments'][0]}: {'ALLOW' if decision['allow'] else 'DENY'}"
        in loop.stdout
    )
    if config["policy_pack"] == "strict":
        assert not decision["allow"], "the demo model on Adult is expected to fail the strict fairness limits"
    if decision["allow"]:  # promoted and deployed: the loop ends by serving the first environment
        assert "each answer equal to the registry model's prediction" in loop.stdout, loop.stdout[-3000:]
    verified = run([sys.executable, "-m", package, "verify", "--version", "1"], project)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    manifest = json.loads((project / "reports" / config["name"] / "1" / "evidence.json").read_text())
    expected = {
        "MODEL_CARD.md",
        "model_card.html",
        "shap.json",
        "shap_bar.png",
        "shap_beeswarm.png",
        "fairness.json",
        "metrics.json",
        "decision.json",
    }
    assert expected <= set(manifest["files"])
