"""thresholds.yaml as a typed model: what the rules read, and the limits one environment gets."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.config.thresholds import GatedMetric, Thresholds, load_thresholds
from {{ cookiecutter.package_name }}.errors import ConfigError
from {{ cookiecutter.package_name }}.governance.policy import evaluate, load_policy
from {{ cookiecutter.package_name }}.pipeline.evaluation import METRIC_NAMES

pytestmark = pytest.mark.unit

POLICY_DIR = Path(__file__).resolve().parents[3] / "policies"


def test_gated_metrics_are_the_evaluated_metrics_where_higher_is_better() -> None:
    assert set(typing.get_args(GatedMetric)) == set(METRIC_NAMES) - {"log_loss"}


def test_installed_pack_loads_and_keeps_its_values() -> None:
    document = yaml.safe_load((POLICY_DIR / "thresholds.yaml").read_text())
    thresholds = load_thresholds(POLICY_DIR / "thresholds.yaml")
    assert thresholds.pack == document["pack"]
    assert thresholds.default.min_metrics == document["default"]["min_metrics"]
    for name, entry in document.get("environments", {}).items():
        assert thresholds.to_policy_data()["environments"][name].keys() == entry.keys()


@pytest.mark.parametrize("environment", ["staging", "production", "qa"])
def test_limits_for_an_environment_are_the_ones_the_rules_apply(environment: str) -> None:
    policy = load_policy(POLICY_DIR)
    expected = evaluate(policy, {"environment": environment}).limits
    assert policy.limits.limits_for(environment).model_dump(mode="json") == expected


def test_an_environment_entry_keeps_only_the_sections_it_writes(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.yaml"
    path.write_text(
        "pack: custom\ndefault:\n  min_metrics: {roc_auc: 0.8}\n  max_regression: {roc_auc: 0.02}\n"
        "environments:\n  production:\n    min_metrics: {roc_auc: 0.9}\n"
    )
    data = load_thresholds(path).to_policy_data()
    assert data["environments"] == {"production": {"min_metrics": {"roc_auc": 0.9}}}
    limits = load_thresholds(path).limits_for("production")
    assert limits.min_metrics == {"roc_auc": 0.9} and limits.max_regression == {"roc_auc": 0.02}


def test_errors_name_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.yaml"
    path.write_text("pack: custom\ndefault:\n  min_metrics: {roc_auc: high}\n")
    with pytest.raises(
        ConfigError, match=rf"{path}: default\.min_metrics\.roc_auc: expected a number, got 'high'"
    ):
        load_thresholds(path)


def test_json_schema_is_published_with_every_section() -> None:
    schema = Thresholds.model_json_schema()
    assert set(schema["required"]) == {"pack", "default"}
    limits = schema["$defs"]["Limits"]["properties"]
    assert {
        "min_metrics",
        "max_fairness_difference",
        "min_fairness_ratio",
        "max_regression",
        "model_card",
    } <= set(limits)
