"""report, gate and verify as a user runs them, on a copy of the project with purpose-built policies.

Most tests read the session's trained workspace through the warm CLI (`cli`); the deny and the policy
syntax error run in a fresh interpreter (`cli_process`), where exit code and stderr are the process's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.config import load_config

pytestmark = pytest.mark.e2e

EXIT_DENY, EXIT_ERROR = 1, 2
BUNDLE_FILES = {
    "metrics.json",
    "shap.json",
    "fairness.json",
    "decision.json",
    "shap_beeswarm.png",
    "shap_bar.png",
    "MODEL_CARD.md",
    "model_card.html",
}


def bundle_of(workspace: Path, version: int) -> Path:
    config = load_config(workspace / "project.yaml")
    return config.resolve(config.governance.reports_dir) / config.mlflow.registered_model / str(version)


def first_environment(workspace: Path) -> str:
    return load_config(workspace / "project.yaml").environments[0]


def set_thresholds(workspace: Path, keep, **sections: dict) -> None:
    """Replace the pack's limits (put back after the test): `sections` for every environment, the
    unnamed sections empty (no limit); the rest of the file (the pack's name) stays."""
    path = keep(workspace / "policies" / "thresholds.yaml")
    names = ("min_metrics", "max_fairness_difference", "min_fairness_ratio", "max_regression")
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document.update(default={name: sections.get(name, {}) for name in names}, environments={})
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def test_run_builds_a_complete_verified_bundle(ran_workspace: Path, cli) -> None:
    bundle = bundle_of(ran_workspace, 1)
    manifest = json.loads((bundle / "evidence.json").read_text())
    config = load_config(ran_workspace / "project.yaml")
    expected = BUNDLE_FILES | {f"fairness_{name}.png" for name in config.data.sensitive_features}
    assert set(manifest["files"]) >= expected
    assert manifest["version"] == 1 and len(manifest["data_digest"]) == 64
    verified = cli(ran_workspace, "verify", "--version", "1")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"all {len(manifest['files'])} files match" in verified.stdout


def test_gate_allows_when_every_limit_is_met(ran_workspace: Path, cli, restore_files) -> None:
    set_thresholds(ran_workspace, restore_files, min_metrics={"roc_auc": 0.6})
    result = cli(
        ran_workspace,
        "gate",
        "--version",
        "1",
        "--env",
        load_config(ran_workspace / "project.yaml").environments[0],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert ": ALLOW" in result.stdout


def test_gate_denies_with_an_actionable_reason(ran_workspace: Path, cli_process, restore_files) -> None:
    set_thresholds(ran_workspace, restore_files, min_metrics={"roc_auc": 0.99})
    environment = load_config(ran_workspace / "project.yaml").environments[0]
    result = cli_process(ran_workspace, "gate", "--version", "1", "--env", environment)
    metrics = json.loads((bundle_of(ran_workspace, 1) / "metrics.json").read_text())["metrics"]
    assert result.returncode == EXIT_DENY, result.stdout + result.stderr
    assert f"roc_auc is {metrics['roc_auc']:.3f}, minimum 0.990 in {environment}" in result.stdout


def test_gate_refuses_an_unknown_environment(ran_workspace: Path, cli) -> None:
    result = cli(ran_workspace, "gate", "--version", "1", "--env", "nowhere")
    assert result.returncode == EXIT_ERROR
    assert "'nowhere' is not an environment" in result.stderr


def test_unknown_version_is_an_error_and_writes_nothing(ran_workspace: Path, cli) -> None:
    for command in (
        ["report", "--version", "42"],
        ["gate", "--version", "42", "--env", first_environment(ran_workspace)],
    ):
        result = cli(ran_workspace, *command)
        assert result.returncode == EXIT_ERROR
        assert "has no version 42" in result.stderr and "Traceback" not in result.stderr
    assert not bundle_of(ran_workspace, 42).exists()


def test_tampered_bundle_is_caught_by_verify_and_gate(ran_workspace: Path, cli, tmp_path: Path) -> None:
    bundle = bundle_of(ran_workspace, 1)
    fairness_file = bundle / "fairness.json"
    original = fairness_file.read_bytes()
    try:
        fairness_file.write_bytes(
            original.replace(
                b'"demographic_parity_difference": 0.', b'"demographic_parity_difference": 0.0', 1
            )
        )
        verified = cli(ran_workspace, "verify", "--version", "1")
        assert verified.returncode == EXIT_ERROR
        assert "fairness.json does not match its sha256" in verified.stdout
        gated = cli(ran_workspace, "gate", "--version", "1", "--env", first_environment(ran_workspace))
        assert gated.returncode == EXIT_ERROR
        assert "evidence file fairness.json does not match its sha256" in gated.stdout
    finally:
        fairness_file.write_bytes(original)


def test_missing_bundle_is_an_error(ran_workspace: Path, cli) -> None:
    bundle = bundle_of(ran_workspace, 1)
    hidden = bundle.with_name("hidden")
    bundle.rename(hidden)
    try:
        result = cli(ran_workspace, "gate", "--version", "1", "--env", first_environment(ran_workspace))
    finally:
        hidden.rename(bundle)
    assert result.returncode == EXIT_ERROR
    assert "no evidence bundle" in result.stderr


def test_policy_with_a_syntax_error_is_named_and_nothing_is_written(workspace: Path, cli_process) -> None:
    rules = workspace / "policies" / "promotion.rego"
    rules.write_text(rules.read_text() + "\ndeny contains reason if {\n", encoding="utf-8")
    result = cli_process(workspace, "run")
    assert result.returncode == EXIT_ERROR
    assert "promotion.rego" in result.stderr and "Traceback" not in result.stderr
    assert not (workspace / "reports").exists()
    assert not (workspace / "mlflow.db").exists()


def test_sensitive_feature_absent_from_the_data_is_named(workspace: Path, cli) -> None:
    config_file = workspace / "project.yaml"
    config_file.write_text(
        config_file.read_text().replace(
            "sensitive_features: [sex, race]", "sensitive_features: [sex, gender]"
        )
    )
    result = cli(workspace, "run")
    assert result.returncode == EXIT_ERROR
    assert "data.sensitive_features: 'gender' is not a column" in result.stderr
    assert not (workspace / "reports").exists()
    assert not (workspace / "mlflow.db").exists()
