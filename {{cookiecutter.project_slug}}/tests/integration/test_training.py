"""Training and registration on the fixture data (tests/fixtures/): figures of the Adult fixture hold here.

The team's own data is checked by tests/project/, against the majority baseline rather than these figures.
"""

from __future__ import annotations

import hashlib

import mlflow
import pytest

from {{ cookiecutter.package_name }}.commands.training import train
from {{ cookiecutter.package_name }}.config import ProjectConfig
from {{ cookiecutter.package_name }}.errors import RegistryError
from {{ cookiecutter.package_name }}.io import registry
from {{ cookiecutter.package_name }}.pipeline.evaluation import evaluate

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def trained(isolated_config: ProjectConfig):
    return train(isolated_config)


def test_trained_model_beats_the_majority_class_baseline(trained) -> None:
    # Every model family reaches these on the fixture's 375 held-out Adult rows.
    assert trained.metrics["accuracy"] > trained.baseline["accuracy"] + 0.03
    assert trained.metrics["balanced_accuracy"] > trained.baseline["balanced_accuracy"] + 0.15
    assert trained.metrics["roc_auc"] > 0.8
    assert trained.metrics["log_loss"] < trained.baseline["log_loss"]


def test_registered_version_carries_commit_and_data_digest(isolated_config: ProjectConfig, trained) -> None:
    found = registry.get_version(isolated_config, trained.registered.version)
    expected_digest = hashlib.sha256(isolated_config.data_path.read_bytes()).hexdigest()
    assert found.tags["data_digest"] == expected_digest
    assert found.tags["model_family"] == isolated_config.model.family
    assert found.tags["git_sha"] == registry.source_revision(isolated_config.root).sha
    assert found.tags["data_rows"] == str(trained.dataset.rows)


def test_run_records_metrics_params_and_dataset(isolated_config: ProjectConfig, trained) -> None:
    client = mlflow.MlflowClient(tracking_uri=isolated_config.tracking_uri)
    run = client.get_run(trained.registered.run_id)
    for name, value in trained.metrics.items():
        assert run.data.metrics[f"test_{name}"] == pytest.approx(value)
    assert run.data.params["model_family"] == isolated_config.model.family
    [dataset_input] = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == isolated_config.data.name
    assert dataset_input.dataset.digest == trained.dataset.digest[:32]
    assert f'"num_rows": {trained.dataset.rows}' in dataset_input.dataset.profile


def test_registered_model_reproduces_the_logged_metrics(isolated_config: ProjectConfig, trained) -> None:
    model = registry.load_version(isolated_config, trained.registered.version)
    recomputed = evaluate(model, trained.split.test_features, trained.split.test_labels)
    assert recomputed == pytest.approx(trained.metrics)


def test_each_forced_training_registers_a_new_version(isolated_config: ProjectConfig, trained) -> None:
    assert train(isolated_config, force=True).registered.version == trained.registered.version + 1


def test_unknown_version_is_named(isolated_config: ProjectConfig, trained) -> None:
    missing = trained.registered.version + 10
    with pytest.raises(RegistryError, match=rf"has no version {missing}"):
        registry.get_version(isolated_config, missing)
