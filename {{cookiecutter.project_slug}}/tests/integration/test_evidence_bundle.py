"""report and gate in-process against a real MLflow store: bundle, logging, champion, bad input."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import mlflow
import pytest
import yaml

from {{ cookiecutter.package_name }}.config import GovernanceConfig, ModelConfig, ProjectConfig
from {{ cookiecutter.package_name }}.errors import DataValidationError, RegistryError
from {{ cookiecutter.package_name }}.gitops import ensure_bundle
from {{ cookiecutter.package_name }}.governance.evidence import verify_bundle
from {{ cookiecutter.package_name }}.governance.policy import PolicyError
from {{ cookiecutter.package_name }}.jobs import bundle_path, gate, report, train

pytestmark = pytest.mark.integration

LIMIT_SECTIONS = ("min_metrics", "max_fairness_difference", "min_fairness_ratio", "max_regression")


def with_policy(config: ProjectConfig, directory: Path, **sections: dict) -> ProjectConfig:
    """The config pointed at a copy of the installed pack whose default limits are `sections`."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(
        config.resolve(config.governance.policies_dir) / "promotion.rego", directory / "promotion.rego"
    )
    thresholds = {"default": {name: sections.get(name, {}) for name in LIMIT_SECTIONS}, "environments": {}}
    (directory / "thresholds.yaml").write_text(yaml.safe_dump(thresholds), encoding="utf-8")
    governance = config.governance.model_copy(update={"policies_dir": directory})
    return config.model_copy(update={"governance": governance})


@pytest.fixture(scope="module")
def config(isolated_config: ProjectConfig, tmp_path_factory: pytest.TempPathFactory) -> ProjectConfig:
    reports = tmp_path_factory.mktemp("reports")
    governance = GovernanceConfig(
        reports_dir=reports,
        policies_dir=isolated_config.resolve(isolated_config.governance.policies_dir),
        model_card=isolated_config.resolve(isolated_config.governance.model_card),
        shap_sample_size=100,
        shap_background_size=50,
        min_group_size=isolated_config.governance.min_group_size,
    )
    return isolated_config.model_copy(update={"governance": governance})


@pytest.fixture(scope="module")
def first(config: ProjectConfig):
    trained = train(config)
    return trained, report(config, trained.registered.version)


def test_manifest_records_the_sha256_of_every_file(first) -> None:
    _, built = first
    for name, digest in built.manifest["files"].items():
        assert hashlib.sha256((built.directory / name).read_bytes()).hexdigest() == digest
    assert {"MODEL_CARD.md", "model_card.html", "shap.json", "fairness.json"} <= set(built.manifest["files"])


def test_bundle_is_logged_to_the_training_run(config: ProjectConfig, first) -> None:
    trained, built = first
    client = mlflow.MlflowClient(tracking_uri=config.tracking_uri)
    logged = {Path(item.path).name for item in client.list_artifacts(trained.registered.run_id, "evidence")}
    assert logged == set(built.manifest["files"]) | {"evidence.json"}


def test_bundle_metrics_equal_the_metrics_logged_at_training(config: ProjectConfig, first) -> None:
    trained, built = first
    import json

    bundle_metrics = json.loads((built.directory / "metrics.json").read_text())["metrics"]
    assert bundle_metrics == pytest.approx(trained.metrics)


def test_first_release_passes_the_regression_rule_explicitly(
    config: ProjectConfig, first, tmp_path: Path
) -> None:
    trained, _ = first
    strict_regression = with_policy(config, tmp_path / "policy", max_regression={"roc_auc": 0.0})
    result = gate(strict_regression, trained.registered.version, config.environments[0])
    assert result.champion is None
    assert result.decision.allow
    assert any("first release" in note for note in result.decision.notes)


def test_regression_against_the_champion_is_denied(config: ProjectConfig, first, tmp_path: Path) -> None:
    trained, _ = first
    environment = config.environments[0]
    client = mlflow.MlflowClient(tracking_uri=config.tracking_uri)
    client.set_registered_model_alias(
        config.mlflow.registered_model, environment, str(trained.registered.version)
    )
    weaker_config = config.model_copy(
        update={"model": ModelConfig(family="hist_gradient_boosting", params={"max_iter": 1, "max_depth": 1})}
    )
    weaker = train(weaker_config)
    report(weaker_config, weaker.registered.version)
    policy_config = with_policy(config, tmp_path / "policy", max_regression={"roc_auc": 0.01})
    result = gate(policy_config, weaker.registered.version, environment)
    drop = trained.metrics["roc_auc"] - weaker.metrics["roc_auc"]
    assert drop > 0.01
    assert result.champion.version == trained.registered.version
    assert not result.decision.allow
    assert any(
        f"roc_auc regressed by {drop:.3f} against champion version {trained.registered.version}" in reason
        for reason in result.decision.reasons
    )


def test_unknown_version_writes_nothing(config: ProjectConfig) -> None:
    with pytest.raises(RegistryError, match="has no version 999"):
        report(config, 999)
    assert not bundle_path(config, 999).exists()


def test_changed_data_is_refused(config: ProjectConfig, first, tmp_path: Path) -> None:
    trained, _ = first
    changed = tmp_path / "changed.csv"
    changed.write_bytes(
        config.data_path.read_bytes() + config.data_path.read_bytes().splitlines(keepends=True)[1]
    )
    moved = config.model_copy(update={"data": config.data.model_copy(update={"path": changed})})
    before = sorted(path.name for path in bundle_path(config, trained.registered.version).iterdir())
    with pytest.raises(DataValidationError, match="changed since version"):
        report(moved, trained.registered.version)
    assert sorted(path.name for path in bundle_path(config, trained.registered.version).iterdir()) == before


def test_policy_syntax_error_is_named_and_writes_nothing(
    config: ProjectConfig, first, tmp_path: Path
) -> None:
    trained, built = first
    broken = with_policy(config, tmp_path / "policy")
    rules = tmp_path / "policy" / "promotion.rego"
    rules.write_text(rules.read_text() + "\nallow if {\n", encoding="utf-8")
    manifest_before = (built.directory / "evidence.json").read_bytes()
    with pytest.raises(PolicyError, match=r"promotion\.rego"):
        report(broken, trained.registered.version)
    assert (built.directory / "evidence.json").read_bytes() == manifest_before


def test_a_missing_local_bundle_is_fetched_from_the_run_not_rebuilt(config: ProjectConfig, first) -> None:
    trained, built = first
    manifest = (built.directory / "evidence.json").read_bytes()
    shutil.rmtree(built.directory)
    directory = ensure_bundle(config, trained.registered.version)
    assert directory == built.directory
    assert (directory / "evidence.json").read_bytes() == manifest
    assert verify_bundle(directory).intact
