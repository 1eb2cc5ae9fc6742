"""Bake projects and run their own tooling: pre-commit on every file, then their whole test suite.

One virtual environment (this one) serves every baked project: it holds the generated project's
pinned dependencies, installed from the template's pyproject.toml by `make install`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tool_environment
from test_bake import MATRIX

pytestmark = pytest.mark.slow


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, env=tool_environment(), check=False, timeout=1800
    )


def ensure_git_repository(project: Path) -> None:
    """pre-commit works on git-tracked files; a project baked with init_git=false gets a repository here."""
    if not (project / ".git").exists():
        for command in (["git", "init", "-q", "-b", "main"], ["git", "add", "--all"]):
            subprocess.run(command, cwd=project, check=True)


@pytest.fixture(params=MATRIX, ids=lambda options: f"{options['model_family']}-py{options['python_version']}")
def project(request: pytest.FixtureRequest, cookies) -> Path:
    result = cookies.bake(extra_context=request.param)
    assert result.exit_code == 0, result.exception
    ensure_git_repository(result.project_path)
    return result.project_path


def test_generated_project_passes_its_own_pre_commit_and_tests(project: Path) -> None:
    lint = run([sys.executable, "-m", "pre_commit", "run", "--all-files", "--show-diff-on-failure"], project)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    tests = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], project)
    assert tests.returncode == 0, tests.stdout[-5000:] + tests.stderr[-3000:]
    assert " passed" in tests.stdout and " failed" not in tests.stdout
