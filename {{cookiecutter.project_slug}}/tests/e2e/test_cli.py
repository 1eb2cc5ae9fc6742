"""The command line as a user runs it: separate processes, a copy of the project, its own MLflow store.

`cli_process` runs a fresh interpreter where the process itself is under test (the printed version,
one-line errors without a traceback); `cli` forks a warm one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import pytest

from {{ cookiecutter.package_name }}.config import load_config

pytestmark = pytest.mark.e2e

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "{{ cookiecutter.package_name }}"


# Loads a registered version by number in a new interpreter and recomputes its held-out metrics.
RELOAD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import mlflow
    from PACKAGE.config import load_config
    from PACKAGE.pipeline.data import load_dataset
    from PACKAGE.pipeline.evaluation import evaluate
    from PACKAGE.pipeline.training import split_dataset

    config = load_config(sys.argv[1])
    client = mlflow.MlflowClient(tracking_uri=config.tracking_uri)
    version = client.get_model_version(config.mlflow.registered_model, sys.argv[2])
    mlflow.set_tracking_uri(config.tracking_uri)
    model = mlflow.sklearn.load_model("models:/%s/%s" % (version.name, version.version))
    split = split_dataset(load_dataset(config.data, config.data_path), config.model)
    recomputed = evaluate(model, split.test_features, split.test_labels)
    logged = client.get_run(version.run_id).data.metrics
    print(json.dumps(dict(recomputed=recomputed, logged=logged)))
    """
).replace("PACKAGE", PACKAGE)


def test_run_leaves_a_version_that_a_fresh_process_loads(ran_workspace: Path) -> None:
    workspace = ran_workspace
    environment = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    environment["PYTHONPATH"] = str(PROJECT_ROOT / "src")
    fresh = subprocess.run(
        [sys.executable, "-c", RELOAD_SCRIPT, str(workspace / "project.yaml"), "1"],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert fresh.returncode == 0, fresh.stderr
    report = json.loads(fresh.stdout.strip().splitlines()[-1])
    for name, value in report["recomputed"].items():
        assert report["logged"][f"test_{name}"] == pytest.approx(value)
    assert (workspace / "mlflow.db").is_file()


def registered_versions(workspace: Path) -> list[int]:
    config = load_config(workspace / "project.yaml")
    client = mlflow.MlflowClient(tracking_uri=config.tracking_uri)
    found = client.search_model_versions(f"name='{config.mlflow.registered_model}'")
    return sorted(int(version.version) for version in found)


def test_train_prints_the_new_version_number(workspace: Path, cli_process) -> None:
    assert not (workspace / "mlflow.db").exists()
    result = cli_process(workspace, "train")
    assert result.returncode == 0, result.stderr
    assert registered_versions(workspace) == [1]
    assert result.stdout.strip() == "1"


def test_invalid_config_is_one_line_without_traceback(workspace: Path, cli_process) -> None:
    config_file = workspace / "project.yaml"
    config_file.write_text(config_file.read_text().replace("family:", "famly:"))
    result = cli_process(workspace, "train")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "model.famly: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_data_registers_nothing(workspace: Path, cli) -> None:
    data_file = load_config(workspace / "project.yaml").data_path
    lines = data_file.read_text().splitlines()
    lines[0] = lines[0].replace("hours-per-week", "hours")
    data_file.write_text("\n".join(lines) + "\n")
    result = cli(workspace, "train")
    assert result.returncode == 2
    assert "hours-per-week" in result.stderr and "Traceback" not in result.stderr
    assert not (workspace / "mlflow.db").exists()
    assert not (workspace / "mlartifacts").exists()
