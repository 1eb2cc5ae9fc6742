"""The monitoring decision: `monitoring.rego` evaluated in-process (regopy) against a report.

The installed policy directory holds, besides the promotion rules and limits, `monitoring.rego`
(`package monitoring`, the same for every pack) and `monitoring.yaml` (the pack's monitoring limits,
passed to the rules as `data.monitoring_limits`). The rules decide; this module loads and checks the
files and turns the engine's answer into a `MonitoringDecision`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from regopy import Input, Interpreter, LogLevel, RegoError

from {{ cookiecutter.package_name }}.governance.policy import (
    RULES_FILE,
    PolicyError,
    engine_message,
    error_location,
    plain_json,
    read_text,
)

MONITORING_RULES_FILE = "monitoring.rego"
MONITORING_LIMITS_FILE = "monitoring.yaml"
QUERY = "decision = data.monitoring"
ACTIONS = ("ok", "warn", "retrain", "advance", "hold", "rollback")
# Reasons of every severity are reported, the most severe first.
REASON_GROUPS = (
    "rollback_reasons",
    "retrain_reasons",
    "advance_reasons",
    "hold_reasons",
    "warn_reasons",
)
Fraction = Annotated[float, Field(ge=0, le=1, strict=True, allow_inf_nan=False)]
LiveMetric = Literal["accuracy", "balanced_accuracy", "roc_auc"]
FairnessKind = Literal["demographic_parity", "equalized_odds"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DriftLimits(_Section):
    max_psi: float = Field(
        default=0.2, gt=0, description="population stability index above which a feature drifts"
    )
    max_score_psi: float = Field(default=0.2, gt=0, description="PSI of the score above which it drifts")
    max_p_value: Fraction = Field(
        default=0.01, description="KS / chi-square p-value below which the test rejects"
    )
    max_unseen_share: Fraction = Field(default=0.05, description="share of live values in unseen categories")
    min_rows: int = Field(default=200, ge=1, description="live rows needed before drift is judged")
    retrain_drifted_features: int = Field(
        default=3, ge=1, description="drifted features that ask for retraining"
    )


class PerformanceLimits(_Section):
    min_labels: int = Field(default=200, ge=1, description="labels needed before live figures are judged")
    min_metrics: dict[LiveMetric, Fraction] = Field(default={}, description="live metric -> minimum")


class FairnessLimits(_Section):
    max_fairness_difference: dict[FairnessKind, Fraction] = Field(
        default={}, description="live Fairlearn difference -> maximum, per sensitive feature"
    )


class CanaryLimits(_Section):
    max_accuracy_regression: Fraction = Field(
        default=0.03, description="how much lower the challenger's live accuracy may be than the champion's"
    )


class MonitoringLimits(_Section):
    drift: DriftLimits = DriftLimits()
    performance: PerformanceLimits = PerformanceLimits()
    fairness: FairnessLimits = FairnessLimits()
    canary: CanaryLimits = CanaryLimits()


class MonitoringPack(_Section):
    pack: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", description="the pack's name, as in thresholds.yaml")
    default: MonitoringLimits = MonitoringLimits()
    environments: dict[str, MonitoringLimits] = {}

    def limits_for(self, environment: str) -> MonitoringLimits:
        own = self.environments.get(environment)
        if own is None:
            return self.default
        return self.default.model_copy(update={name: getattr(own, name) for name in own.model_fields_set})

    def to_policy_data(self) -> dict[str, Any]:
        return {
            "pack": self.pack,
            "default": self.default.model_dump(mode="json"),
            "environments": {
                name: limits.model_dump(mode="json", exclude_unset=True)
                for name, limits in self.environments.items()
            },
        }


@dataclass(frozen=True)
class MonitoringPolicy:
    rules: str
    helpers: str
    limits: MonitoringPack
    rules_path: Path


@dataclass(frozen=True)
class MonitoringDecision:
    """The rules' answer for one environment and window."""

    environment: str
    action: str
    reasons: list[str]
    notes: list[str]
    drifted: dict[str, bool]
    score_drifted: bool
    next_weight: int | None  # the canary's next weight when its analysis passed (whatever the action)
    canary: str | None  # advance | hold | rollback for a challenger under canary, else None
    retrain: bool  # whether retraining is asked for (also when a rollback outranks it)
    limits: dict
    policy_pack: str
    groups: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def load_limits(path: Path) -> MonitoringPack:
    text = read_text(path)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise PolicyError(f"{path}: invalid YAML: {error}") from None
    if not isinstance(document, dict):
        raise PolicyError(f"{path}: expected a mapping with 'pack' and 'default' keys")
    if document.get("environments") is None:
        document = {**document, "environments": {}}
    try:
        return MonitoringPack.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or '(top level)'}: {item['msg']}"
            for item in error.errors()
        )
        raise PolicyError(f"{path}: {problems}") from None


