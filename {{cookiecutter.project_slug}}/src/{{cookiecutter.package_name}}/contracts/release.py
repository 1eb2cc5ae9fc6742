"""`release.yaml`: the desired state of one environment, as written on its branch `env/<name>`.

Promotion writes it, deploy reconciles the registry to it, the service serves it. It is validated
when read: a hand edit that breaks it is an error naming the file and the key, never a guess.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from {{ cookiecutter.package_name }}.config.loading import parse_yaml, validate
from {{ cookiecutter.package_name }}.errors import ProjectError

RELEASE_FILE = "release.yaml"
SHA256 = r"^sha256:[0-9a-f]{64}$"


class ReleaseError(ProjectError):
    """release.yaml is missing or does not describe a release."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ModelReference(_Section):
    """The registered version an environment runs, and what it was made from."""

    name: str = Field(min_length=1)
    version: int = Field(ge=1)
    artifact_digest: str = Field(pattern=SHA256, description="sha256 of the model artifact directory")
    source_sha: str = Field(min_length=1, description="the commit the version was trained from")
    data_digest: str = Field(min_length=1)


class ReleaseRollout(_Section):
    """Which versions take traffic, and how it is split."""

    strategy: Literal["direct", "canary", "shadow", "ab"] = "direct"
    champion: int = Field(ge=1)
    challenger: int | None = Field(default=None, ge=1)
    challenger_weight: int = Field(default=0, ge=0, le=100)

    @model_validator(mode="after")
    def _challenger_is_consistent(self) -> ReleaseRollout:
        if self.challenger is not None and self.challenger == self.champion:
            raise ValueError(f"challenger {self.challenger} is the champion itself")
        if self.challenger is None and self.challenger_weight:
            raise ValueError(f"challenger_weight is {self.challenger_weight} but there is no challenger")
        return self


class ImageReference(_Section):
    """The container image that serves the release, by digest (never by a moving tag)."""

    repository: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9._/-]*(:[0-9]+)?[a-z0-9._/-]*$")
    digest: str = Field(pattern=SHA256)

    @property
    def reference(self) -> str:
        return f"{self.repository}@{self.digest}"


class FlagsReference(_Section):
    """The environment's OpenFeature flag file, rendered next to release.yaml on the branch."""

    file: str = Field(min_length=1, description="path of the flag file on the environment branch")
    digest: str = Field(pattern=SHA256, description="sha256 of the flag file's bytes")


class PromotionRecord(_Section):
    source: str = Field(alias="from", min_length=1, description="main, env/<previous> or manual")
    policy_pack: str = Field(min_length=1)


