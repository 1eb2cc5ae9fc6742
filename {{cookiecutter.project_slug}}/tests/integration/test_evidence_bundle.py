"""report and gate in-process against a real MLflow store: bundle, logging, champion, bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from {{ cookiecutter.package_name }}.commands.delivery import ensure_bundle, pull_request_summary
from {{ cookiecutter.package_name }}.commands.evidence import bundle_path, gate, report
from {{ cookiecutter.package_name }}.commands.training import train
from {{ cookiecutter.package_name }}.config import GovernanceConfig, ModelConfig, ProjectConfig
from {{ cookiecutter.package_name }}.errors import DataValidationError, RegistryError
from {{ cookiecutter.package_name }}.governance.evidence import verify_bundle
from {{ cookiecutter.package_name }}.governance.policy import PolicyError
from {{ cookiecutter.package_name }}.governance.summary import render_decision_text
from {{ cookiecutter.package_name }}.io import registry
from {{ cookiecutter.package_name }}.pipeline.data import load_dataset
from {{ cookiecutter.package_name }}.pipeline.training import split_dataset

pytestmark = pytest.mark.integration

LIMIT_SECTIONS = ("min_metrics", "max_fairness_difference", "min_fairness_ratio", "max_regression")


def with_policy(config: ProjectConfig, directory: Path, **sections: dict) -> ProjectConfig:
    """The config pointed at a copy of the installed pack whose default limits are `sections`."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(
        config.resolve(config.governance.policies_dir) / "promotion.rego", directory / "promotion.rego"
    )
    thresholds = {
        "pack": config.policy_pack,
        "default": {name: sections.get(name, {}) for name in LIMIT_SECTIONS} | sections,
        "environments": {},
    }
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
    assert result.decision.champion["status"] == "first_release"


def test_decision_json_names_the_pack_from_the_pack_data(config: ProjectConfig, first) -> None:
    _, built = first
    installed = yaml.safe_load(
        (config.resolve(config.governance.policies_dir) / "thresholds.yaml").read_text()
    )
    decision = json.loads((built.directory / "decision.json").read_text())
    assert decision["policy_pack"] == installed["pack"]
    assert f"policy pack `{installed['pack']}`" in (built.directory / "MODEL_CARD.md").read_text()


def test_a_project_naming_another_pack_is_refused(config: ProjectConfig, first) -> None:
    trained, _ = first
    lenient = config.model_copy(update={"policy_pack": "lenient"})
    with pytest.raises(PolicyError, match=r"policy_pack 'lenient'.*is '\w+'"):
        gate(lenient, trained.registered.version, config.environments[0])
    with pytest.raises(PolicyError, match="lenient"):
        report(lenient, trained.registered.version)


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


# -- the champion is scored on the candidate's own held-out rows ------------------------------------


def set_champion(config: ProjectConfig, environment: str, version: int) -> None:
    """Move the alias behind the registry's back, as a deploy in another process would."""
    client = mlflow.MlflowClient(tracking_uri=config.tracking_uri)
    client.set_registered_model_alias(config.mlflow.registered_model, environment, str(version))
    registry.close_sessions()  # a command's session caches aliases; the next command opens a new one


@pytest.fixture(scope="module")
def resplit(config: ProjectConfig, first):
    """A candidate held out on other rows (another random_state) while the first version is champion."""
    trained, _ = first
    set_champion(config, config.environments[0], trained.registered.version)
    settings = config.model.model_copy(update={"random_state": 7})
    candidate_config = config.model_copy(update={"model": settings})
    candidate = train(candidate_config)
    return candidate_config, candidate, report(candidate_config, candidate.registered.version)


