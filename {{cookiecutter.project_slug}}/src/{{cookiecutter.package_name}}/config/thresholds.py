"""A policy pack's data, `policies/thresholds.yaml`, as typed and validated limits.

The promotion rules (`policies/promotion.rego`) are the same for every pack; a pack is this file. It
names itself (`pack`), and project.yaml's `policy_pack` must name the same pack. `default` holds the
limits of every environment without an entry of its own; an environment's entry replaces whole
sections of `default` (a section it leaves out keeps the default one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from {{ cookiecutter.package_name }}.errors import ConfigError

# Metrics where higher is better: the only ones a minimum or a regression tolerance makes sense for
# (log_loss, lower is better, is reported but not gated). A test keeps this list in step with
# pipeline/evaluation.py.
GatedMetric = Literal["accuracy", "balanced_accuracy", "roc_auc", "f1", "precision", "recall"]
FairnessKind = Literal["demographic_parity", "equalized_odds"]
Fraction = Annotated[float, Field(ge=0, le=1, strict=True, allow_inf_nan=False)]
PackName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$", min_length=1, max_length=64)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelCardRule(_Section):
    """What the policy asks of model_card.yaml in an environment."""

    require_own_text: bool = Field(
        default=False,
        strict=True,
        description=(
            "deny while model_card.yaml holds the template's demo text and the data is not the demo file"
        ),
    )


class Limits(_Section):
    """The limits of one environment (or the default ones)."""

    min_metrics: dict[GatedMetric, Fraction] = Field(
        default={}, description="held-out metric -> minimum value"
    )
    max_fairness_difference: dict[FairnessKind, Fraction] = Field(
        default={}, description="Fairlearn difference (0 = parity) -> maximum, per sensitive feature"
    )
    min_fairness_ratio: dict[FairnessKind, Fraction] = Field(
        default={}, description="Fairlearn ratio (1 = parity) -> minimum, per sensitive feature"
    )
    max_regression: dict[GatedMetric, Fraction] = Field(
        default={}, description="metric -> how much lower than the environment's champion it may be"
    )
    model_card: ModelCardRule = ModelCardRule()


class Thresholds(_Section):
    """A policy pack: its name, its default limits and the limits of named environments."""

    pack: PackName = Field(description="the pack's name; project.yaml's policy_pack must be the same")
    default: Limits
    environments: dict[str, Limits] = {}

    def limits_for(self, environment: str) -> Limits:
        """The limits the rules apply in `environment`: its sections, else the default ones."""
        own = self.environments.get(environment)
        if own is None:
            return self.default
        return self.default.model_copy(update={name: getattr(own, name) for name in own.model_fields_set})

    def to_policy_data(self) -> dict[str, Any]:
        """The document promotion.rego reads as data.thresholds.

        Environment entries keep only the sections written in the file, so that the rules' section
        override sees what the file says and not the empty defaults of the model.
        """
        return {
            "pack": self.pack,
            "default": self.default.model_dump(mode="json"),
            "environments": {
                name: limits.model_dump(mode="json", exclude_unset=True)
                for name, limits in self.environments.items()
            },
        }


def _describe(error: dict[str, Any]) -> str:
    location = [str(part) for part in error["loc"]]
    kind = error["type"]
    value = error.get("input")
    if location and location[-1] == "[key]":
        location.pop()
        name = location.pop()
        place = ".".join(location)
        expected = error.get("ctx", {}).get("expected", "")
        return f"{place}: unknown name {name!r} (expected one of {expected})"
    place = ".".join(location) or "(top level)"
    if kind == "missing":
        return f"{place}: required key is missing"
    if kind == "extra_forbidden":
        return f"{place}: unknown key (check the spelling)"
    if kind in {"float_type", "finite_number"}:
        return f"{place}: expected a number, got {value!r}"
    if kind in {"greater_than_equal", "less_than_equal"}:
        return f"{place}: expected a number between 0 and 1, got {value!r}"
    if kind == "bool_type":
        return f"{place}: expected true or false, got {value!r}"
    if kind in {"dict_type", "model_type"}:
        return f"{place}: expected a mapping, got {value!r}"
    return f"{place}: {error['msg'].removeprefix('Value error, ')}"


def load_thresholds(path: Path) -> Thresholds:
    """Read and validate thresholds.yaml; every problem names the file and the key it concerns."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (the policy pack's limits)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read ({error})") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{path}: invalid YAML{where}: {getattr(error, 'problem', None) or error}"
        ) from None
    if not isinstance(document, dict):
        raise ConfigError(
            f"{path}: expected a mapping with 'pack' and 'default' keys, got {type(document).__name__}"
        )
    if document.get("environments") is None:
        document = {**document, "environments": {}}
    try:
        return Thresholds.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(_describe(item) for item in error.errors())
        raise ConfigError(f"{path}: {problems}") from None
