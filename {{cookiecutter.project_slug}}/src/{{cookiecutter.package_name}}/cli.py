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
    from {{ cookiecutter.package_name }}.governance.summary import render_metrics_text

    print(render_metrics_text(metrics, baseline), end="")


def command_train(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.commands.training import train

    result = train(config, force=arguments.force)
    _print_inferred_schema(result.dataset, sys.stderr)
    if result.reused:
        print(_reuse_message(result), file=sys.stderr)
    print(result.registered.version)
    return 0


def _print_inferred_schema(dataset, stream) -> None:
    from {{ cookiecutter.package_name }}.pipeline.data import inferred_schema_lines

    for line in inferred_schema_lines(dataset):
        print(line, file=stream)


def _reuse_message(result) -> str:
    commit = result.registered.tags.get("git_sha", "unknown")[:12]
    return (
        f"Reused version {result.registered.version}: it was trained from commit {commit} with the same "
        "data and configuration (pass --force to train a new version anyway)."
    )


def _print_decision(decision) -> None:
    """The decision, its champion comparison, reasons, notes and warnings (governance/templates)."""
    from {{ cookiecutter.package_name }}.governance.summary import render_decision_text

    print(render_decision_text(decision), end="")


def command_report(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.commands.evidence import report

    result = report(config, arguments.version)
    print(
        f"Evidence bundle: {result.directory} ({len(result.manifest['files'])} files, manifest evidence.json)"
    )
    _print_decision(result.decision)
    return 0


def command_gate(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.commands.evidence import gate

    result = gate(config, arguments.version, arguments.env)
    print(f"Candidate version {arguments.version}")
    _print_decision(result.decision)
    if not result.integrity.intact:
        print("error: the evidence bundle does not match its manifest", file=sys.stderr)
        return EXIT_ERROR
    return 0 if result.decision.allow else EXIT_DENY


def command_verify(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.commands.evidence import bundle_path
    from {{ cookiecutter.package_name }}.governance import evidence

    directory = bundle_path(config, arguments.version)
    integrity = evidence.verify_bundle(directory)
    if integrity.intact and not integrity.unexpected:
        count = len(evidence.read_manifest(directory)["files"])
        print(f"{directory}: all {count} files match evidence.json")
        return 0
    for problem in integrity.problems():
        print(f"{directory}: {problem}")
    return EXIT_ERROR


def command_run(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.commands.evidence import bundle_path, check_governance_inputs, gate, report
    from {{ cookiecutter.package_name }}.commands.training import train
    from {{ cookiecutter.package_name }}.governance import evidence
    from {{ cookiecutter.package_name }}.io import registry

    check_governance_inputs(config)
    result = train(config, force=arguments.force)
    registered = result.registered
    _print_inferred_schema(result.dataset, sys.stdout)
    if result.reused:
        print(_reuse_message(result))
    else:
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
    directory = bundle_path(config, registered.version)
    if result.reused and evidence.verify_bundle(directory).intact:
        print(f"Evidence bundle: {directory} (unchanged; model card: {directory / 'model_card.html'})")
    else:
        bundle = report(config, registered.version)
        print(f"Evidence bundle: {bundle.directory} (model card: {bundle.directory / 'model_card.html'})")
    decision = gate(config, registered.version, config.environments[0])
    _print_decision(decision.decision)
    status = EXIT_ERROR if not decision.integrity.intact else (0 if decision.decision.allow else EXIT_DENY)
    if status == 0 and _deliver_locally(config, registered.version):
        _serve_locally(config, arguments.config, config.environments[0], result.split.test_features)
    print(f"MLflow store: {config.tracking_uri}")
    print(f"MLflow artifacts: {config.artifact_location}")
    print(f"Browse them with: mlflow ui --backend-store-uri {config.tracking_uri}")
    return status


def _serve_locally(config: ProjectConfig, config_file: Path, environment: str, frame) -> None:
    """Start the environment's service on 127.0.0.1, check its answers on held-out rows, stop it."""
    from {{ cookiecutter.package_name }}.commands.local_service import curl_example, serve_and_check

    checked = serve_and_check(config, config_file, environment, frame.head(200))
    versions = ", ".join(f"version {version}: {rows} rows" for version, rows in checked.versions.items())
    print(
        f"Served {environment} at {checked.url}: {checked.rows} held-out rows answered over HTTP "
        f"({versions}), each answer equal to the registry model's prediction."
    )
    print(f"Keep it running with `make serve ENV={environment}` (port 8080) and call it with:")
    print(f"  {curl_example('http://127.0.0.1:8080', checked.example)}")


def _deliver_locally(config: ProjectConfig, version: int) -> bool:
    """Promote through every environment in order, merging each PR locally, and deploy each one."""
    from {{ cookiecutter.package_name }}.commands import delivery
    from {{ cookiecutter.package_name }}.io.git import local_remote

    repository = local_remote(config.root)
    if repository is None:
        print("Not a git repository: skipped promotion (git init, commit, and run again).")
        return False
    print(f"GitOps remote: {repository.remote} -> {repository.git('remote', 'get-url', repository.remote)}")
    for index, environment in enumerate(config.environments):
        result = delivery.promote(
            config, repository, environment, version=version if index == 0 else None, merge=True
        )
        print(
            f"Promoted version {result.version} to {environment}: "
            f"{result.branch} merged into env/{environment}"
        )
        deployed = delivery.deploy(config, repository, environment)
        changed = ", ".join(deployed.changed) or "nothing to change"
        print(
            f"Deployed env/{environment}: models:/{config.mlflow.registered_model}@{environment} -> "
            f"version {deployed.champion} ({changed}); smoke test passed"
        )
    return True


def _github(arguments: argparse.Namespace):
    from {{ cookiecutter.package_name }}.io.github import GitHubClient

    return None if getattr(arguments, "no_pr", False) else GitHubClient.from_environment()


def _repository(config: ProjectConfig):
    from {{ cookiecutter.package_name }}.io.git import Repository

    return Repository(config.root)


def command_promote(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.commands import delivery

    environment = arguments.to
    if arguments.after:
        environment = delivery.neighbour(config, arguments.after, +1)
        if environment is None:
            print(f"{arguments.after} is the last environment: nothing to promote")
            return 0
    result = delivery.promote(
        config,
        _repository(config),
        environment,
        arguments.version,
        arguments.commit,
        _github(arguments),
        merge=arguments.merge,
        image=arguments.image,
    )
    print(
        f"Version {result.version} for {result.environment}: branch {result.branch} "
        f"({'new commit pushed' if result.changed else 'already up to date'})"
    )
    if result.pull_request is not None:
        action = "Opened" if result.created else "Updated"
        print(
            f"{action} pull request #{result.pull_request['number']}: "
            f"{result.pull_request.get('html_url', '')}"
        )
    return 0


def command_rollout(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.commands import delivery

    report = None
    if arguments.report is not None:  # read before anything is pushed
        if not arguments.report.is_file():
            raise ProjectError(f"--report {arguments.report}: file not found")
        report = arguments.report.read_text(encoding="utf-8")
    result = delivery.rollout(
        config,
        _repository(config),
        arguments.env,
        weight=arguments.weight,
        promote_challenger=arguments.promote_challenger,
        abort=arguments.abort,
        github=_github(arguments),
        merge=arguments.merge,
        report=report,
    )
    before, after = result.before, result.after

    def split(release) -> str:
        challenger = "no challenger"
        if release.challenger is not None:
            challenger = f"challenger v{release.challenger} at {release.challenger_weight}%"
        return f"champion v{release.version}, {challenger} ({release.strategy})"

    print(f"{arguments.env}: {split(before)} -> {split(after)}")
    print(f"Branch {result.branch} ({'new commit pushed' if result.changed else 'already up to date'})")
    if result.pull_request is not None:
        action = "Opened" if result.created else "Updated"
        number, url = result.pull_request["number"], result.pull_request.get("html_url", "")
        print(f"{action} pull request #{number}: {url}")
    return 0


def command_deploy(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.commands import delivery

    result = delivery.deploy(config, _repository(config), arguments.env, arguments.release)
    changed = ", ".join(result.changed) if result.changed else "nothing to change (already reconciled)"
    print(
        f"{arguments.env}: champion version {result.champion}, challenger {result.challenger}; "
        f"moved: {changed}"
    )
    return 0


def command_rollback(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.commands import delivery

    previous, result = delivery.rollback(
        config, _repository(config), arguments.env, _github(arguments), merge=arguments.merge
    )
    print(f"Rollback of {arguments.env} to version {previous.version} on branch {result.branch}")
    if result.pull_request is not None:
        print(f"Pull request #{result.pull_request['number']}: {result.pull_request.get('html_url', '')}")
    return 0


def command_release(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.commands import delivery

    environment = arguments.env or config.environments[-1]
    document = delivery.release(config, _repository(config), environment, _github(arguments))
    print(f"Tagged {document['tag']} (version {document['version']} of {environment})")
    return 0


def command_summary(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.commands import delivery

    print(delivery.pull_request_summary(config, arguments.version, arguments.env), end="")
    return 0


def command_comment(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.commands import delivery
    from {{ cookiecutter.package_name }}.io.github import GitHubClient

    if not arguments.body_file.is_file():
        raise ProjectError(f"--body-file {arguments.body_file}: file not found")
    body = arguments.body_file.read_text(encoding="utf-8")
    comment = GitHubClient.from_environment().upsert_comment(arguments.pr, delivery.COMMENT_MARKER, body)
    print(f"Comment {comment['id']} on pull request #{arguments.pr} is up to date")
    return 0


def command_environments(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    names = config.environments
    if arguments.check is not None:
        if arguments.check not in names:
            from {{ cookiecutter.package_name }}.config.environment import environment_name_problem

            problem = environment_name_problem(arguments.check)
            raise ProjectError(
                (problem + "; " if problem else "")
                + f"{arguments.check!r} is not an environment of this project (environments: "
                + ", ".join(names)
                + ")"
            )
        print(arguments.check)
        return 0
    if arguments.first:
        names = names[:1]
    elif arguments.last:
        names = names[-1:]
    print("\n".join(names))
    return 0


def command_schemas(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.config.schemas import stale_schemas, write_schemas

    if arguments.write:
        for path in write_schemas(config.root):
            print(f"wrote {path.relative_to(config.root)}")
        return 0
    stale = stale_schemas(config.root)
    if stale:
        raise ProjectError(
            f"schemas/ is out of date with the settings models ({', '.join(stale)}): run "
            "`mlops schemas --write` and commit the result"
        )
    print("schemas/ matches the settings models")
    return 0


def command_flags(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.serving.flags import check_flag_files

    environments = [arguments.env] if arguments.env else list(config.environments)
    named = {name: config.environment_settings(name).flags for name in environments}
    files, problems = check_flag_files(config.root, named, every_file=arguments.env is None)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return EXIT_ERROR
    shown = ", ".join(str(path.relative_to(config.root)) for path in files) or "none"
    print(f"flag files valid: {shown}")
    return 0


def environment_release(
    config: ProjectConfig, environment: str, path: Path | None, missing: str, required: bool = True
):
    """The release an environment runs: `path` when given, otherwise release.yaml of env/<name> on the
    hosted remote (or, when there is none, on the local loop's remote). Without `required`, None when
    the branch holds none."""
    from {{ cookiecutter.package_name }}.contracts.release import RELEASE_FILE, ReleaseError, parse_release

    if path is not None:
        if not path.is_file():
            raise ReleaseError(f"--release {path}: no release file")
        release = parse_release(path.read_text(encoding="utf-8"), str(path))
    else:
        from {{ cookiecutter.package_name }}.io.git import LOCAL_REMOTE_NAME, Repository

        repository = Repository(config.root)
        remotes = repository.git("remote").split()
        if repository.remote not in remotes and LOCAL_REMOTE_NAME in remotes:
            # No hosted remote, but the local loop (`run`) has one: what it promoted.
            repository = Repository(config.root, remote=LOCAL_REMOTE_NAME)
        repository.fetch()
        text = repository.read_file(f"env/{environment}", RELEASE_FILE)
        if text is None and not required:
            return None
        if text is None:
            raise ReleaseError(f"env/{environment} holds no {RELEASE_FILE}: {missing}")
        release = parse_release(text, f"env/{environment}:{RELEASE_FILE}")
    if release.environment != environment:
        raise ReleaseError(f"release.yaml is for {release.environment!r}, not {environment!r}")
    return release


def command_serve(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    import os

    # HistGradientBoosting scores with OpenMP: one thread per scoring call, set before sklearn loads.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from {{ cookiecutter.package_name }}.io.registry import session
    from {{ cookiecutter.package_name }}.serving import server
    from {{ cookiecutter.package_name }}.serving.app import PredictionService
    from {{ cookiecutter.package_name }}.serving.loading import load_release

    settings = config.environment_settings(arguments.env)
    release = environment_release(config, arguments.env, arguments.release, "nothing to serve")
    import dataclasses

    from {{ cookiecutter.package_name }}.serving.flags import read_flag_file

    flag_file = arguments.flags or (config.resolve(settings.flags) if settings.flags else None)
    if flag_file is not None and (arguments.flags is not None or flag_file.exists()):
        flags_text = read_flag_file(flag_file)  # a broken flag file stops here, before any model loads
        _warn_if_flags_differ(flags_text, flag_file, release)
    challenger = f", challenger v{release.challenger}" if release.challenger else ""
    print(
        f"Serving {arguments.env} ({release.strategy}: champion v{release.version}{challenger}) on "
        f"http://{arguments.host}:{arguments.port}",
        flush=True,
    )
    if settings.serving.workers > 1:
        # Each worker process loads the models itself; their metrics add up in /metrics.
        failure = server.run_workers(
            arguments.config, release, flag_file, settings.serving.workers, arguments.host, arguments.port
        )
        if failure is not None:
            raise ProjectError(failure)
        return 0
    registry = session(config)
    options = dataclasses.replace(server.service_options(config, settings, release), flag_file=flag_file)
    service = PredictionService(options, lambda: load_release(registry, release))
    server.run(service, arguments.host, arguments.port)
    if service.failure is not None:
        raise ProjectError(service.failure)
    return 0


def _warn_if_flags_differ(text: str, path: Path, release) -> None:
    """Flags edited on main reach an environment by promotion; say so when the two differ."""
    import hashlib

    if release.flags is None:
        return
    digest = "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    if digest != release.flags.digest:
        print(
            f"warning: {path} is not the flag file env/{release.environment} records "
            f"({release.flags.digest[:19]}...); serving this one: promote to record it",
            file=sys.stderr,
        )


def command_records(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    if arguments.action in ("ship", "fetch"):
        return _ship_or_fetch(config, arguments)
    from {{ cookiecutter.package_name }}.commands.records import purge

    result = purge(config, arguments.env)
    print(
        f"{arguments.env}: deleted {len(result.chunks)} prediction log chunk(s), "
        f"{result.database['served_requests']} served request(s) and {result.database['feedback']} "
        f"feedback label(s) older than {result.before:%Y-%m-%d %H:%M} UTC (recorded in deletions.jsonl)"
    )
    return 0


def _ship_or_fetch(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    import signal
    import threading
    import time

    from {{ cookiecutter.package_name }}.io import log_shipping

    directory = config.resolve(config.environment_settings(arguments.env).serving.prediction_log.directory)
    if arguments.action == "fetch":
        written = log_shipping.fetch(config, arguments.env, arguments.into or directory)
        print(f"{arguments.env}: fetched {len(written)} log chunk(s) into {arguments.into or directory}")
        return 0
    if arguments.every is not None and arguments.every <= 0:
        raise ProjectError(f"--every {arguments.every}: expected a positive number of seconds")

    def ship_once() -> None:
        shipped = log_shipping.ship(config, arguments.env, directory)
        print(
            f"{arguments.env}: shipped {len(shipped.chunks)} chunk(s) of {shipped.replica} "
            f"({shipped.unchanged} unchanged) to run {shipped.run_id}",
            flush=True,
        )

    ship_once()
    if arguments.every is None:
        return 0
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    while not stopping.wait(arguments.every):
        ship_once()
    # The pod is stopping: the service writes out what it answered, then the last ship takes it.
    time.sleep(log_shipping.FINAL_SHIP_DELAY_SECONDS)
    ship_once()
    return 0


def command_erase(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.commands.records import erase

    result = erase(config, arguments.env, arguments.subject)
    print(
        f"{arguments.env}: erased {result.rows} logged row(s) from {result.chunks} chunk(s), "
        f"{result.database['served_requests']} served request(s) and {result.database['feedback']} "
        "feedback label(s) of the subject (recorded in deletions.jsonl, without the key)"
    )
    return 0


def command_feedback(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.commands import feedback

    if arguments.action == "export":
        result = feedback.export_uncertain(
            config, arguments.env, arguments.strategy, arguments.n, arguments.format
        )
        if arguments.out is None:
            sys.stdout.write(result.text)
        else:
            arguments.out.parent.mkdir(parents=True, exist_ok=True)
            arguments.out.write_text(result.text, encoding="utf-8")
            print(
                f"wrote {result.rows} of {result.candidates} unlabelled rows to {arguments.out}",
                file=sys.stderr,
            )
        if arguments.format == "label-studio":
            print(
                f"Label Studio labelling interface for these tasks:\n{result.label_config}", file=sys.stderr
            )
        return 0
    if arguments.action == "collect":
        collected = feedback.collect_labels(config, arguments.env)
        if collected is None:
            print(f"{arguments.env}: the feedback store holds no label that is not in a feedback file yet")
        else:
            print(
                f"Collected {collected.rows} labels from the feedback store of {arguments.env} into "
                f"{collected.directory.name}/{collected.file}"
            )
        return 0
    if arguments.action == "propose":
        proposal = feedback.propose_retraining(
            config, _repository(config), _github(arguments), arguments.branch, arguments.base
        )
        if not proposal.files:
            print("The feedback directory holds nothing that the checked-out commit does not: no proposal")
            return 0
        state = "new commit pushed" if proposal.changed else "already up to date"
        print(f"Branch {proposal.branch}: {len(proposal.files)} feedback file(s) ({state})")
        if proposal.pull_request is not None:
            action = "Opened" if proposal.created else "Updated"
            number, url = proposal.pull_request["number"], proposal.pull_request.get("html_url", "")
            print(f"{action} pull request #{number}: {url}")
        return 0
    result = feedback.import_labels(config, arguments.file, arguments.env)
    skipped = f"; {result.unlabelled} entries without a label skipped" if result.unlabelled else ""
    print(
        f"Imported {result.rows} labelled rows into {result.directory.name}/{result.file} (sha256 "
        f"{result.manifest_entry['sha256'][:12]}) and the feedback store{skipped}"
    )
    if config.data.feedback_path is None:
        print(
            f"note: data.feedback_path is not set in project.yaml: training does not read "
            f"{result.directory.name}/ until it is"
        )
    return 0


def command_monitor(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    from {{ cookiecutter.package_name }}.commands.monitoring import monitor, parse_window

    # A bad window or environment is named before anything else is read.
    parse_window(arguments.since, arguments.until)
    config.environment_settings(arguments.env)
    from {{ cookiecutter.package_name }}.io.git import GitError

    # Measuring needs no release; judging a canary needs its split. Without one to read (no
    # repository, no remote, nothing promoted), the environment file's split is used: the split the
    # canary was promoted with, not where rollouts have moved it since. A release that is there but
    # broken is an error.
    unavailable = None
    try:
        release = environment_release(config, arguments.env, arguments.release, "", required=False)
    except GitError as error:
        release, unavailable = None, str(error)
    if release is None:
        print(
            f"note: no release of {arguments.env} to read the running split from "
            f"({unavailable or f'env/{arguments.env} holds none'}); the split of "
            f"environments/{arguments.env}.yaml is used (give --release to name one)",
            file=sys.stderr,
        )
    result = monitor(config, arguments.env, arguments.since, arguments.until, arguments.out, release=release)
    decision = result.decision
    weight = f" (next weight {decision.next_weight}%)" if decision.action == "advance" else ""
    print(f"{arguments.env}: {decision.action}{weight}; report in {result.directory}")
    for reason in decision.reasons:
        print(f"  - {reason}")
    return 0


def command_experiment(config: ProjectConfig, arguments: argparse.Namespace) -> int:
    import json

    from {{ cookiecutter.package_name }}.commands.experiment import experiment_report, parse_moment, render_report

    report = experiment_report(
        config,
        arguments.env,
        parse_moment(arguments.since, "--since"),
        parse_moment(arguments.until, "--until"),
        arguments.experiment,
    )
    print(json.dumps(report.to_dict(), indent=2) if arguments.json else render_report(report))
    return 0


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
    "promote": (
        "gate, render and push an environment's desired state; open or update its pull request",
        command_promote,
    ),
    "rollout": (
        "open the pull request changing an environment's split: --weight W, --promote-challenger, --abort",
        command_rollout,
    ),
    "deploy": ("verify an environment's release and reconcile its MLflow aliases to it", command_deploy),
    "rollback": ("open the pull request restoring an environment's previous release", command_rollback),
    "release": (
        "tag what an environment runs and publish a GitHub release with its model card",
        command_release,
    ),
    "summary": ("print the Markdown model report of a version for an environment", command_summary),
    "comment": ("create or update the one model-report comment of a pull request", command_comment),
    "environments": ("print the environments in promotion order", command_environments),
    "schemas": ("check (or --write) the JSON Schemas of the settings files in schemas/", command_schemas),
    "flags": (
        "validate the OpenFeature flag files (--check): exit 0 if valid, 2 naming each problem",
        command_flags,
    ),
    "serve": ("serve an environment's release over HTTP: champion, challenger, metrics", command_serve),
    "experiment": (
        "report an A/B experiment: each variant's rates with 95% intervals and a two-proportion z-test",
        command_experiment,
    ),
    "feedback": (
        "export uncertain predictions to label; import, collect the labels; propose the retraining PR",
        command_feedback,
    ),
    "records": (
        "purge: delete prediction log chunks and feedback older than the environment's retention",
        command_records,
    ),
    "erase": ("remove every logged row and feedback label of one subject (by routing key)", command_erase),
    "monitor": (
        "measure a window of an environment's log (drift, live performance and fairness, canary): "
        "report.json, report.html, summary.md, metrics.prom and the policy's action",
        command_monitor,
    ),
    "run": (
        "the whole local loop: train, report, gate, then promote and deploy through every environment",
        command_run,
    ),
}


def _positive_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of rows, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of rows, got {value}")
    return value


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
        # argparse formats `help` with %-style placeholders (a literal % is %%); a description is not.
        command = commands.add_parser(name, help=help_text.replace("%", "%%"), description=help_text)
        if name in {"report", "gate", "verify", "summary"}:
            command.add_argument("--version", type=int, required=True, help="registered model version")
        if name in {"gate", "summary", "deploy", "rollback", "rollout"}:
            command.add_argument("--env", required=True, help="target environment, e.g. staging")
        if name in {"promote", "rollback", "release", "rollout"}:
            command.add_argument(
                "--no-pr", action="store_true", help="push the branch but call no GitHub API"
            )
        if name in {"promote", "rollback", "rollout"}:
            command.add_argument(
                "--merge", action="store_true", help="merge into env/<name> at once (local loop)"
            )
        if name == "promote":
            target = command.add_mutually_exclusive_group()
            target.add_argument("--to", help="environment (default: the first)")
            target.add_argument("--after", help="promote to the environment after this one")
            command.add_argument("--version", type=int, help="version (default: what the previous env runs)")
            command.add_argument("--commit", help="promote the version trained from this commit")
            command.add_argument(
                "--image",
                help="serving image to record, REPOSITORY@sha256:DIGEST (default: the previous env's)",
            )
        if name == "rollout":
            change = command.add_mutually_exclusive_group(required=True)
            change.add_argument("--weight", type=int, help="the challenger's new share of traffic, 0-100")
            change.add_argument(
                "--promote-challenger", action="store_true", help="make the challenger the champion"
            )
            change.add_argument("--abort", action="store_true", help="remove the challenger")
            command.add_argument(
                "--report", type=Path, help="Markdown for the PR body: the monitoring summary that decided it"
            )
        if name == "deploy":
            command.add_argument("--release", type=Path, help="release.yaml (default: read from env/<name>)")
        if name == "release":
            command.add_argument("--env", help="environment whose release to publish (default: the last)")
        if name == "comment":
            command.add_argument("--pr", type=int, required=True, help="pull request number")
            command.add_argument("--body-file", type=Path, required=True, help="Markdown file to post")
        if name == "environments":
            which = command.add_mutually_exclusive_group()
            which.add_argument("--first", action="store_true")
            which.add_argument("--last", action="store_true")
            which.add_argument(
                "--check", metavar="NAME", help="exit 0 if NAME is an environment of this project, else 2"
            )
        if name == "schemas":
            command.add_argument("--write", action="store_true", help="regenerate schemas/")
        if name == "serve":
            command.add_argument("--env", required=True, help="environment whose release to serve")
            command.add_argument("--release", type=Path, help="release.yaml (default: read from env/<name>)")
            command.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
            command.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")
            command.add_argument(
                "--flags", type=Path, help="flagd file (default: the one environments/<env>.yaml names)"
            )
        if name == "flags":
            command.add_argument(
                "--check", action="store_true", required=True, help="validate; exit 2 if a file is not"
            )
            command.add_argument("--env", help="check only this environment's file (default: every file)")
        if name == "records":
            command.add_argument(
                "action",
                choices=["purge", "ship", "fetch"],
                help="purge: apply serving.retention_days; ship: upload this replica's changed log chunks "
                "to the tracking server; fetch: download every replica's shipped chunks",
            )
            command.add_argument("--env", required=True, help="environment whose records to handle")
            command.add_argument(
                "--every",
                type=float,
                metavar="SECONDS",
                help="ship: repeat until SIGTERM, then ship once more",
            )
            command.add_argument(
                "--into",
                type=Path,
                help="fetch: directory to write (default: the environment's log directory)",
            )
        if name == "erase":
            command.add_argument("--env", required=True, help="environment whose records to erase from")
            command.add_argument("--subject", required=True, help="the subject's routing key (X-Routing-Key)")
        if name == "feedback":
            actions = command.add_subparsers(dest="action", required=True, metavar="ACTION")
            export = actions.add_parser(
                "export", help="the N most uncertain unlabelled champion predictions, as tasks or CSV"
            )
            export.add_argument("--env", required=True, help="environment whose prediction log to read")
            export.add_argument("--strategy", choices=["margin", "entropy"], default="margin")
            export.add_argument("--n", type=_positive_count, required=True, help="rows to export")
            export.add_argument("--format", choices=["label-studio", "csv"], default="label-studio")
            export.add_argument("--out", type=Path, help="file to write (default: standard output)")
            imported = actions.add_parser(
                "import", help="a Label Studio JSON export or a CSV of request_id,label[,row]"
            )
            imported.add_argument("file", type=Path, help="the export (.json) or CSV (.csv) to import")
            imported.add_argument("--env", required=True, help="environment whose prediction log it labels")
            collect = actions.add_parser(
                "collect", help="write the feedback store's new labels (from /feedback) as a feedback file"
            )
            collect.add_argument("--env", required=True, help="environment whose log and store to read")
            propose = actions.add_parser(
                "propose", help="commit the feedback directory on a fixed branch and open its retraining PR"
            )
            propose.add_argument("--branch", default="retrain/feedback", help="default: %(default)s")
            propose.add_argument("--base", default="main", help="branch the PR merges into (%(default)s)")
            propose.add_argument("--no-pr", action="store_true", help="push the branch, call no GitHub API")
        if name == "monitor":
            command.add_argument("--env", required=True, help="environment whose log to measure")
            command.add_argument(
                "--since", help="ISO 8601 start of the window (default: a day before --until)"
            )
            command.add_argument("--until", help="ISO 8601 end of the window (default: now)")
            command.add_argument(
                "--release",
                type=Path,
                help="release.yaml the environment runs, for its split (default: read from env/<name>)",
            )
            command.add_argument(
                "--out", type=Path, help="directory for the report (default: <reports_dir>/monitoring/<env>)"
            )
        if name == "experiment":
            command.add_argument("action", choices=["report"], help="report: compare the variants")
            command.add_argument("--env", required=True, help="environment running the experiment (ab)")
            command.add_argument("--since", help="ISO 8601: only requests served from then on")
            command.add_argument("--until", help="ISO 8601: only requests served before then")
            command.add_argument("--experiment", help="experiment id (default: the latest one served)")
            command.add_argument("--json", action="store_true", help="print the report as JSON")
        if name in {"train", "run"}:
            command.add_argument(
                "--force",
                action="store_true",
                help="train a new version even if this commit, data and configuration already made one",
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        config = load_config(arguments.config)
        return COMMANDS[arguments.command][1](config, arguments)
    except ProjectError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_DENY if type(error).__name__ == "PromotionDenied" else EXIT_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # an unexpected failure is an error (2), never a deny (1)
        print(f"error: unexpected {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        from {{ cookiecutter.package_name }}.io.registry import close_sessions

        close_sessions()


if __name__ == "__main__":
    sys.exit(main())
