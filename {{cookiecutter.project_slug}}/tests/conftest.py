"""Shared fixtures: the project's own config, pointed at a throw-away MLflow store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.config import MlflowConfig, ProjectConfig, load_config

PROJECT_ROOT = Path(__file__).resolve().parents[1]


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
    return load_config(PROJECT_ROOT / "project.yaml")


@pytest.fixture(scope="module")
def isolated_config(project_config: ProjectConfig, tmp_path_factory: pytest.TempPathFactory) -> ProjectConfig:
    """The project's config with its MLflow store and artifacts in a temporary directory (one per module)."""
    tmp_path = tmp_path_factory.mktemp("mlflow")
    mlflow_settings = MlflowConfig(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        artifact_root=tmp_path / "mlartifacts",
        experiment=project_config.mlflow.experiment,
        registered_model=project_config.mlflow.registered_model,
    )
    return project_config.model_copy(update={"mlflow": mlflow_settings})
