"""Command line: one command per workflow step, and `run` for the whole local loop in one process.

Expected failures print one line on stderr and exit 2; nothing is printed as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from {{ cookiecutter.package_name }}.config import DEFAULT_CONFIG_FILE, ProjectConfig, load_config
from {{ cookiecutter.package_name }}.errors import ProjectError

EXIT_DENY = 1
EXIT_ERROR = 2


def _print_metrics(metrics: dict[str, float], baseline: dict[str, float]) -> None:
    print(f"  {'metric':<20}{'model':>10}{'baseline':>10}")
    for name, value in metrics.items():
        print(f"  {name:<20}{value:>10.4f}{baseline[name]:>10.4f}")


def command_train(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.jobs import train

    result = train(config)
    print(result.registered.version)
    return 0


def _print_decision(decision) -> None:
    verdict = "ALLOW" if decision.allow else "DENY"
    print(f"Policy decision for {decision.environment}: {verdict}")
    for reason in decision.reasons:
        print(f"  - {reason}")
    for note in decision.notes:
        print(f"  - note: {note}")


def command_report(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.jobs import report

    result = report(config, arguments.version)
    print(
        f"Evidence bundle: {result.directory} ({len(result.manifest['files'])} files, manifest evidence.json)"
    )
    _print_decision(result.decision)
    return 0


def command_gate(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.jobs import gate

    result = gate(config, arguments.version, arguments.env)
    champion = f"version {result.champion.version}" if result.champion else "none yet"
    print(f"Candidate version {arguments.version}; current champion in {arguments.env}: {champion}")
    _print_decision(result.decision)
    if not result.integrity.intact:
        print("error: the evidence bundle does not match its manifest", file=sys.stderr)
        return EXIT_ERROR
    return 0 if result.decision.allow else EXIT_DENY


def command_verify(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.governance import evidence
    from {{ cookiecutter.package_name }}.jobs import bundle_path

    directory = bundle_path(config, arguments.version)
    integrity = evidence.verify_bundle(directory)
    if integrity.intact and not integrity.unexpected:
        count = len(evidence.read_manifest(directory)["files"])
        print(f"{directory}: all {count} files match evidence.json")
        return 0
    for problem in integrity.problems():
        print(f"{directory}: {problem}")
    return 0 if integrity.intact else EXIT_ERROR


def command_run(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.delivery import registry
    from {{ cookiecutter.package_name }}.jobs import check_governance_inputs, gate, report, train

    check_governance_inputs(config)
    result = train(config)
    registered = result.registered
    print(
        f"Trained {config.model.family} on {result.dataset.rows} rows of {result.dataset.name} "
        f"(sha256 {result.dataset.digest[:12]})."
    )
    print(f"Held-out metrics on {len(result.split.test_labels)} rows:")
    _print_metrics(result.metrics, result.baseline)
    reloaded = registry.load_version(config, registered.version)
    sample = result.split.test_features.head(50)
    if (reloaded.predict(sample) != result.model.predict(sample)).any():
        raise ProjectError(f"{registered.model_uri} does not reproduce the trained model's predictions")
    commit = registered.tags["git_sha"][:12]
    print(f"Registered {registered.model_uri} (run {registered.run_id}, commit {commit}).")
    print("Reloaded it from the registry and checked that it reproduces the predictions.")
    bundle = report(config, registered.version)
    print(f"Evidence bundle: {bundle.directory} (model card: {bundle.directory / 'model_card.html'})")
    decision = gate(config, registered.version, config.environments[0])
    _print_decision(decision.decision)
    print(f"MLflow store: {config.tracking_uri}")
    print(f"MLflow artifacts: {config.artifact_location}")
    print(f"Browse them with: mlflow ui --backend-store-uri {config.tracking_uri}")
    if not decision.integrity.intact:
        return EXIT_ERROR
    return 0 if decision.decision.allow else EXIT_DENY


COMMANDS: dict[str, tuple[str, Callable[[ProjectConfig, argparse.Namespace], int]]] = {
    "train": ("train, evaluate and register a new model version; prints the version", command_train),
    "report": (
        "build the evidence bundle (SHAP, fairness, model card, decision) of a version",
        command_report,
    ),
    "gate": (
        "decide whether a version may be promoted to an environment: exit 0 allow, 1 deny, 2 error",
        command_gate,
    ),
    "verify": ("check a version's evidence bundle against its manifest", command_verify),
    "run": (
        "run the whole local loop in one process: train, report, gate for the first environment",
        command_run,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="{{ cookiecutter.package_name }}", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config",
        type=Path,
        default=Path(DEFAULT_CONFIG_FILE),
        help="project config file (default: %(default)s)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, _) in COMMANDS.items():
        command = commands.add_parser(name, help=help_text, description=help_text)
        if name in {"report", "gate", "verify"}:
            command.add_argument("--version", type=int, required=True, help="registered model version")
        if name == "gate":
            command.add_argument("--env", required=True, help="target environment, e.g. staging")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        config = load_config(arguments.config)
        return COMMANDS[arguments.command][1](config, arguments)
    except ProjectError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