class Release(_Section):
    """The whole of release.yaml."""

    environment: str = Field(min_length=1)
    registered: ModelReference = Field(alias="model")
    challenger_model: ModelReference | None = Field(
        default=None, description="the version taking part of the traffic beside the champion, if any"
    )
    rollout: ReleaseRollout
    image: ImageReference | None = Field(default=None, description="the serving image, by digest")
    flags: FlagsReference | None = None
    promotion: PromotionRecord

    @model_validator(mode="after")
    def _versions_are_consistent(self) -> Release:
        if self.rollout.champion != self.registered.version:
            raise ValueError(
                f"rollout.champion is {self.rollout.champion} but model.version is {self.registered.version}"
            )
        named = None if self.challenger_model is None else self.challenger_model.version
        if named != self.rollout.challenger:
            raise ValueError(
                f"rollout.challenger is {self.rollout.challenger} but challenger_model names version {named}"
            )
        if self.challenger_model is not None and self.challenger_model.name != self.registered.name:
            raise ValueError(
                f"challenger_model.name is {self.challenger_model.name!r}, the champion's is "
                f"{self.registered.name!r}: both must be versions of one registered model"
            )
        return self

    @classmethod
    def create(
        cls,
        *,
        environment: str,
        model: str,
        version: int,
        artifact_digest: str,
        source_sha: str,
        data_digest: str,
        promoted_from: str,
        policy_pack: str,
        strategy: str = "direct",
        challenger: ModelReference | None = None,
        challenger_weight: int = 0,
        image: ImageReference | None = None,
        flags: FlagsReference | None = None,
    ) -> Release:
        """A release from its facts; invalid ones raise ReleaseError naming the key."""
        document = {
            "environment": environment,
            "model": {
                "name": model,
                "version": version,
                "artifact_digest": artifact_digest,
                "source_sha": source_sha,
                "data_digest": data_digest,
            },
            "challenger_model": None if challenger is None else challenger.model_dump(),
            "rollout": {
                "strategy": strategy,
                "champion": version,
                "challenger": None if challenger is None else challenger.version,
                "challenger_weight": challenger_weight,
            },
            "image": None if image is None else image.model_dump(),
            "flags": None if flags is None else flags.model_dump(),
            "promotion": {"from": promoted_from, "policy_pack": policy_pack},
        }
        return validate(cls, document, f"release of {environment}", ReleaseError)

    def with_rollout(
        self,
        *,
        champion: ModelReference | None = None,
        challenger: ModelReference | None = None,
        weight: int = 0,
        strategy: str | None = None,
    ) -> Release:
        """The same release with another split: `champion` (default: unchanged), `challenger`, `weight`."""
        document = self.model_dump(mode="json", by_alias=True)
        if champion is not None:
            document["model"] = champion.model_dump()
        document["challenger_model"] = None if challenger is None else challenger.model_dump()
        document["rollout"] = {
            "strategy": strategy or self.strategy,
            "champion": document["model"]["version"],
            "challenger": None if challenger is None else challenger.version,
            "challenger_weight": weight,
        }
        return validate(Release, document, f"release of {self.environment}", ReleaseError)

    # The facts most callers want, by name.
    @property
    def model(self) -> str:
        return self.registered.name

    @property
    def version(self) -> int:
        return self.registered.version

    @property
    def artifact_digest(self) -> str:
        return self.registered.artifact_digest

    @property
    def source_sha(self) -> str:
        return self.registered.source_sha

    @property
    def data_digest(self) -> str:
        return self.registered.data_digest

    @property
    def strategy(self) -> str:
        return self.rollout.strategy

    @property
    def challenger(self) -> int | None:
        return self.rollout.challenger

    @property
    def challenger_digest(self) -> str | None:
        return None if self.challenger_model is None else self.challenger_model.artifact_digest

    @property
    def challenger_weight(self) -> int:
        return self.rollout.challenger_weight

    @property
    def promoted_from(self) -> str:
        return self.promotion.source

    @property
    def policy_pack(self) -> str:
        return self.promotion.policy_pack

    def to_yaml(self) -> str:
        """The file's text in a stable key order, so equal releases are equal bytes."""
        document = self.model_dump(mode="json", by_alias=True)
        header = (
            f"# Desired state of {self.environment}: generated by promotion, never edited by hand.\n"
            "# Merging a change of this file deploys it; reverting it rolls back.\n"
        )
        return header + yaml.safe_dump(document, sort_keys=False)


def parse_release(text: str, source: str) -> Release:
    """A release from the text of release.yaml; `source` names it in errors."""
    try:
        document = parse_yaml(text, source)
    except ProjectError as error:
        raise ReleaseError(f"{source}: not a valid release ({error})") from None
    try:
        return validate(Release, document, source, ReleaseError)
    except ReleaseError as error:
        detail = str(error).removeprefix(f"{source}: ")
        raise ReleaseError(f"{source}: not a valid release ({detail})") from None


def read_release(path: Path) -> Release:
    if not path.is_file():
        raise ReleaseError(f"{path}: no release file (is this a checkout of an env/<name> branch?)")
    return parse_release(path.read_text(encoding="utf-8"), str(path))