def load_monitoring_policy(policy_dir: Path, expected_pack: str | None = None) -> MonitoringPolicy:
    """Read and check monitoring.rego and monitoring.yaml (and promotion.rego, whose helpers it uses)."""
    directory = Path(policy_dir)
    rules_path = directory / MONITORING_RULES_FILE
    limits_path = directory / MONITORING_LIMITS_FILE
    if not rules_path.is_file() or not limits_path.is_file():
        raise PolicyError(
            f"{directory} holds no monitoring policy ({MONITORING_RULES_FILE} and {MONITORING_LIMITS_FILE}): "
            "copy them from the template's policies/ (the standard or strict pack)"
        )
    limits = load_limits(limits_path)
    if expected_pack is not None and limits.pack != expected_pack:
        raise PolicyError(
            f"project.yaml names policy_pack {expected_pack!r} but {limits_path} is the {limits.pack!r} pack"
        )
    policy = MonitoringPolicy(
        rules=read_text(rules_path),
        helpers=read_text(directory / RULES_FILE),
        limits=limits,
        rules_path=rules_path,
    )
    _interpreter(policy)
    return policy


def _interpreter(policy: MonitoringPolicy) -> Interpreter:
    interpreter = Interpreter()
    interpreter.log_level = LogLevel.NONE
    interpreter.strict_built_in_errors = True
    for name, source in ((RULES_FILE, policy.helpers), (MONITORING_RULES_FILE, policy.rules)):
        try:
            interpreter.add_module(name, source)
        except RegoError as error:
            location = error_location(str(error), source)
            raise PolicyError(
                f"{policy.rules_path.parent / name}{location}: {engine_message(str(error))}"
            ) from error
    return interpreter


def decide(policy: MonitoringPolicy, input_document: dict) -> MonitoringDecision:
    """The monitoring decision for the report summarised in `input_document` (see monitoring.rego)."""
    environment = input_document.get("environment")
    interpreter = _interpreter(policy)
    interpreter.add_data({"monitoring_limits": policy.limits.to_policy_data()})
    interpreter.set_input(Input(plain_json(input_document)))
    try:
        output = interpreter.query(QUERY)
    except (RegoError, ValueError) as error:
        raise PolicyError(f"{policy.rules_path}: evaluation failed: {engine_message(str(error))}") from error
    if (
        not output.ok()
        or not output.results
        or not isinstance(output.results[0].bindings.get("decision"), dict)
    ):
        raise PolicyError(f"{policy.rules_path}: evaluation failed (the engine gave no decision)")
    answer = output.results[0].bindings["decision"]
    action = answer.get("action")
    if action not in ACTIONS:
        raise PolicyError(f"{policy.rules_path}: action {action!r} is not one of {', '.join(ACTIONS)}")
    groups = {name.removesuffix("_reasons"): sorted(answer.get(name, [])) for name in REASON_GROUPS}
    return MonitoringDecision(
        environment=str(environment),
        action=action,
        reasons=[reason for name in REASON_GROUPS for reason in sorted(answer.get(name, []))],
        notes=sorted(answer.get("notes", [])),
        drifted={str(name): bool(value) for name, value in answer.get("drifted", {}).items()},
        score_drifted=bool(answer.get("score_is_drifted")),
        next_weight=answer.get("next_weight"),
        canary=answer.get("canary"),
        retrain=answer.get("retrain") is True,
        limits=answer.get("limits", {}),
        policy_pack=policy.limits.pack,
        groups={name: reasons for name, reasons in groups.items() if reasons},
    )
