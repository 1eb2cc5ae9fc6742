"""The steps the CLI and the workflows run, each composed from pipeline, governance and delivery."""

from __future__ import annotations

from dataclasses import dataclass

from {{ cookiecutter.package_name }}.config import ProjectConfig
from {{ cookiecutter.package_name }}.delivery import registry
from {{ cookiecutter.package_name }}.pipeline.data import Dataset, load_dataset
from {{ cookiecutter.package_name }}.pipeline.evaluation import evaluate, majority_baseline
from {{ cookiecutter.package_name }}.pipeline.features import build_pipeline
from {{ cookiecutter.package_name }}.pipeline.training import Split, fit_pipeline, split_dataset


@dataclass(frozen=True)
class TrainingResult:
    registered: registry.RegisteredVersion
    dataset: Dataset
    split: Split
    model: object
    metrics: dict[str, float]
    baseline: dict[str, float]


def train(config: ProjectConfig) -> TrainingResult:
    """Validate the data, fit, evaluate on the held-out split, and register a new model version."""
    dataset = load_dataset(config.data, config.data_path)
    split = split_dataset(dataset, config.model)
    pipeline = build_pipeline(config.data, config.model)
    model = fit_pipeline(pipeline, split)
    metrics = evaluate(model, split.test_features, split.test_labels)
    baseline = majority_baseline(split.train_labels, split.test_labels)
    params = {
        "model_family": config.model.family,
        "test_size": config.model.test_size,
        "random_state": config.model.random_state,
        **{f"model__{key}": value for key, value in model.named_steps["model"].get_params().items()},
    }
    registered = registry.log_training(
        config, dataset, model, params, metrics, baseline, input_example=split.test_features
    )
    return TrainingResult(registered, dataset, split, model, metrics, baseline)
