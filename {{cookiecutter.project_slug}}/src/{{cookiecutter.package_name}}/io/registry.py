"""MLflow tracking and model registry: the only module that talks to MLflow.

A command opens one `Registry` session. It connects once, looks each version, alias and run up once
(later calls are answered from its cache, which its own writes keep current), and downloads each
model artifact once. A training run logs its parameters, metrics, dataset and model, and registers a
new version of the project's model tagged with the source commit, the data digest and the digest of
the training configuration.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, replace
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

from {{ cookiecutter.package_name }}.config import ProjectConfig
from {{ cookiecutter.package_name }}.errors import RegistryError

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
    source: str = ""

    @property
    def dirty(self) -> bool:
        """Trained from a work tree with uncommitted changes: its source_sha cannot reproduce it."""
        return self.tags.get("git_dirty") == "true"


@dataclass(frozen=True)
class RunDetails:
    params: dict[str, str]
    metrics: dict[str, float]


def source_revision(root: Path) -> SourceRevision:
    """GITHUB_SHA on Actions, else the checkout's HEAD; 'unknown' (and dirty) outside a repository."""
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


def training_digest(config: ProjectConfig) -> str:
    """sha256 of the settings that decide what `train` produces (data roles, model, split)."""
    document = {
        "data": config.data.model_dump(mode="json", exclude={"name"}),
        "model": config.model.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def _mlflow():
    """Import MLflow lazily: it is slow to import and only the registry needs it."""
    import mlflow

    return mlflow


def _point_mlflow_at(uri: str):
    """Point MLflow's process-wide APIs (runs, artifact downloads) at `uri`, and only MLflow.

    `mlflow.set_tracking_uri` also exports MLFLOW_TRACKING_URI, which `load_config` reads as the user's
    override: a later command in the same process would then use this session's store instead of its
    own. The variable is put back as the user left it.
    """
    mlflow = _mlflow()
    exported = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    if exported is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = exported
    return mlflow


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _is_missing(error: BaseException) -> bool:
    code = str(getattr(error, "error_code", ""))
    return "RESOURCE_DOES_NOT_EXIST" in code or "not found" in str(error).lower()


def pip_requirements() -> list[str]:
    """Exact versions of what the model needs at inference (inferring them costs seconds)."""
    return [f"{package}=={installed_version(package)}" for package in RUNTIME_PACKAGES]


def trusted_types(model: Any) -> list[str]:
    """The non-default types skops must trust to load this model: exactly those the model contains."""
    import skops.io

    return sorted(skops.io.get_untrusted_types(data=skops.io.dumps(model)))


def directory_digest(directory: Path) -> str:
    """sha256 over every file's relative path and bytes, in path order."""
    digest = hashlib.sha256()
    for path in sorted(item for item in directory.rglob("*") if item.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return "sha256:" + digest.hexdigest()


class Registry:
    """One session with the project's MLflow store, for the length of one command."""

    def __init__(self, config: ProjectConfig) -> None:
        self.config = config
        self.name = config.mlflow.registered_model
        self._client = None
        self._experiment_ready = False
        self._versions: dict[int, RegisteredVersion] = {}
        self._aliases: dict[str, RegisteredVersion | None] = {}
        self._runs: dict[str, RunDetails] = {}
        self._models: dict[int, Any] = {}
        self._artifacts: dict[int, Path] = {}
        self._scratch: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the downloaded artifacts; the session's cache goes with it."""
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None
        self._artifacts.clear()

    # -- connection -----------------------------------------------------------------------------
    @property
    def client(self):
        """The MLflow client, created on first use."""
        if self._client is None:
            mlflow = _mlflow()
            try:
                self._client = mlflow.MlflowClient(tracking_uri=self.config.tracking_uri)
            except Exception as error:
                raise self._store_error(error) from None
        return self._client

    def _store_error(self, error: BaseException) -> RegistryError:
        return RegistryError(
            f"mlflow.tracking_uri: cannot use the tracking store {self.config.tracking_uri}: "
            f"{_first_line(error)}"
        )

    def _ensure_experiment(self):
        """Create the project's experiment on first write (a read never creates anything)."""
        self.client  # noqa: B018 - connects
        mlflow = _point_mlflow_at(self.config.tracking_uri)
        if self._experiment_ready:
            return mlflow
        try:
            experiment = mlflow.get_experiment_by_name(self.config.mlflow.experiment)
            if experiment is None:
                # A tracking server stores artifacts where it is configured to; a local store keeps them here.
                remote = self.config.tracking_uri.startswith(("http://", "https://", "databricks"))
                location = None if remote else self.config.artifact_location
                mlflow.create_experiment(self.config.mlflow.experiment, artifact_location=location)
            mlflow.set_experiment(self.config.mlflow.experiment)
        except Exception as error:  # MLflow raises many types for an unreachable or broken store
            raise self._store_error(error) from None
        self._experiment_ready = True
        return mlflow

    # -- reads (cached) -------------------------------------------------------------------------
    def _remember(self, found, model_uri: str | None = None) -> RegisteredVersion:
        registered = RegisteredVersion(
            name=self.name,
            version=int(found.version),
            run_id=found.run_id,
            model_uri=model_uri or f"models:/{self.name}/{found.version}",
            tags=dict(found.tags),
            source=str(found.source or ""),
        )
        if model_uri is None:
            self._versions[registered.version] = registered
        return registered

    def version(self, version: int) -> RegisteredVersion:
        """A registered version; an unknown one is an error naming the model and version."""
        if version not in self._versions:
            try:
                found = self.client.get_model_version(self.name, str(version))
            except RegistryError:
                raise
            except Exception as error:
                if _is_missing(error):
                    raise RegistryError(
                        f"model {self.name!r} has no version {version} in {self.config.tracking_uri}"
                    ) from None
                raise self._store_error(error) from None
            self._remember(found)
        return self._versions[version]

    def alias(self, alias: str) -> RegisteredVersion | None:
        """The version an alias points at (e.g. an environment's champion), or None when unset."""
        if alias not in self._aliases:
            try:
                found = self.client.get_model_version_by_alias(self.name, alias)
            except RegistryError:
                raise
            except Exception as error:
                if not _is_missing(error):
                    raise RegistryError(
                        f"cannot resolve alias {alias!r} of model {self.name!r} in "
                        f"{self.config.tracking_uri}: {_first_line(error)}"
                    ) from None
                self._aliases[alias] = None
            else:
                self._remember(found)
                known = self._versions[int(found.version)]
                self._aliases[alias] = replace(known, model_uri=f"models:/{self.name}@{alias}")
        return self._aliases[alias]

    def champion(self, environment: str) -> RegisteredVersion | None:
        """The version the environment's alias points at, or None before its first release."""
        return self.alias(environment)

    def run(self, run_id: str) -> RunDetails:
        """The parameters and metrics logged by a run."""
        if run_id not in self._runs:
            try:
                found = self.client.get_run(run_id)
            except RegistryError:
                raise
            except Exception as error:
                raise RegistryError(
                    f"run {run_id} cannot be read from {self.config.tracking_uri}: {_first_line(error)}"
                ) from None
            self._runs[run_id] = RunDetails(dict(found.data.params), dict(found.data.metrics))
        return self._runs[run_id]

    def logged_metrics(self, version: int, prefix: str) -> dict[str, float]:
        """The metrics logged as `<prefix><name>` when a version was trained (`test_`, `baseline_`)."""
        logged = self.run(self.version(version).run_id).metrics
        return {name.removeprefix(prefix): value for name, value in logged.items() if name.startswith(prefix)}

    def find_versions(self, **tags: str) -> list[RegisteredVersion]:
        """Versions whose tags equal all of `tags`, newest first."""
        condition = " and ".join([f"name = '{self.name}'", *(f"tags.{k} = '{v}'" for k, v in tags.items())])
        try:
            found = self.client.search_model_versions(condition)
        except Exception as error:
            raise RegistryError(f"searching versions of {self.name!r} failed: {_first_line(error)}") from None
        return sorted((self._remember(item) for item in found), key=lambda item: -item.version)

    def version_for_commit(self, commit: str) -> int:
        """The newest registered version trained from `commit` (its git_sha tag)."""
        found = self.find_versions(git_sha=commit)
        if not found:
            raise RegistryError(f"no version of model {self.name!r} was trained from commit {commit}")
        return found[0].version

    def artifact(self, version: int) -> Path:
        """The version's model artifact, downloaded once per session into a scratch directory."""
        if version not in self._artifacts:
            registered = self.version(version)
            if self._scratch is None:
                self._scratch = tempfile.TemporaryDirectory(prefix="registry-")
            target = Path(self._scratch.name) / str(version)
            target.mkdir()
            try:
                local = _point_mlflow_at(self.config.tracking_uri).artifacts.download_artifacts(
                    artifact_uri=registered.source or registered.model_uri, dst_path=str(target)
                )
            except Exception as error:
                raise RegistryError(
                    f"downloading the artifact of version {version} failed: {_first_line(error)}"
                ) from None
            self._artifacts[version] = Path(local)
        return self._artifacts[version]

    def artifact_digest(self, version: int) -> str:
        """Digest of a registered version's model artifact, as downloaded from the registry."""
        return directory_digest(self.artifact(version))

    def load_model(self, version: int) -> Any:
        """A registered version as the scikit-learn pipeline it was logged as (loaded once)."""
        if version not in self._models:
            artifact = self.artifact(version)
            try:
                self._models[version] = _mlflow().sklearn.load_model(str(artifact))
            except Exception as error:
                raise RegistryError(
                    f"loading {self.version(version).model_uri} failed: {_first_line(error)}"
                ) from None
        return self._models[version]

    def load_pyfunc(self, version: int) -> Any:
        """A registered version as MLflow's generic model (what a scoring server loads)."""
        try:
            return _mlflow().pyfunc.load_model(str(self.artifact(version)))
        except RegistryError:
            raise
        except Exception as error:
            raise RegistryError(
                f"loading {self.version(version).model_uri} as a pyfunc model failed: {_first_line(error)}"
            ) from None

    def download_evidence(self, run_id: str, directory: Path) -> bool:
        """Fetch the evidence bundle logged to a run into `directory`; False when the run has none."""
        try:
            if not [item for item in self.client.list_artifacts(run_id, "evidence") if not item.is_dir]:
                return False
            directory.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=directory.parent) as scratch:
                local = Path(self.client.download_artifacts(run_id, "evidence", scratch))
                local.rename(directory)
        except OSError as error:
            raise RegistryError(
                f"storing the evidence of run {run_id} in {directory} failed: {error}"
            ) from None
        except RegistryError:
            raise
        except Exception as error:
            raise RegistryError(
                f"downloading the evidence of run {run_id} failed: {_first_line(error)}"
            ) from None
        return True

    # -- writes ---------------------------------------------------------------------------------
    def log_training(
        self,
        dataset: Any,
        model: Any,
        params: dict[str, Any],
        metrics: dict[str, float],
        baseline: dict[str, float],
        input_example: Any,
        extra_tags: dict[str, str] | None = None,
    ) -> RegisteredVersion:
        """Log one training run and register its model as a new version of the project's model."""
        mlflow = self._ensure_experiment()
        revision = source_revision(self.config.root)
        tags = {
            "git_sha": revision.sha,
            "git_dirty": str(revision.dirty).lower(),
            "data_digest": dataset.digest,
            "data_rows": str(dataset.rows),
            "model_family": self.config.model.family,
            "training_digest": training_digest(self.config),
            "feature_schema_inferred": str(dataset.schema.inferred).lower(),
            **(extra_tags or {}),
        }
        example = input_example.head(5)
        frame = dataset.features.assign(**{dataset.labels.name: dataset.labels})
        try:
            # MLflow prints a "View run at" line on stdout when talking to a server; commands such as
            # `train` print only their result there, so MLflow's chatter goes to stderr.
            with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
                # Logging a model that was just fitted: MLflow warns about pip/conda environments that
                # this project pins itself (pip_requirements), which is expected here.
                warnings.filterwarnings("ignore", message=".*Failed to resolve installed pip version.*")
                # A CSV path is both a local file and a local artifact to MLflow's dataset registry;
                # either reading names the same file.
                warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
                with mlflow.start_run(tags=tags):
                    mlflow.log_params({key: str(value)[:500] for key, value in params.items()})
                    mlflow.log_metrics({f"test_{name}": value for name, value in metrics.items()})
                    mlflow.log_metrics({f"baseline_{name}": value for name, value in baseline.items()})
                    mlflow.log_input(
                        mlflow.data.from_pandas(
                            frame,
                            source=str(dataset.path),
                            name=dataset.name,
                            targets=dataset.labels.name,
                            digest=dataset.digest[:32],
                        ),
                        context="training",
                    )
                    mlflow.log_dict(dataset.schema.to_dict(), "feature_schema.json")
                    signature = mlflow.models.infer_signature(example, model.predict_proba(example)[:, 1])
                    info = mlflow.sklearn.log_model(
                        model,
                        name=MODEL_ARTIFACT,
                        registered_model_name=self.name,
                        signature=signature,
                        input_example=example,
                        pip_requirements=pip_requirements(),
                        skops_trusted_types=trusted_types(model),
                    )
            version = int(info.registered_model_version)
            for key, value in tags.items():
                self.client.set_model_version_tag(self.name, str(version), key, value)
        except RegistryError:
            raise
        except Exception as error:
            store = self.config.tracking_uri
            raise RegistryError(f"logging the training run to {store} failed: {_first_line(error)}") from None
        self._versions.pop(version, None)
        return self.version(version)

    def tag_version(self, version: int, tags: dict[str, str]) -> None:
        try:
            for key, value in tags.items():
                self.client.set_model_version_tag(self.name, str(version), key, value)
        except Exception as error:
            raise RegistryError(f"tagging version {version} failed: {_first_line(error)}") from None
        if version in self._versions:
            known = self._versions[version]
            self._versions[version] = replace(known, tags={**known.tags, **tags})

    def log_evidence(self, run_id: str, directory: Path) -> None:
        """Attach the evidence bundle to the training run (artifact path `evidence/`)."""
        try:
            self.client.log_artifacts(run_id, str(directory), artifact_path="evidence")
        except Exception as error:
            raise RegistryError(
                f"logging the evidence of run {run_id} failed: {_first_line(error)}"
            ) from None

    def set_aliases(self, aliases: dict[str, int | None]) -> None:
        """Point each alias at its version; None deletes the alias."""
        for alias, version in aliases.items():
            self._aliases.pop(alias, None)
            try:
                if version is None:
                    self.client.delete_registered_model_alias(self.name, alias)
                else:
                    self.client.set_registered_model_alias(self.name, alias, str(version))
            except Exception as error:
                raise RegistryError(
                    f"moving alias {alias!r} of {self.name!r} failed: {_first_line(error)}"
                ) from None


# The functions below keep the call shape `registry.<verb>(config, ...)`; each uses the one session
# of the command, found by the config object the command loaded.
_SESSIONS: dict[int, tuple[ProjectConfig, Registry]] = {}


def session(config: ProjectConfig) -> Registry:
    """The command's registry session for this config (created on first use)."""
    known = _SESSIONS.get(id(config))
    if known is None or known[0] is not config:
        known = (config, Registry(config))
        _SESSIONS[id(config)] = known
    return known[1]


def close_sessions() -> None:
    """End every open session (the CLI calls this when a command returns)."""
    for _, registry in _SESSIONS.values():
        registry.close()
    _SESSIONS.clear()


def get_version(config: ProjectConfig, version: int) -> RegisteredVersion:
    return session(config).version(version)


def load_version(config: ProjectConfig, version: int) -> Any:
    return session(config).load_model(version)


def run_details(config: ProjectConfig, run_id: str) -> tuple[dict[str, str], dict[str, float]]:
    details = session(config).run(run_id)
    return details.params, details.metrics


def champion(config: ProjectConfig, environment: str) -> RegisteredVersion | None:
    return session(config).champion(environment)


def log_training(config: ProjectConfig, dataset, model, params, metrics, baseline, input_example, **kw):
    return session(config).log_training(dataset, model, params, metrics, baseline, input_example, **kw)


def log_evidence(config: ProjectConfig, run_id: str, directory: Path) -> None:
    session(config).log_evidence(run_id, directory)


def tag_version(config: ProjectConfig, version: int, tags: dict[str, str]) -> None:
    session(config).tag_version(version, tags)


def version_for_commit(config: ProjectConfig, commit: str) -> int:
    return session(config).version_for_commit(commit)


def download_evidence(config: ProjectConfig, run_id: str, directory: Path) -> bool:
    return session(config).download_evidence(run_id, directory)
