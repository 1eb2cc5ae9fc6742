"""Deploy: make the MLflow aliases of an environment match its release.yaml, and nothing else.

`<env>` follows the champion and `<env>-challenger` the challenger (deleted when there is none).
Every artifact is verified first (its sha256 must equal the digest recorded at promotion) and every
version it names is smoke-tested; on any failure no alias moves. Re-running with the same release
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from {{ cookiecutter.package_name }}.config import ProjectConfig
from {{ cookiecutter.package_name }}.contracts.release import Release
from {{ cookiecutter.package_name }}.errors import ProjectError
from {{ cookiecutter.package_name }}.io.registry import Registry, session


class DeployError(ProjectError):
    """The release cannot be deployed as written; nothing was changed."""


@dataclass(frozen=True)
class DeployResult:
    environment: str
    champion: int
    challenger: int | None
    changed: list[str]


def challenger_alias(environment: str) -> str:
    return f"{environment}-challenger"


def artifact_digest(config: ProjectConfig, version: int) -> str:
    """Digest of a registered version's model artifact, downloaded from the registry."""
    return session(config).artifact_digest(version)


def smoke_test(registry: Registry, version: int) -> None:
    """Load the version as a pyfunc model and score its own input example: 0/1 class labels."""
    uri = f"models:/{registry.name}/{version}"
    model = registry.load_pyfunc(version)
    try:
        scores = model.predict(model.input_example)
    except Exception as error:
        raise DeployError(f"smoke test of {uri} failed: {error}") from None
    labels = {int(value) for value in list(getattr(scores, "ravel", lambda: scores)())}
    if not labels or not labels <= {0, 1}:
        raise DeployError(
            f"smoke test of {uri} failed: predictions are not 0/1 class labels: {sorted(labels)[:5]}"
        )


def deploy(config: ProjectConfig, release: Release, registry: Registry | None = None) -> DeployResult:
    """Verify the release against the registry, then reconcile the aliases to it."""
    registry = registry or session(config)
    environment = release.environment
    if environment not in config.environments:
        raise DeployError(f"release.yaml names environment {environment!r}, not one of {config.environments}")
    if release.model != config.mlflow.registered_model:
        raise DeployError(
            f"release.yaml names model {release.model!r}, expected {config.mlflow.registered_model!r}"
        )
    if release.image is None and config.environment_settings(environment).image.required:
        raise DeployError(
            f"environments/{environment}.yaml sets image.required, but release.yaml names no serving "
            "image: promote again with --image REPOSITORY@sha256:DIGEST (no alias moved)"
        )
    wanted = {environment: release.version, challenger_alias(environment): release.challenger}
    versions = sorted({version for version in wanted.values() if version is not None})
    for version in versions:
        registry.version(version)
    expected = {release.version: release.artifact_digest}
    if release.challenger is not None:
        expected[release.challenger] = release.challenger_digest
    for version, digest in expected.items():
        actual_digest = registry.artifact_digest(version)
        if actual_digest != digest:
            raise DeployError(
                f"artifact of {release.model} version {version} has digest {actual_digest}, "
                f"release.yaml expects {digest}: refusing to deploy (no alias moved)"
            )
    for version in versions:
        smoke_test(registry, version)
    current = {alias: getattr(registry.alias(alias), "version", None) for alias in wanted}
    changed = [alias for alias, version in wanted.items() if current[alias] != version]
    try:
        registry.set_aliases({alias: wanted[alias] for alias in changed})
        moved = {alias: getattr(registry.alias(alias), "version", None) for alias in wanted}
        if moved != wanted:
            raise DeployError(f"the registry reports aliases {moved} after setting {wanted}")
    except Exception as error:
        registry.set_aliases({alias: current[alias] for alias in changed})
        if isinstance(error, ProjectError):
            raise
        raise DeployError(f"moving the aliases of {release.model} failed, restored them: {error}") from None
    return DeployResult(environment, release.version, release.challenger, changed)
