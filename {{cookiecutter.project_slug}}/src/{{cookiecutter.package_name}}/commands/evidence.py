"""Evidence and gate: build a version's evidence bundle and decide whether it may be promoted."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from pathlib import Path

from {{ cookiecutter.package_name }}.commands.records import record_keeping
from {{ cookiecutter.package_name }}.config import ModelConfig, ProjectConfig
from {{ cookiecutter.package_name }}.errors import DataValidationError
from {{ cookiecutter.package_name }}.governance import charts, evidence, model_card, policy, summary
from {{ cookiecutter.package_name }}.governance.comparison import (
    ChampionComparison,
    compare_with_champion,
    first_release,
    is_champion,
)
from {{ cookiecutter.package_name }}.governance.explainability import explain
from {{ cookiecutter.package_name }}.governance.fairness import (
    INTERSECTION,
    compute_fairness,
    describe_largest_gap,
)
from {{ cookiecutter.package_name }}.governance.profile import PROFILE_FILE, build_profile
from {{ cookiecutter.package_name }}.governance.sample_size import held_out_warnings
from {{ cookiecutter.package_name }}.io import registry
from {{ cookiecutter.package_name }}.pipeline.data import Dataset, load_training_data
from {{ cookiecutter.package_name }}.pipeline.evaluation import evaluate, majority_baseline, positive_scores
from {{ cookiecutter.package_name }}.pipeline.feedback import training_split
from {{ cookiecutter.package_name }}.pipeline.training import Split

REPORT_PACKAGES = ("scikit-learn", "pandas", "numpy", "mlflow", "shap", "fairlearn", "regopy")
GAP_NAMES = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
)
CHECKS_FILE = "checks.json"  # what the gate reads besides metrics and fairness: card check, warnings
SCHEMA_FILE = "schema.json"  # the feature columns by type, as declared or inferred from the data


@dataclass(frozen=True)
class ReportResult:
    directory: Path
    manifest: dict
    decision: policy.Decision


@dataclass(frozen=True)
class GateResult:
    """The gate's decision; `champion` is the environment's current champion (the candidate itself
    when it already holds the alias), None before the first release."""

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
    metrics_document: dict,
    fairness_document: dict,
    comparison: ChampionComparison,
    integrity: evidence.Integrity,
    checks: dict,
    min_group_size: int,
) -> dict:
    """The document the promotion rules read as `input`, built from the bundle's JSON documents.

    `report` calls it with the documents it is about to write and `gate` with the ones it reads back,
    so decision.json and the gate's decision are made the same way.
    """
    fairness_gaps = {
        item["feature"]: {
            **{name: item.get(name) for name in GAP_NAMES},
            "small_groups": item.get("small_groups", []),
        }
        for item in fairness_document.get("features", [])
        if item.get("feature") != INTERSECTION
    }
    return {
        "environment": environment,
        "min_group_size": min_group_size,
        "model": {"name": registered.name, "version": registered.version},
        "metrics": metrics_document.get("metrics", {}),
        "champion": comparison.policy_champion(),
        "comparison": comparison.to_dict(),
        "fairness": fairness_gaps,
        "model_card": checks.get("model_card"),
        "evidence": integrity.to_dict(),
        "warnings": checks.get("warnings", []),
    }


def resolve_champion(
    config: ProjectConfig,
    environment: str,
    candidate: registry.RegisteredVersion,
    recorded: dict[str, dict] | None = None,
    held_out: tuple[Dataset, Split] | None = None,
) -> tuple[registry.RegisteredVersion | None, ChampionComparison]:
    """The environment's current champion and how the candidate compares with it.

    The champion is scored on the candidate's own held-out rows with the same metric code, never
    judged by the metrics stored with it (another held-out set). `recorded` holds the comparisons
    already in the bundle (metrics.json `champions`); a champion not among them is scored now, on
    `held_out` or on the split rebuilt from the candidate's data.
    """
    current = registry.champion(config, environment)
    if current is None:
        return None, first_release(environment)
    if current.version == candidate.version:
        return current, is_champion(environment, current.version)
    for document in (recorded or {}).values():
        measured = document.get("status") in {"compared", "new_schema"}
        if measured and document.get("version") == current.version:
            return current, ChampionComparison.from_dict({**document, "environment": environment})
    dataset, split = held_out if held_out is not None else _training_split(config, candidate)
    model = registry.load_version(config, current.version)
    return current, compare_with_champion(
        environment,
        current.version,
        model,
        split.test_features,
        split.test_labels,
        same_data=current.tags.get("data_digest") == dataset.digest,
    )


def _training_split(config: ProjectConfig, registered: registry.RegisteredVersion) -> tuple[Dataset, Split]:
    """Rebuild exactly the held-out split the version was evaluated on, from the same data."""
    dataset = load_training_data(config)  # with the feedback rows it was trained on, if any
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
    return dataset, training_split(dataset, model_settings)


def check_governance_inputs(config: ProjectConfig) -> None:
    """Fail before training when the policy pack or the model card text cannot be used."""
    policy.load_policy(config.resolve(config.governance.policies_dir), config.policy_pack)
    model_card.load_card_text(config.resolve(config.governance.model_card))


def report(config: ProjectConfig, version: int) -> ReportResult:
    """Build the evidence bundle of a registered version and gate it for the first environment.

    Warnings about the evidence (the card's text still the template's demo text, a held-out set too
    small to measure) are printed on stderr and shown on the card.
    """
    registered = registry.get_version(config, version)
    rules = policy.load_policy(config.resolve(config.governance.policies_dir), config.policy_pack)
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
    comparisons: dict[str, ChampionComparison] = {}
    for name in config.environments:
        recorded = {key: value.to_dict() for key, value in comparisons.items()}
        _, comparisons[name] = resolve_champion(config, name, registered, recorded, (dataset, split))

    card_check = model_card.card_check(card_text, dataset.digest)
    candidates = [model_card.demo_text_warning(card_check, dataset.name)]
    warnings = [warning for warning in candidates if warning] + held_out_warnings(split.test_labels, fairness)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)

    images = {
        "shap_beeswarm.png": charts.shap_beeswarm_png(shap_report),
        "shap_bar.png": charts.shap_bar_png(shap_report),
    }
    fairness_images = {}
    for audit in fairness.audits:
        name = evidence.safe_file_name("fairness_", audit.feature, ".png")
        images[name] = charts.fairness_png(audit)
        fairness_images[audit.feature] = name
    fairness_document = fairness.to_dict()
    for item in fairness_document["features"]:
        item["chart"] = fairness_images[item["feature"]]
    metrics_document = {
        "metrics": metrics,
        "baseline": baseline,
        "test_rows": len(split.test_labels),
        "champions": {name: comparison.to_dict() for name, comparison in comparisons.items()},
    }
    checks = {"model_card": card_check, "warnings": warnings}
    files = {
        "metrics.json": _json(metrics_document),
        "shap.json": _json(shap_report.to_dict()),
        "fairness.json": _json(fairness_document),
        CHECKS_FILE: _json(checks),
        SCHEMA_FILE: _json(dataset.schema.to_dict()),
        PROFILE_FILE: _json(
            build_profile(
                split.train_features,
                list(dataset.schema.numeric),
                list(dataset.schema.categorical),
                scores,
                split.test_labels,
                split.test_sensitive,
                random_state=int(params.get("random_state", config.model.random_state)),
            )
        ),
        **images,
    }
    environment = config.environments[0]
    decision = policy.evaluate(
        rules,
        policy_input(
            environment,
            registered,
            metrics_document,
            fairness_document,
            comparisons[environment],
            evidence.Integrity(),
            checks,
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
        "records": record_keeping(config),
        "notices": warnings,
        "data": model_card.data_facts(
            name=dataset.name,
            source=str(config.data.path),
            digest=dataset.digest,
            features=dataset.features,
            labels=dataset.labels,
            test_labels=split.test_labels,
            sensitive=split.test_sensitive,
            model_inputs=[
                str(column) for column in getattr(model, "feature_names_in_", dataset.features.columns)
            ],
            target=config.data.target,
            positive_label=config.data.positive_label,
            numeric_columns=list(dataset.schema.numeric),
            schema_inferred=dataset.schema.inferred,
        ),
        "metrics": metrics,
        "baseline": baseline,
        "champion": decision.champion,
        "champion_line": summary.champion_line(decision),
        "metric_labels": model_card.METRIC_LABELS,
        "fairness": fairness_document,
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
        "decision": decision.to_dict(),
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
    rules = policy.load_policy(config.resolve(config.governance.policies_dir), config.policy_pack)
    directory = bundle_path(config, version)
    integrity = evidence.verify_bundle(directory)
    manifest = evidence.read_manifest(directory)
    if manifest.get("version") != version or manifest.get("model") != registered.name:
        raise evidence.EvidenceError(
            f"{directory / evidence.MANIFEST} describes {manifest.get('model')} version "
            f"{manifest.get('version')}, not {registered.name} version {version}"
        )
    metrics_document = _read_intact(directory, "metrics.json", integrity, manifest)
    fairness_document = _read_intact(directory, "fairness.json", integrity, manifest)
    checks = _read_intact(directory, CHECKS_FILE, integrity, manifest)
    champion, comparison = resolve_champion(
        config, environment, registered, metrics_document.get("champions")
    )
    decision = policy.evaluate(
        rules,
        policy_input(
            environment,
            registered,
            metrics_document,
            fairness_document,
            comparison,
            integrity,
            checks,
            config.governance.min_group_size,
        ),
    )
    return GateResult(decision=decision, integrity=integrity, champion=champion)


def _read_intact(directory: Path, name: str, integrity: evidence.Integrity, manifest: dict) -> dict:
    """A bundle file's content, or an empty document when it is missing or not in the manifest (the
    policy then denies what it cannot check)."""
    if name in integrity.missing or name not in manifest.get("files", {}):
        return {}
    return evidence.read_json(directory, name)


def _json(document: dict) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=False) + "\n").encode()
