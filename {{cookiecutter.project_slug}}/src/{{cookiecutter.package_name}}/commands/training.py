"""Training: validate the data, fit, evaluate on the held-out split, register (or reuse) a version."""

from __future__ import annotations

from dataclasses import dataclass

from {{ cookiecutter.package_name }}.config import ProjectConfig
from {{ cookiecutter.package_name }}.io import registry
from {{ cookiecutter.package_name }}.pipeline.data import Dataset, load_training_data, validate_for_training
from {{ cookiecutter.package_name }}.pipeline.evaluation import evaluate, majority_baseline
from {{ cookiecutter.package_name }}.pipeline.features import build_pipeline
from {{ cookiecutter.package_name }}.pipeline.feedback import training_split
from {{ cookiecutter.package_name }}.pipeline.training import Split, fit_pipeline


@dataclass(frozen=True)
class TrainingResult:
    registered: registry.RegisteredVersion
    dataset: Dataset
    split: Split
    model: object
    metrics: dict[str, float]
    baseline: dict[str, float]
    reused: bool = False


def reusable_version(config: ProjectConfig, dataset: Dataset) -> registry.RegisteredVersion | None:
    """The version already trained from this clean commit, these data and this configuration."""
    revision = registry.source_revision(config.root)
    if revision.dirty or revision.sha == "unknown":
        return None
    found = registry.session(config).find_versions(
        git_sha=revision.sha,
        data_digest=dataset.digest,
        training_digest=registry.training_digest(config),
        git_dirty="false",
    )
    return found[0] if found else None


def train(config: ProjectConfig, force: bool = False) -> TrainingResult:
    """Validate the data, fit, evaluate on the held-out split, and register a new model version.

    When the same clean commit, data and configuration already produced a version, that version is
    returned (`reused`) instead of registering an identical one; `force` trains anyway. With
    `data.feedback_path` set, the imported feedback rows join the training split (never the held-out
    one) and the data digest covers them.
    """
    dataset = load_training_data(config)
    validate_for_training(config.data, dataset, test_size=config.model.test_size)
    split = training_split(dataset, config.model)
    existing = None if force else reusable_version(config, dataset)
    if existing is not None:
        session = registry.session(config)
        return TrainingResult(
            registered=existing,
            dataset=dataset,
            split=split,
            model=session.load_model(existing.version),
            metrics=session.logged_metrics(existing.version, "test_"),
            baseline=session.logged_metrics(existing.version, "baseline_"),
            reused=True,
        )
    pipeline = build_pipeline(dataset.schema, config.model)
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
