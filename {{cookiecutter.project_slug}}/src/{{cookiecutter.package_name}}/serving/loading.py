"""Load what release.yaml names from the registry, and refuse an artifact that is not what it says."""

from __future__ import annotations

from {{ cookiecutter.package_name }}.contracts.release import Release
from {{ cookiecutter.package_name }}.errors import ProjectError
from {{ cookiecutter.package_name }}.io.registry import Registry
from {{ cookiecutter.package_name }}.serving.compiled import verified
from {{ cookiecutter.package_name }}.serving.model import CHALLENGER, CHAMPION, ServedModel
from {{ cookiecutter.package_name }}.serving.schema import InputSchema


class ServingError(ProjectError):
    """The service cannot serve the release as written."""


def load_variant(registry: Registry, variant: str, version: int, expected_digest: str) -> ServedModel:
    """One version, its artifact digest checked against the one release.yaml records."""
    digest = registry.artifact_digest(version)
    if digest != expected_digest:
        raise ServingError(
            f"artifact of {registry.name} version {version} ({variant}) has digest {digest}, "
            f"release.yaml expects {expected_digest}: refusing to serve it"
        )
    schema = InputSchema.from_model_directory(registry.artifact(version))
    pipeline = registry.load_model(version)
    return ServedModel(variant, version, digest, pipeline, schema, verified(pipeline, schema.columns))


def load_release(registry: Registry, release: Release) -> dict[str, ServedModel]:
    """The champion and the challenger, if any, each digest verified against release.yaml."""
    if release.model != registry.name:
        raise ServingError(f"release.yaml names model {release.model!r}, the project's is {registry.name!r}")
    models = {CHAMPION: load_variant(registry, CHAMPION, release.version, release.artifact_digest)}
    if release.challenger is not None:
        challenger = load_variant(registry, CHALLENGER, release.challenger, release.challenger_digest)
        if challenger.schema.columns != models[CHAMPION].schema.columns:
            raise ServingError(
                f"challenger version {release.challenger} takes columns {list(challenger.schema.columns)}, "
                f"the champion takes {list(models[CHAMPION].schema.columns)}: they cannot share requests"
            )
        models[CHALLENGER] = challenger
    return models
