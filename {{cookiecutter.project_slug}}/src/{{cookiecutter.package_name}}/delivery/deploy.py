"""Deploy: make the MLflow aliases of an environment match its release.yaml, and nothing else.

The artifact is verified first (its sha256 must equal the digest recorded at promotion); on any
failure no alias moves. Re-running with the same release changes nothing.
"""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from {{ cookiecutter.package_name }}.config import ProjectConfig
from {{ cookiecutter.package_name }}.delivery import registry
from {{ cookiecutter.package_name }}.delivery.desired_state import Release
from {{ cookiecutter.package_name }}.errors import ProjectError, RegistryError


class DeployError(ProjectError):
    """The release cannot be deployed as written; nothing was changed."""


@dataclass(frozen=True)
class DeployResult:
    environment: str
    champion: int
    challenger: int | None
    changed: list[str]


def directory_digest(directory: Path) -> str:
    """sha256 over every file's relative path and bytes, in path order."""
    digest = hashlib.sha256()
    for path in sorted(item for item in directory.rglob("*") if item.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return "sha256:" + digest.hexdigest()


def artifact_digest(config: ProjectConfig, version: int) -> str:
    """Digest of a registered version's model artifact, downloaded from the registry."""
    registered = registry.get_version(config, version)
    mlflow = registry.connect(config)
    source = mlflow.MlflowClient().get_model_version(registered.name, str(version)).source
    with tempfile.TemporaryDirectory() as scratch:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=scratch)
        except Exception as error:
            raise RegistryError(f"downloading the artifact of version {version} failed: {error}") from None
        return directory_digest(Path(local))


def current_aliases(config: ProjectConfig, environment: str) -> dict[str, int | None]:
    names = (environment, f"{environment}-challenger")
    return {name: (found.version if (found := registry.champion(config, name)) else None) for name in names}


def smoke_test(config: ProjectConfig, uri: str) -> None:
    """Load the model at `uri` and score its own input example: probabilities in [0, 1]."""
    mlflow = registry.connect(config)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = mlflow.pyfunc.load_model(uri)
            example = model.input_example
            scores = model.predict(example)
    except Exception as error:
        raise DeployError(f"smoke test of {uri} failed: {error}") from None
    labels = {int(value) for value in list(getattr(scores, "ravel", lambda: scores)())}
    if not labels or not labels <= {0, 1}:
        raise DeployError(
            f"smoke test of {uri} failed: predictions are not 0/1 class labels: {sorted(labels)[:5]}"
        )


def deploy(config: ProjectConfig, release: Release) -> DeployResult:
    """Verify the release against the registry, then reconcile the aliases to it."""
    environment = release.environment
    if environment not in config.environments:
        raise DeployError(f"release.yaml names environment {environment!r}, not one of {config.environments}")
    if release.model != config.mlflow.registered_model:
        raise DeployError(
            f"release.yaml names model {release.model!r}, expected {config.mlflow.registered_model!r}"
        )
    wanted = {environment: release.version, f"{environment}-challenger": release.challenger}
    for version in {version for version in wanted.values() if version is not None}:
        registry.get_version(config, version)
    actual_digest = artifact_digest(config, release.version)
    if actual_digest != release.artifact_digest:
        raise DeployError(
            f"artifact of {release.model} version {release.version} has digest {actual_digest}, "
            f"release.yaml expects {release.artifact_digest}: refusing to deploy (no alias moved)"
        )
    for version in {version for version in wanted.values() if version is not None}:
        smoke_test(config, f"models:/{release.model}/{version}")
    current = current_aliases(config, environment)
    changed = [alias for alias, version in wanted.items() if current.get(alias) != version]
    mlflow = registry.connect(config)
    client = mlflow.MlflowClient()
    try:
        _set_aliases(client, release.model, {alias: wanted[alias] for alias in changed})
        smoke_test(config, f"models:/{release.model}@{environment}")
    except Exception as error:
        _set_aliases(client, release.model, {alias: current.get(alias) for alias in changed})
        if isinstance(error, ProjectError):
            raise
        raise DeployError(f"moving the aliases of {release.model} failed, restored them: {error}") from None
    return DeployResult(environment, release.version, release.challenger, changed)


def _set_aliases(client, model: str, aliases: dict[str, int | None]) -> None:
    for alias, version in aliases.items():
        if version is None:
            client.delete_registered_model_alias(model, alias)
        else:
            client.set_registered_model_alias(model, alias, str(version))
