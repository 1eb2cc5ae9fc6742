"""MLflow tracking and model registry: the only module that talks to MLflow.

A training run logs its parameters, metrics, dataset and model, and registers a new version of the
project's registered model tagged with the source commit and the data digest.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import pandas as pd

from {{ cookiecutter.package_name }}.config import ProjectConfig
from {{ cookiecutter.package_name }}.errors import RegistryError
from {{ cookiecutter.package_name }}.pipeline.data import Dataset

MODEL_ARTIFACT = "model"
RUNTIME_PACKAGES = ("mlflow", "scikit-learn", "pandas", "numpy", "scipy", "skops")
logging.getLogger("mlflow").setLevel(logging.WARNING)
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@dataclass(frozen=True)
class SourceRevision:
    """The commit the model was trained from; `dirty` when the work tree had uncommitted changes."""

    sha: str
    dirty: bool


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: int
    run_id: str
    model_uri: str
    tags: dict[str, str]


def source_revision(root: Path) -> SourceRevision:
    """GITHUB_SHA on Actions, else the checkout's HEAD; 'unknown' outside a git repository."""
    if os.environ.get("GITHUB_SHA"):
        return SourceRevision(os.environ["GITHUB_SHA"], dirty=False)
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return SourceRevision("unknown", dirty=True)
    return SourceRevision(head, dirty=bool(status))


def _mlflow():
    """Import MLflow lazily: it is slow to import and only the registry needs it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow
    return mlflow


def connect(config: ProjectConfig):
    """Point MLflow at the project's store and make sure the experiment exists."""
    mlflow = _mlflow()
    mlflow.set_tracking_uri(config.tracking_uri)
    try:
        experiment = mlflow.get_experiment_by_name(config.mlflow.experiment)
        if experiment is None:
            # A tracking server stores artifacts where it is configured to; a local store keeps them here.
            remote = config.tracking_uri.startswith(("http://", "https://", "databricks"))
            location = None if remote else config.artifact_location
            mlflow.create_experiment(config.mlflow.experiment, artifact_location=location)
        mlflow.set_experiment(config.mlflow.experiment)
    except Exception as error:  # MLflow raises many types for an unreachable or broken store
        raise RegistryError(
            f"mlflow.tracking_uri: cannot use the tracking store {config.tracking_uri}: {_first_line(error)}"
        ) from None
    return mlflow


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def pip_requirements() -> list[str]:
    """Exact versions of what the model needs at inference (inferring them costs seconds)."""
    return [f"{package}=={installed_version(package)}" for package in RUNTIME_PACKAGES]


def trusted_types(model: Any) -> list[str]:
    """The non-default types skops must trust to load this model: exactly those the model contains."""
    import skops.io

    return sorted(skops.io.get_untrusted_types(data=skops.io.dumps(model)))


def _dataset_frame(dataset: Dataset) -> pd.DataFrame:
    return dataset.features.assign(**{dataset.labels.name: dataset.labels})


def log_training(
    config: ProjectConfig,
    dataset: Dataset,
    model: Any,
    params: dict[str, Any],
    metrics: dict[str, float],
    baseline: dict[str, float],
    input_example: pd.DataFrame,
) -> RegisteredVersion:
    """Log one training run and register its model as a new version of the project's model."""
    mlflow = connect(config)
    revision = source_revision(config.root)
    tags = {
        "git_sha": revision.sha,
        "git_dirty": str(revision.dirty).lower(),
        "data_digest": dataset.digest,
        "data_rows": str(dataset.rows),
        "model_family": config.model.family,
    }
    example = input_example.head(5)
    try:
        # MLflow prints a "View run at" line on stdout when talking to a server; commands such as
        # `train` print only their result there, so MLflow's chatter goes to stderr.
        with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            warnings.simplefilter("ignore")
            with mlflow.start_run(tags=tags) as run:
                mlflow.log_params({key: str(value)[:500] for key, value in params.items()})
                mlflow.log_metrics({f"test_{name}": value for name, value in metrics.items()})
                mlflow.log_metrics({f"baseline_{name}": value for name, value in baseline.items()})
                mlflow.log_input(
                    mlflow.data.from_pandas(
                        _dataset_frame(dataset),
                        source=str(dataset.path),
                        name=dataset.name,
                        targets=dataset.labels.name,
                        digest=dataset.digest[:32],
                    ),
                    context="training",
                )
                signature = mlflow.models.infer_signature(example, model.predict_proba(example)[:, 1])
                info = mlflow.sklearn.log_model(
                    model,
                    name=MODEL_ARTIFACT,
                    registered_model_name=config.mlflow.registered_model,
                    signature=signature,
                    input_example=example,
                    pip_requirements=pip_requirements(),
                    skops_trusted_types=trusted_types(model),
                )
        version = int(info.registered_model_version)
        client = mlflow.MlflowClient()
        for key, value in tags.items():
            client.set_model_version_tag(config.mlflow.registered_model, str(version), key, value)
    except RegistryError:
        raise
    except Exception as error:
        store = config.tracking_uri
        raise RegistryError(f"logging the training run to {store} failed: {_first_line(error)}") from None
    return RegisteredVersion(
        name=config.mlflow.registered_model,
        version=version,
        run_id=run.info.run_id,
        model_uri=f"models:/{config.mlflow.registered_model}/{version}",
        tags=tags,
    )


