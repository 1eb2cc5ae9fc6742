"""Bake projects and run their own tooling: pre-commit on every file, then their test suite.

One virtual environment (this one) serves every baked project: it holds the generated project's
pinned dependencies, installed from the template's pyproject.toml by `make install`. Each matrix entry
is baked once per module and shared by its tests; in the template's CI each interpreter's leg runs
only the entry generated for its Python (BAKE_PYTHON_VERSION, see test_bake), so each leg runs the
whole suite of its one entry.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import tool_environment
from test_bake import matrix_for_this_interpreter

pytestmark = pytest.mark.slow


# The first entry baked for this interpreter runs the generated suite whole. The other entries (more
# than one only where a single interpreter bakes the whole matrix, as `make test` does locally) skip the
# tests whose outcome no answer can change, because they build their own inputs: a stand-in model, the
# server's own concurrency and shutdown, GitOps mechanics under a purpose-built policy on the first
# environment only, registry-session bookkeeping, an explainer on a table of its own. Every test that
# trains the chosen model family, gates with the chosen pack, walks the chosen environments or runs the
# package by its chosen name still runs for every entry.
SAME_FOR_EVERY_ANSWER = (
    "tests/unit/governance/test_explainability.py::test_unknown_estimator_falls_back_to_permutation_explainer",
    "tests/integration/serving/test_model_failures.py",
    "tests/integration/serving/test_load_and_shutdown.py",
    "tests/integration/test_registry_session.py",
    "tests/e2e/test_gitops_workflows.py::test_rerun_updates_the_same_pull_request",
    "tests/e2e/test_gitops_workflows.py::test_api_answering_500_then_201_succeeds_after_a_retry",
    "tests/e2e/test_gitops_workflows.py::test_racing_promotions_end_with_one_pull_request",
    "tests/e2e/test_gitops_workflows.py::test_tampered_artifact_is_refused_and_rollback_restores_the_champion",
)


def suite_arguments(options: dict) -> list[str]:
    """pytest's arguments for a baked entry's own suite: all of it for the first entry, else the
    tests its answers can change (see SAME_FOR_EVERY_ANSWER)."""
    if options == matrix_for_this_interpreter()[0]:
        return []
    return [f"--deselect={node}" for node in SAME_FOR_EVERY_ANSWER]


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
    # In this process (no -n): the template's own workers already use every core.
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *suite_arguments(options)]
    tests = run(command, project)
    assert tests.returncode == 0, tests.stdout[-5000:] + tests.stderr[-3000:]
    assert " passed" in tests.stdout and " failed" not in tests.stdout and " skipped" not in tests.stdout


def test_only_the_first_entry_skips_tests_and_each_skipped_one_exists(project: tuple[dict, Path]) -> None:
    options, project = project
    first = options == matrix_for_this_interpreter()[0]
    assert (suite_arguments(options) == []) == first
    if first:
        return
    listed = run([sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider"], project)
    assert listed.returncode == 0, listed.stdout[-3000:] + listed.stderr[-3000:]
    collected = [line for line in listed.stdout.splitlines() if "::" in line]
    for node in SAME_FOR_EVERY_ANSWER:
        assert any(test == node or test.startswith(f"{node}::") for test in collected), node


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
