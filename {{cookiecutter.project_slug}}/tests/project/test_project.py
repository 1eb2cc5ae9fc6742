"""The team's own checks: project.yaml and the data it names, as they are on this branch.

Everything else in tests/ tests the framework on its fixture data (tests/fixtures/) and passes whatever
data the team brings; these tests read the real configuration and data and say whether this project
can train, be evidenced and be gated. They hold for any data set: the model must beat the majority
baseline on the held-out split by more than chance could explain, not reach a figure of the demo data.

The commands run as a team runs them (`mlops --config FILE ...`, a process each), on a copy of
project.yaml whose MLflow store and reports are in a temporary directory: the project's own store is
never written. Each process is a fork of one warm interpreter (tests/support/cli_server), so the five
commands do not each pay the dependencies' imports.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from {{ cookiecutter.package_name }}.config import ProjectConfig, load_config

pytestmark = pytest.mark.project

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILE = PROJECT_ROOT / "project.yaml"
EXIT_ALLOW, EXIT_DENY = 0, 1
# One-sided z for "better than chance": a model with no skill passes with probability ~0.1 %.
Z_MARGIN = 3.0


@dataclass(frozen=True)
class Invocation:
    code: int
    stdout: str
    stderr: str


def invoke(mlops: tuple[str, ...], config_file: Path, *arguments: str) -> Invocation:
    """Run one CLI command in its own process, as `mlops --config FILE ...` does; `mlops` is the
    argument vector of the console script."""
    environment = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(PROJECT_ROOT / "src"), *filter(None, [environment.get("PYTHONPATH")])]
    )
    completed = subprocess.run(
        [*mlops, "--config", str(config_file), *arguments],
        capture_output=True,
        text=True,
        env=environment,
        cwd=config_file.parent,
        check=False,
    )
    return Invocation(completed.returncode, completed.stdout, completed.stderr)


def read_table(config: ProjectConfig) -> pd.DataFrame:
    """The data file as text cells, missing cells as NaN (the conventions the pipeline reads it with)."""
    return pd.read_csv(config.data_path, dtype=str)


@pytest.fixture(scope="module")
def config() -> ProjectConfig:
    return load_config(PROJECT_FILE)


@dataclass(frozen=True)
class TrainedProject:
    config_file: Path
    config: ProjectConfig
    version: int
    report: Invocation
    bundle: Path


@pytest.fixture(scope="module")
def trained(
    config: ProjectConfig, tmp_path_factory: pytest.TempPathFactory, mlops_command: tuple[str, ...]
) -> TrainedProject:
    """project.yaml as it is, with only its outputs moved aside; trained once and reported."""
    scratch = tmp_path_factory.mktemp("project")
    document = yaml.safe_load(PROJECT_FILE.read_text(encoding="utf-8"))
    document["data"]["path"] = str(config.data_path)
    governance = document.setdefault("governance", {})
    governance["policies_dir"] = str(config.resolve(config.governance.policies_dir))
    governance["model_card"] = str(config.resolve(config.governance.model_card))
    governance["reports_dir"] = str(scratch / "reports")
    document["mlflow"]["tracking_uri"] = f"sqlite:///{scratch / 'mlflow.db'}"
    document["mlflow"]["artifact_root"] = str(scratch / "mlartifacts")
    config_file = scratch / "project.yaml"
    config_file.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")

    training = invoke(mlops_command, config_file, "train")
    assert training.code == 0, training.stderr
    version = int(training.stdout.strip().splitlines()[-1])
    reported = invoke(mlops_command, config_file, "report", "--version", str(version))
    assert reported.code == 0, reported.stderr
    moved = load_config(config_file)
    bundle = moved.resolve(moved.governance.reports_dir) / moved.mlflow.registered_model / str(version)
    return TrainedProject(config_file, moved, version, reported, bundle)


def test_project_file_loads_and_names_an_existing_data_file(config: ProjectConfig) -> None:
    assert config.environments, "project.yaml: list at least one environment"
    assert config.data_path.is_file(), f"data.path: {config.data_path} does not exist"


def test_data_holds_every_declared_column(config: ProjectConfig) -> None:
    columns = set(read_table(config).columns)
    declared = {
        "data.target": [config.data.target],
        "data.numeric_features": config.data.numeric_features,
        "data.categorical_features": config.data.categorical_features,
        "data.ignore_columns": config.data.ignore_columns,
        "data.sensitive_features": config.data.sensitive_features,
    }
    missing = {key: [name for name in names if name not in columns] for key, names in declared.items()}
    assert not any(missing.values()), f"declared in project.yaml but not in {config.data.path}: {missing}"


def test_target_has_two_classes_and_the_positive_label_is_one_of_them(config: ProjectConfig) -> None:
    target = read_table(config)[config.data.target]
    assert target.notna().all(), f"data.target {config.data.target!r}: every row needs a label"
    classes = set(target.str.strip())
    assert len(classes) == 2, f"data.target {config.data.target!r}: expected two classes, found {classes}"
    assert config.data.positive_label in classes, (
        f"data.positive_label {config.data.positive_label!r} is not one of {sorted(classes)}"
    )


def test_numeric_features_hold_only_finite_numbers_or_empty_cells(config: ProjectConfig) -> None:
    table = read_table(config)
    for column in config.data.numeric_features:
        cells = table[column].dropna()
        numbers = pd.to_numeric(cells, errors="coerce").astype("float64")
        bad = cells[~np.isfinite(numbers)]
        assert bad.empty, f"numeric feature {column!r} holds {bad.iloc[0]!r} (data line {bad.index[0] + 2})"


def test_each_sensitive_feature_is_a_column_with_at_least_two_groups(config: ProjectConfig) -> None:
    table = read_table(config)
    for column in config.data.sensitive_features:
        assert column in table.columns, f"data.sensitive_features: {column!r} is not a column"
        groups = table[column].dropna().unique()
        assert len(groups) >= 2, f"sensitive feature {column!r} has {len(groups)} group(s): no gap to audit"


def chance_margin_of_roc_auc(test_rows: int, positive_rate: float) -> float:
    """Three standard errors of the ROC AUC of scores with no skill on the held-out set.

    Under no skill the AUC is the Mann-Whitney statistic of two exchangeable samples: mean 0.5,
    variance (n + 1) / (12 n_pos n_neg). The split is stratified, so n_pos follows the data's rate.
    """
    positives = max(1, round(test_rows * positive_rate))
    negatives = max(1, test_rows - positives)
    return Z_MARGIN * math.sqrt((positives + negatives + 1) / (12 * positives * negatives))


def test_chance_margin_matches_the_spread_of_roc_auc_without_skill() -> None:
    """The margin above is three standard errors of what scores with no skill reach, on any balance."""
    rng = np.random.default_rng(11)
    for positives, negatives in ((30, 270), (200, 200), (1084, 223)):
        # AUC of random scores from the rank sum of the positives (Mann-Whitney), 2,000 draws at once.
        ranks = rng.random((2000, positives + negatives)).argsort(axis=1).argsort(axis=1) + 1
        rank_sums = ranks[:, :positives].sum(axis=1)
        aucs = (rank_sums - positives * (positives + 1) / 2) / (positives * negatives)
        margin = chance_margin_of_roc_auc(positives + negatives, positives / (positives + negatives))
        assert aucs.mean() == pytest.approx(0.5, abs=0.01)
        assert aucs.std() == pytest.approx(margin / Z_MARGIN, rel=0.1)


def test_trained_model_beats_the_majority_baseline_beyond_chance(trained: TrainedProject) -> None:
    document = json.loads((trained.bundle / "metrics.json").read_text(encoding="utf-8"))
    metrics, baseline, test_rows = document["metrics"], document["baseline"], document["test_rows"]
    target = read_table(trained.config)[trained.config.data.target].str.strip()
    positive_rate = float((target == trained.config.data.positive_label).mean())
    auc_margin = chance_margin_of_roc_auc(test_rows, positive_rate)
    # A constant prediction ranks nothing and recalls one class only: 0.5 on both, on any data.
    assert baseline["roc_auc"] == pytest.approx(0.5)
    assert baseline["balanced_accuracy"] == pytest.approx(0.5)
    assert metrics["roc_auc"] > 0.5 + auc_margin, (
        f"ROC AUC {metrics['roc_auc']:.3f} on {test_rows} held-out rows is within chance of the "
        f"majority baseline (0.5 + {auc_margin:.3f})"
    )
    # Its decisions at the 0.5 threshold must not all be the majority class either. (No margin here:
    # on imbalanced data a skilled model's balanced accuracy at 0.5 can sit close to 0.5.)
    assert metrics["balanced_accuracy"] > 0.5, (
        f"balanced accuracy {metrics['balanced_accuracy']:.3f}: the model's decisions are no better than "
        "always predicting the majority class (0.5)"
    )


def test_evidence_bundle_builds_and_verifies(trained: TrainedProject, mlops_command: tuple[str, ...]) -> None:
    manifest = json.loads((trained.bundle / "evidence.json").read_text(encoding="utf-8"))
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((trained.bundle / name).read_bytes()).hexdigest() == digest, name
    assert manifest["version"] == trained.version
    verified = invoke(mlops_command, trained.config_file, "verify", "--version", str(trained.version))
    assert verified.code == 0, verified.stdout + verified.stderr
    fairness = json.loads((trained.bundle / "fairness.json").read_text(encoding="utf-8"))
    audited = {item["feature"] for item in fairness["features"]}
    assert set(trained.config.data.sensitive_features) <= audited


def test_gate_decides_for_every_environment(trained: TrainedProject, mlops_command: tuple[str, ...]) -> None:
    for environment in trained.config.environments:
        gated = invoke(
            mlops_command,
            trained.config_file,
            "gate",
            "--version",
            str(trained.version),
            "--env",
            environment,
        )
        assert gated.code in (EXIT_ALLOW, EXIT_DENY), f"{environment}: {gated.stdout}{gated.stderr}"
        verdict = "ALLOW" if gated.code == EXIT_ALLOW else "DENY"
        assert f"Policy decision for {environment}: {verdict}" in gated.stdout, gated.stdout