def get_version(config: ProjectConfig, version: int) -> RegisteredVersion:
    """Look up a registered version; an unknown one is an error naming the model and version."""
    mlflow = connect(config)
    name = config.mlflow.registered_model
    try:
        found = mlflow.MlflowClient().get_model_version(name, str(version))
    except Exception:
        raise RegistryError(f"model {name!r} has no version {version} in {config.tracking_uri}") from None
    return RegisteredVersion(
        name=name,
        version=int(found.version),
        run_id=found.run_id,
        model_uri=f"models:/{name}/{found.version}",
        tags=dict(found.tags),
    )


def load_version(config: ProjectConfig, version: int) -> Any:
    """Load a registered version as the scikit-learn pipeline it was logged as."""
    registered = get_version(config, version)
    mlflow = _mlflow()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return mlflow.sklearn.load_model(registered.model_uri)
    except Exception as error:
        raise RegistryError(f"loading {registered.model_uri} failed: {_first_line(error)}") from None


def run_details(config: ProjectConfig, run_id: str) -> tuple[dict[str, str], dict[str, float]]:
    """The parameters and metrics logged by a run."""
    mlflow = connect(config)
    try:
        run = mlflow.MlflowClient().get_run(run_id)
    except Exception as error:
        raise RegistryError(
            f"run {run_id} cannot be read from {config.tracking_uri}: {_first_line(error)}"
        ) from None
    return dict(run.data.params), dict(run.data.metrics)


def champion(config: ProjectConfig, environment: str) -> RegisteredVersion | None:
    """The version the environment's alias points at, or None before its first release."""
    mlflow = connect(config)
    name = config.mlflow.registered_model
    client = mlflow.MlflowClient()
    try:
        found = client.get_model_version_by_alias(name, environment)
    except Exception as error:
        if (
            "RESOURCE_DOES_NOT_EXIST" in str(getattr(error, "error_code", ""))
            or "not found" in str(error).lower()
        ):
            return None
        store = config.tracking_uri
        raise RegistryError(
            f"cannot resolve alias {environment!r} of model {name!r} in {store}: {_first_line(error)}"
        ) from None
    return RegisteredVersion(
        name=name,
        version=int(found.version),
        run_id=found.run_id,
        model_uri=f"models:/{name}@{environment}",
        tags=dict(found.tags),
    )


def log_evidence(config: ProjectConfig, run_id: str, directory: Path) -> None:
    """Attach the evidence bundle to the training run (artifact path `evidence/`)."""
    mlflow = connect(config)
    try:
        mlflow.MlflowClient().log_artifacts(run_id, str(directory), artifact_path="evidence")
    except Exception as error:
        raise RegistryError(f"logging the evidence of run {run_id} failed: {_first_line(error)}") from None


def tag_version(config: ProjectConfig, version: int, tags: dict[str, str]) -> None:
    mlflow = connect(config)
    client = mlflow.MlflowClient()
    try:
        for key, value in tags.items():
            client.set_model_version_tag(config.mlflow.registered_model, str(version), key, value)
    except Exception as error:
        raise RegistryError(f"tagging version {version} failed: {_first_line(error)}") from None


def version_for_commit(config: ProjectConfig, commit: str) -> int:
    """The newest registered version trained from `commit` (its git_sha tag)."""
    mlflow = connect(config)
    name = config.mlflow.registered_model
    try:
        found = mlflow.MlflowClient().search_model_versions(f"name = '{name}' and tags.git_sha = '{commit}'")
    except Exception as error:
        raise RegistryError(f"searching versions of {name!r} failed: {_first_line(error)}") from None
    if not found:
        raise RegistryError(f"no version of model {name!r} was trained from commit {commit}")
    return max(int(item.version) for item in found)


def download_evidence(config: ProjectConfig, run_id: str, directory: Path) -> bool:
    """Fetch the evidence bundle logged to a run into `directory`; False when the run has none."""
    mlflow = connect(config)
    client = mlflow.MlflowClient()
    try:
        if not [item for item in client.list_artifacts(run_id, "evidence") if not item.is_dir]:
            return False
        directory.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory.parent) as scratch:
            local = Path(client.download_artifacts(run_id, "evidence", scratch))
            local.rename(directory)
    except OSError as error:
        raise RegistryError(f"storing the evidence of run {run_id} in {directory} failed: {error}") from None
    except Exception as error:
        raise RegistryError(
            f"downloading the evidence of run {run_id} failed: {_first_line(error)}"
        ) from None
    return True
