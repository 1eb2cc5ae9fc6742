"""Bake projects and run their own tooling: pre-commit on every file, then their whole test suite.

One virtual environment (this one) serves every baked project: it holds the generated project's
pinned dependencies, installed from the template's pyproject.toml by `make install`. Each matrix entry
is baked once per module and shared by its tests; in the template's CI each interpreter's leg runs
only the entry generated for its Python (BAKE_PYTHON_VERSION, see test_bake).
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


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # The project's browser test must run, not skip: .ci/install-system-packages installs Chromium.
    environment = tool_environment(REQUIRE_BROWSER="1", PYTHONPATH=str(cwd / "src"))
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
def project(request: pytest.FixtureRequest, cookies_session) -> Path:
    """One bake per entry: pre-commit and the test suite run first, then the local loop on the same tree."""
    result = cookies_session.bake(extra_context=request.param)
    assert result.exit_code == 0, result.exception
    ensure_git_repository(result.project_path)
    return result.project_path


def test_generated_project_passes_its_own_pre_commit_and_tests(project: Path) -> None:
    lint = run([sys.executable, "-m", "pre_commit", "run", "--all-files", "--show-diff-on-failure"], project)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    tests = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], project)
    assert tests.returncode == 0, tests.stdout[-5000:] + tests.stderr[-3000:]
    assert " passed" in tests.stdout and " failed" not in tests.stdout and " skipped" not in tests.stdout


def test_generated_run_builds_a_complete_verified_bundle(project: Path) -> None:
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
