"""`release.yaml`: the desired state of one environment, as written on its branch `env/<name>`.

Promotion writes it, deploy reconciles the registry to it, the service serves it. It is validated
when read: a hand edit that breaks it is an error naming the file and the key, never a guess.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

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


class PromotionRecord(_Section):
    source: str = Field(alias="from", min_length=1, description="main, env/<previous> or manual")
    policy_pack: str = Field(min_length=1)


class Release(_Section):
    """The whole of release.yaml."""

    environment: str = Field(min_length=1)
    registered: ModelReference = Field(alias="model")
    rollout: ReleaseRollout
    flags: dict[str, Any] = {}
    promotion: PromotionRecord

    @model_validator(mode="after")
    def _champion_is_the_model(self) -> Release:
        if self.rollout.champion != self.registered.version:
            raise ValueError(
                f"rollout.champion is {self.rollout.champion} but model.version is {self.registered.version}"
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
        challenger: int | None = None,
        challenger_weight: int = 0,
        flags: dict[str, Any] | None = None,
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
            "rollout": {
                "strategy": strategy,
                "champion": version,
                "challenger": challenger,
                "challenger_weight": challenger_weight,
            },
            "flags": dict(flags or {}),
            "promotion": {"from": promoted_from, "policy_pack": policy_pack},
        }
        return validate(cls, document, f"release of {environment}", ReleaseError)

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
    def challenger_weight(self) -> int:
        return self.rollout.challenger_weight

    @property
    def promoted_from(self) -> str:
        return self.promotion.source

    @property
    def policy_pack(self) -> str:
        return self.promotion.policy_pack

    def to_yaml(self) -> str:
        """The file's text: stable key order, flags sorted, so equal releases are equal bytes."""
        document = self.model_dump(mode="json", by_alias=True)
        document["flags"] = dict(sorted(document["flags"].items()))
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