def test_champion_is_scored_on_the_candidates_own_held_out_rows(
    config: ProjectConfig, first, resplit
) -> None:
    trained, _ = first
    candidate_config, candidate, built = resplit
    recorded = json.loads((built.directory / "metrics.json").read_text())["champions"][config.environments[0]]
    assert (recorded["status"], recorded["version"]) == ("compared", trained.registered.version)

    champion_model = mlflow.sklearn.load_model(
        f"models:/{config.mlflow.registered_model}/{trained.registered.version}"
    )
    split = split_dataset(load_dataset(config.data, config.data_path), candidate_config.model)
    scores = champion_model.predict_proba(split.test_features)[:, list(champion_model.classes_).index(1)]
    assert recorded["rows"] == len(split.test_labels)
    assert recorded["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(split.test_labels, scores), abs=1e-6)
    assert recorded["metrics"]["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(split.test_labels, (scores >= 0.5).astype(int)), abs=1e-6
    )
    # the figures logged with the champion come from another held-out set
    assert recorded["metrics"]["roc_auc"] != pytest.approx(trained.metrics["roc_auc"], abs=1e-6)

    decision = json.loads((built.directory / "decision.json").read_text())
    assert decision["champion"]["version"] == trained.registered.version
    summary = pull_request_summary(candidate_config, candidate.registered.version, config.environments[0])
    assert f"champion v{trained.registered.version} (same rows)" in summary
    assert (
        f"| roc_auc | {candidate.metrics['roc_auc']:.4f} | {recorded['metrics']['roc_auc']:.4f} |" in summary
    )


def test_gate_on_the_champion_itself_says_it_is_the_champion(config: ProjectConfig, first, resplit) -> None:
    trained, _ = first
    environment = config.environments[0]
    set_champion(config, environment, trained.registered.version)
    result = gate(config, trained.registered.version, environment)
    assert result.champion.version == trained.registered.version
    assert result.decision.champion["status"] == "is_champion"
    text = render_decision_text(result.decision)
    assert f"version {trained.registered.version} is the current champion in {environment}" in text
    assert "none yet" not in text and not any("first release" in note for note in result.decision.notes)


def test_a_champion_that_cannot_score_the_new_columns_makes_a_first_release(
    config: ProjectConfig, first, resplit, tmp_path: Path
) -> None:
    trained, _ = first
    environment = config.environments[0]
    set_champion(config, environment, trained.registered.version)
    data = config.data.model_copy(
        update={
            "numeric_features": [name for name in config.data.numeric_features if name != "age"],
            "ignore_columns": [*config.data.ignore_columns, "age"],
        }
    )
    new_schema = config.model_copy(update={"data": data})
    candidate = train(new_schema)
    built = report(new_schema, candidate.registered.version)
    recorded = json.loads((built.directory / "metrics.json").read_text())["champions"][environment]
    assert recorded["status"] == "new_schema" and "'age'" in recorded["detail"]
    assert recorded["metrics"] is None

    no_regression = with_policy(new_schema, tmp_path / "policy", max_regression={"roc_auc": 0.0})
    result = gate(no_regression, candidate.registered.version, environment)
    assert result.decision.allow, result.decision.reasons
    assert any("first release for the new schema" in note for note in result.decision.notes)
    assert json.loads((built.directory / "decision.json").read_text())["champion"]["status"] == "new_schema"


# -- awkward names, small and unfamiliar data -------------------------------------------------------


def test_a_sensitive_column_with_a_slash_gets_a_safe_chart_name(
    config: ProjectConfig, tmp_path: Path
) -> None:
    frame = pd.read_csv(config.data_path, dtype=str)
    path = tmp_path / "renamed.csv"
    frame.rename(columns={"race": "race/ethnicity"}).to_csv(path, index=False)
    data = config.data.model_copy(
        update={
            "path": path,
            "categorical_features": [
                "race/ethnicity" if name == "race" else name for name in config.data.categorical_features
            ],
            "sensitive_features": ["sex", "race/ethnicity"],
        }
    )
    renamed = config.model_copy(update={"data": data})
    trained = train(renamed)
    built = report(renamed, trained.registered.version)
    fairness = json.loads((built.directory / "fairness.json").read_text())
    (audit,) = [item for item in fairness["features"] if item["feature"] == "race/ethnicity"]
    assert "/" not in audit["chart"] and (built.directory / audit["chart"]).is_file()
    assert audit["chart"] in built.manifest["files"]
    assert verify_bundle(built.directory).intact


@pytest.fixture(scope="module")
def small_other_data(config: ProjectConfig, tmp_path_factory: pytest.TempPathFactory):
    """120 rows that are not the demo file (30 held out), reported with the shipped card text."""
    import contextlib
    import io

    frame = pd.read_csv(config.data_path, dtype=str)
    positives = frame[frame[config.data.target].str.strip() == config.data.positive_label].head(40)
    negatives = frame[frame[config.data.target].str.strip() != config.data.positive_label].head(80)
    path = tmp_path_factory.mktemp("small") / "small.csv"
    pd.concat([positives, negatives]).to_csv(path, index=False)
    small = config.model_copy(
        update={"data": config.data.model_copy(update={"path": path, "name": "small-sample"})}
    )
    trained = train(small)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        built = report(small, trained.registered.version)
    return small, trained, built, stderr.getvalue()


def test_a_held_out_set_too_small_to_measure_is_warned_about(small_other_data) -> None:
    _, _, built, stderr = small_other_data
    assert "warning: the held-out set has only 30 rows" in stderr
    card = (built.directory / "MODEL_CARD.md").read_text()
    assert "> **Warning:** the held-out set has only 30 rows" in card
    assert "cannot be measured" in card
    decision = json.loads((built.directory / "decision.json").read_text())
    assert any("only 30 rows" in warning for warning in decision["warnings"])


def test_the_card_describes_the_data_used_and_flags_the_demo_text(small_other_data) -> None:
    small, _, built, stderr = small_other_data
    assert "warning: model_card.yaml still holds the template's demo text" in stderr
    card = (built.directory / "MODEL_CARD.md").read_text()
    assert "> **Warning:** model_card.yaml still holds the template's demo text" in card
    assert "| Data set | small-sample (`" in card
    assert "| Rows | 120: 90 for training, 30 held out for evaluation |" in card
    for feature in small.data.sensitive_features:
        assert f"{feature} (a model input" in card
    assert f"{len(small.data.features)} columns" in card


def test_demo_text_on_other_data_is_denied_where_the_pack_requires_own_text(
    small_other_data, tmp_path: Path
) -> None:
    small, trained, _, _ = small_other_data
    last = small.environments[-1]
    policy_config = with_policy(small, tmp_path / "policy")
    thresholds_path = tmp_path / "policy" / "thresholds.yaml"
    thresholds = yaml.safe_load(thresholds_path.read_text())
    thresholds["environments"] = {last: {"model_card": {"require_own_text": True}}}
    thresholds_path.write_text(yaml.safe_dump(thresholds))
    denied = gate(policy_config, trained.registered.version, last)
    assert not denied.decision.allow
    assert any(
        reason.startswith("model_card.yaml still holds the template's demo text (") and reason.endswith(last)
        for reason in denied.decision.reasons
    )
    if len(small.environments) > 1:
        earlier = small.environments[0]
    else:  # a one-environment project: add an earlier environment, which gets the default limits
        earlier = "preview"
        policy_config = policy_config.model_copy(update={"environments": [earlier, last]})
    first = gate(policy_config, trained.registered.version, earlier)
    assert first.decision.allow, first.decision.reasons
