"""Helpers for running the command line as a user does: separate processes on a copy of the project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "{{ cookiecutter.package_name }}"
EXIT_DENY = 1
Cli = Callable[..., subprocess.CompletedProcess[str]]


def copy_project(directory: Path) -> Path:
    """The project's config, data, policy pack and card text, so runs write their store next to them."""
    for name in ("project.yaml", "model_card.yaml"):
        shutil.copy(PROJECT_ROOT / name, directory / name)
    for name in ("data", "policies"):
        shutil.copytree(PROJECT_ROOT / name, directory / name)
    return directory


def run_cli(workspace: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "src")}
    environment.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run(
        [sys.executable, "-m", PACKAGE, "--config", str(workspace / "project.yaml"), *arguments],
        capture_output=True,
        text=True,
        env=environment,
        cwd=workspace,
        check=False,
    )


@pytest.fixture
def cli() -> Cli:
    return run_cli


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return copy_project(tmp_path)


@pytest.fixture(scope="module")
def ran_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace in which `run` has completed once: version 1 trained, reported and gated."""
    workspace = copy_project(tmp_path_factory.mktemp("run"))
    result = run_cli(workspace, "run")
    assert result.returncode in (0, EXIT_DENY), result.stderr
    assert "models:/" in result.stdout and "Policy decision for" in result.stdout
    return workspace
