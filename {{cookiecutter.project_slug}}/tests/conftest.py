"""Shared fixtures: the framework tests' own configuration, pointed at a throw-away MLflow store.

The framework tests (unit, integration, e2e) run on the fixture project in tests/fixtures/, never on
the team's project.yaml or data/, so they pass whatever data the team brings. The team's own checks
on project.yaml and its data are in tests/project/.

Under pytest-xdist (`make test` runs `-n auto`) each worker is a session of its own. Whole modules go to
one worker (`--dist loadfile`, see the Makefile), so a module-scoped fixture (a trained model, a running
service) is built once; a session-scoped one is built once per worker that needs it, unless it is built
once for the whole run under a lock (the trained champion and challenger, support/trained_pair).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures import fixture_config
from support.cli_server import CliServer

from {{ cookiecutter.package_name }}.config import MlflowConfig, ProjectConfig

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "{{ cookiecutter.package_name }}"
# The console script the workflows call (a fixed name, so the static workflow files fit any project).
SCRIPT = "mlops"
# One OpenMP thread per process unless the caller chose otherwise. The tests run many processes at once
# (xdist workers, CLI commands, services), each of which would otherwise start a thread per core for
# scikit-learn's gradient boosting; on a busy or small machine those threads spin waiting for a core and
# a training costs four times the CPU. Set here, before anything is trained, so every subprocess
# inherits it. No test depends on the thread count.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True, scope="session")
def _no_ambient_tracking_server() -> Iterator[None]:
    """Tests choose their own store; a tracking URI exported in the shell must not leak in."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield


@pytest.fixture(autouse=True)
def _no_tracking_uri_left_by_other_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI; each test starts without it."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="session")
def project_config() -> ProjectConfig:
    """The fixture project's config (tests/fixtures/project.yaml), not the team's project.yaml."""
    return fixture_config()


@pytest.fixture(scope="module")
def isolated_config(project_config: ProjectConfig, tmp_path_factory: pytest.TempPathFactory) -> ProjectConfig:
    """The fixture config with its MLflow store, artifacts and reports in a temporary directory."""
    tmp_path = tmp_path_factory.mktemp("mlflow")
    mlflow_settings = MlflowConfig(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        artifact_root=tmp_path / "mlartifacts",
        experiment=project_config.mlflow.experiment,
        registered_model=project_config.mlflow.registered_model,
    )
    governance = project_config.governance.model_copy(update={"reports_dir": tmp_path / "reports"})
    return project_config.model_copy(update={"mlflow": mlflow_settings, "governance": governance})


def entry_point(script: str = SCRIPT) -> str:
    """`module:function` of a console script, as pyproject.toml declares it."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return project["project"]["scripts"][script]


@pytest.fixture(scope="session")
def cli_server() -> Iterator[CliServer]:
    """One warm interpreter for the session; every call is a fork of it (see support/cli_server)."""
    # A short directory: a Unix socket path must stay under about 100 characters.
    directory = Path(tempfile.mkdtemp(prefix="mlops-cli-"))
    server = CliServer(PROJECT_ROOT / "src", PACKAGE, directory).start()
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def mlops_command(cli_server: CliServer) -> tuple[str, ...]:
    """The argument vector that runs the `mlops` console script as a fork of the warm server."""
    return tuple(cli_server.command(SCRIPT, entry_point()))
