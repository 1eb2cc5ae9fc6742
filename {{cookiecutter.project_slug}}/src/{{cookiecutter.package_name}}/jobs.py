"""The steps the CLI and the workflows run, each composed from pipeline, governance and delivery."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from pathlib import Path

from {{ cookiecutter.package_name }}.config import ModelConfig, ProjectConfig
from {{ cookiecutter.package_name }}.delivery import registry
from {{ cookiecutter.package_name }}.errors import DataValidationError
from {{ cookiecutter.package_name }}.governance import charts, evidence, model_card, policy
from {{ cookiecutter.package_name }}.governance.explainability import explain
from {{ cookiecutter.package_name }}.governance.fairness import compute_fairness, describe_largest_gap
from {{ cookiecutter.package_name }}.pipeline.data import Dataset, load_dataset
from {{ cookiecutter.package_name }}.pipeline.evaluation import evaluate, majority_baseline, positive_scores
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


REPORT_PACKAGES = ("scikit-learn", "pandas", "numpy", "mlflow", "shap", "fairlearn", "regopy")
GAP_NAMES = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
)


@dataclass(frozen=True)
class ReportResult:
    directory: Path
    manifest: dict
    decision: policy.Decision


@dataclass(frozen=True)
class GateResult:
    decision: policy.Decision
    integrity: evidence.Integrity
    champion: registry.RegisteredVersion | None


def bundle_path(config: ProjectConfig, version: int) -> Path:
    return evidence.bundle_directory(
        config.resolve(config.governance.reports_dir), config.mlflow.registered_model, version
    )


def policy_input(
    environment: str,
    registered: registry.RegisteredVersion,
    metrics: dict[str, float],
    fairness_gaps: dict[str, dict],
    champion: registry.RegisteredVersion | None,
    champion_metrics: dict[str, float] | None,
    integrity: evidence.Integrity,
    min_group_size: int,
) -> dict:
    """The document the promotion rules read as `input`."""
    return {
        "environment": environment,
        "min_group_size": min_group_size,
        "model": {"name": registered.name, "version": registered.version},
        "metrics": metrics,
        "champion": None
        if champion is None
        else {"version": champion.version, "metrics": champion_metrics or {}},
        "fairness": fairness_gaps,
        "evidence": integrity.to_dict(),
    }


def resolve_champion(config: ProjectConfig, environment: str, candidate: int):
    """The environment's current champion and its held-out metrics (None before the first release)."""
    current = registry.champion(config, environment)
    if current is None or current.version == candidate:
        return None, None
    _, logged = registry.run_details(config, current.run_id)
    metrics = {
        name.removeprefix("test_"): value for name, value in logged.items() if name.startswith("test_")
    }
    return current, metrics


def _training_split(config: ProjectConfig, registered: registry.RegisteredVersion) -> tuple[Dataset, Split]:
    """Rebuild exactly the held-out split the version was evaluated on, from the same data."""
    dataset = load_dataset(config.data, config.data_path)
    expected = registered.tags.get("data_digest")
    if expected and dataset.digest != expected:
        raise DataValidationError(
            f"{config.data.path} changed since version {registered.version} was trained "
            f"(sha256 {dataset.digest[:12]}, trained on {expected[:12]}): train a new version first"
        )
    params, _ = registry.run_details(config, registered.run_id)
    model_settings = ModelConfig(
        family=config.model.family,
        test_size=float(params.get("test_size", config.model.test_size)),
        random_state=int(params.get("random_state", config.model.random_state)),
    )
    return dataset, split_dataset(dataset, model_settings)


def check_governance_inputs(config: ProjectConfig) -> None:
    """Fail before training when the policy pack or the model card text cannot be used."""
    policy.load_policy(config.resolve(config.governance.policies_dir))
    model_card.load_card_text(config.resolve(config.governance.model_card))


def report(config: ProjectConfig, version: int) -> ReportResult:
    """Build the evidence bundle of a registered version and gate it for the first environment."""
    registered = registry.get_version(config, version)
    rules = policy.load_policy(config.resolve(config.governance.policies_dir))
    card_text = model_card.load_card_text(config.resolve(config.governance.model_card))
    model = registry.load_version(config, version)
    dataset, split = _training_split(config, registered)
    params, _ = registry.run_details(config, registered.run_id)

    scores = positive_scores(model, split.test_features)
    metrics = evaluate(model, split.test_features, split.test_labels)
    baseline = majority_baseline(split.train_labels, split.test_labels)
    fairness = compute_fairness(
        split.test_labels,
        (scores >= 0.5).astype(int),
        split.test_sensitive,
        config.governance.min_group_size,
        max_rows=config.governance.fairness_max_rows,
    )
    shap_report = explain(
        model,
        split.test_features,
        split.train_features,
        sample_size=config.governance.shap_sample_size,
        background_size=config.governance.shap_background_size,
        random_state=int(params.get("random_state", config.model.random_state)),
    )

    images = {
        "shap_beeswarm.png": charts.shap_beeswarm_png(shap_report),
        "shap_bar.png": charts.shap_bar_png(shap_report),
    }
    fairness_images = {}
    for audit in fairness.audits:
        name = f"fairness_{audit.feature}.png"
        images[name] = charts.fairness_png(audit)
        fairness_images[audit.feature] = name
    files = {
        "metrics.json": _json(
            {"metrics": metrics, "baseline": baseline, "test_rows": len(split.test_labels)}
        ),
        "shap.json": _json(shap_report.to_dict()),
        "fairness.json": _json(fairness.to_dict()),
        **images,
    }
    environment = config.environments[0]
    champion, champion_metrics = resolve_champion(config, environment, version)
    staged = evidence.Integrity()
    decision = policy.evaluate(
        rules,
        policy_input(
            environment,
            registered,
            metrics,
            fairness.policy_input(),
            champion,
            champion_metrics,
            staged,
            config.governance.min_group_size,
        ),
    )
    context = {
        "model": {
            "name": registered.name,
            "version": version,
            "uri": registered.model_uri,
            "family": config.model.family,
            "estimator": type(model.steps[-1][1]).__name__,
            "params": {
                key.removeprefix("model__"): value
                for key, value in sorted(params.items())
                if key.startswith("model__") and value not in ("None", "")
            },
        },
        "text": card_text.model_dump(),
        "data": {
            "name": dataset.name,
            "source": str(config.data.path),
            "rows": dataset.rows,
            "test_rows": len(split.test_labels),
            "digest": dataset.digest,
            "target": config.data.target,
            "positive_label": config.data.positive_label,
            "sensitive_features": config.data.sensitive_features,
        },
        "metrics": metrics,
        "baseline": baseline,
        "metric_labels": model_card.METRIC_LABELS,
        "fairness": fairness.to_dict(),
        "fairness_summary": describe_largest_gap(fairness),
        "fairness_images": fairness_images,
        "gap_names": GAP_NAMES,
        "explainability": shap_report.to_dict(),
        "reproducibility": {
            "git_sha": registered.tags.get("git_sha", "unknown"),
            "git_dirty": registered.tags.get("git_dirty") == "true",
            "run_id": registered.run_id,
            "test_size": params.get("test_size"),
            "random_state": params.get("random_state"),
            "packages": {package: installed_version(package) for package in REPORT_PACKAGES},
        },
        "decision": {**decision.to_dict(), "policy_pack": config.policy_pack},
    }
    files["decision.json"] = _json(context["decision"])
    files["MODEL_CARD.md"] = model_card.render_markdown(context).encode()
    files["model_card.html"] = model_card.render_html(context, images).encode()
    identity = {
        "model": registered.name,
        "version": version,
        "git_sha": registered.tags.get("git_sha", "unknown"),
        "data_digest": dataset.digest,
        "run_id": registered.run_id,
    }
    directory = bundle_path(config, version)
    manifest = evidence.write_bundle(directory, files, identity)
    registry.log_evidence(config, registered.run_id, directory)
    registry.tag_version(config, version, {f"gate_{environment}": "allow" if decision.allow else "deny"})
    return ReportResult(directory=directory, manifest=manifest, decision=decision)


def gate(config: ProjectConfig, version: int, environment: str) -> GateResult:
    """Decide whether a version's verified evidence may be promoted to `environment`."""
    if environment not in config.environments:
        raise policy.PolicyError(
            f"--env {environment!r} is not an environment of this project (environments: "
            f"{', '.join(config.environments)})"
        )
    registered = registry.get_version(config, version)
    rules = policy.load_policy(config.resolve(config.governance.policies_dir))
    directory = bundle_path(config, version)
    integrity = evidence.verify_bundle(directory)
    manifest = evidence.read_manifest(directory)
    if manifest.get("version") != version or manifest.get("model") != registered.name:
        raise evidence.EvidenceError(
            f"{directory / evidence.MANIFEST} describes {manifest.get('model')} version "
            f"{manifest.get('version')}, not {registered.name} version {version}"
        )
    metrics = _read_intact(directory, "metrics.json", integrity).get("metrics", {})
    fairness_document = _read_intact(directory, "fairness.json", integrity)
    fairness_gaps = {
        item["feature"]: {
            **{name: item.get(name) for name in GAP_NAMES},
            "small_groups": item.get("small_groups", []),
        }
        for item in fairness_document.get("features", [])
        if item.get("feature") != "intersection"
    }
    champion, champion_metrics = resolve_champion(config, environment, version)
    decision = policy.evaluate(
        rules,
        policy_input(
            environment,
            registered,
            metrics,
            fairness_gaps,
            champion,
            champion_metrics,
            integrity,
            config.governance.min_group_size,
        ),
    )
    return GateResult(decision=decision, integrity=integrity, champion=champion)


def _read_intact(directory: Path, name: str, integrity: evidence.Integrity) -> dict:
    """A bundle file's content, or an empty document when it is missing (the policy then denies)."""
    if name in integrity.missing:
        return {}
    return evidence.read_json(directory, name)


def _json(document: dict) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=False) + "\n").encode()
