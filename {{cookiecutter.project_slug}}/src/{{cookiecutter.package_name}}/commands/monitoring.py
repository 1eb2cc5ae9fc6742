"""Monitor: one window of an environment's prediction log and feedback, judged by the monitoring policy.

The log is the directory the service writes (`serving.prediction_log.directory` of the environment);
on a deployment the workflow first brings the window's log files there (see the README's
"Monitoring" section). Everything is checked before anything is written: the times, the
environment, the policy, the log and the champion's reference profile. The drift is measured
against the profile in the evidence bundle of the version that answered as champion in the window.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from {{ cookiecutter.package_name }}.config import ProjectConfig
from {{ cookiecutter.package_name }}.contracts.release import Release
from {{ cookiecutter.package_name }}.errors import ProjectError
from {{ cookiecutter.package_name }}.governance import evidence
from {{ cookiecutter.package_name }}.governance.profile import PROFILE_FILE
from {{ cookiecutter.package_name }}.monitoring import report as rendering
from {{ cookiecutter.package_name }}.monitoring.policy import MonitoringDecision, decide, load_monitoring_policy
from {{ cookiecutter.package_name }}.monitoring.window import WindowStatistics, log_files, parse_time, read_window

DEFAULT_WINDOW = timedelta(days=1)
REPORT_FILES = ("report.json", "report.html", "summary.md", "metrics.prom")
CHAMPION_SCAN_BYTES = 256 * 1024


class MonitoringError(ProjectError):
    """The window, the environment, the log or the reference profile cannot be monitored."""


@dataclass(frozen=True)
class MonitorResult:
    directory: Path
    document: dict
    decision: MonitoringDecision


def parse_window(
    since: str | None, until: str | None, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """[since, until) from ISO 8601 times; by default the day before `until` (itself now by default)."""
    now = now or datetime.now(UTC)
    end = _parse_option("--until", until) if until else now
    start = _parse_option("--since", since) if since else end - DEFAULT_WINDOW
    if start >= end:
        raise MonitoringError(f"--since {start.isoformat()} is not before --until {end.isoformat()}")
    return start, end


def _parse_option(option: str, text: str) -> datetime:
    moment = parse_time(text)
    if moment is None:
        raise MonitoringError(
            f"{option} {text!r} is not an ISO 8601 time (e.g. 2026-01-31T12:00:00Z or 2026-01-31)"
        )
    return moment


def _answered_by_champion(record: dict, environment: str) -> bool:
    return (
        record.get("environment") == environment
        and record.get("variant") == "champion"
        and not record.get("shadow")
        and isinstance(record.get("model_version"), int)
    )


def champion_version_in_log(directory: Path, start: datetime, end: datetime, environment: str) -> int | None:
    """The version that answered as champion last in the window.

    The tails of the newest files are read first (the usual window ends now); when they hold no
    record of the window, the first champion record of the window is taken.
    """
    import orjson

    for path in reversed(log_files(directory, start)):
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - CHAMPION_SCAN_BYTES))
            lines = handle.read().splitlines()
        for line in reversed(lines):
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # the first line of the tail may be cut
            moment = parse_time(record.get("time"))
            if _answered_by_champion(record, environment) and moment is not None and start <= moment < end:
                return record["model_version"]
    for record in read_window(directory, start, end, environment):
        if _answered_by_champion(record, environment):
            return record["model_version"]
    return None


def load_reference_profile(config: ProjectConfig, version: int) -> tuple[dict, str]:
    """The version's reference profile and its sha256, checked against the bundle's manifest."""
    # the bundle's path without importing commands.evidence (and its charting stack)
    directory = evidence.bundle_directory(
        config.resolve(config.governance.reports_dir), config.mlflow.registered_model, version
    )
    if not (directory / evidence.MANIFEST).is_file():
        from {{ cookiecutter.package_name }}.io import registry

        registered = registry.get_version(config, version)
        registry.download_evidence(config, registered.run_id, directory)
    if not (directory / evidence.MANIFEST).is_file():
        raise MonitoringError(
            f"version {version} has no evidence bundle: run `report --version {version}` first"
        )
    manifest = evidence.read_manifest(directory)
    digest = manifest.get("files", {}).get(PROFILE_FILE)
    if digest is None:
        raise MonitoringError(
            f"the evidence bundle of version {version} ({directory}) holds no {PROFILE_FILE} (built before "
            f"reference profiles existed): run `report --version {version}` again"
        )
    content = (directory / PROFILE_FILE).read_bytes() if (directory / PROFILE_FILE).is_file() else b""
    if evidence.sha256_bytes(content) != digest:
        raise MonitoringError(f"{directory / PROFILE_FILE} does not match its sha256 in {evidence.MANIFEST}")
    return json.loads(content), digest


def read_labels(config: ProjectConfig, url: str) -> dict[tuple[str, int], object]:
    """Every label received, by (request_id, row); a SQLite store that does not exist yet holds none
    (it is not created: monitoring writes nothing there)."""
    from sqlalchemy.engine import make_url

    from {{ cookiecutter.package_name }}.io.feedback import FeedbackStore, resolve_database_url

    url = resolve_database_url(url, config.root)
    parsed = make_url(url)
    on_disk = parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")
    if on_disk and not Path(parsed.database).is_file():
        return {}
    store = FeedbackStore(url)
    try:
        return {(str(item["request_id"]), int(item["row"])): item["label"] for item in store.feedback()}
    finally:
        store.close()


def monitor(
    config: ProjectConfig,
    environment: str,
    since: str | None = None,
    until: str | None = None,
    out: Path | None = None,
    now: datetime | None = None,
    release: Release | None = None,
) -> MonitorResult:
    """Measure one window of `environment` and write report.json, report.html, summary.md, metrics.prom.

    The canary is judged at the split `release` (the environment's release.yaml) runs: rollouts move
    it there, not in environments/<env>.yaml. Without a release, the environment file's split is used.
    Its steps and analysis limits always come from the environment file.
    """
    start, end = parse_window(since, until, now)
    settings = config.environment_settings(environment)
    if release is not None and release.environment != environment:
        raise MonitoringError(f"release.yaml is for {release.environment!r}, not {environment!r}")
    rollout = settings.rollout
    strategy, weight = (
        (release.strategy, release.challenger_weight)
        if release is not None
        else (rollout.strategy, rollout.challenger_weight)
    )
    policy = load_monitoring_policy(config.resolve(config.governance.policies_dir), config.policy_pack)
    log_directory = config.resolve(settings.serving.prediction_log.directory)
    if not log_directory.is_dir() or not any(log_directory.glob("predictions-*.jsonl")):
        raise MonitoringError(
            f"no prediction log in {log_directory} (serving.prediction_log.directory of {environment}): "
            "serve the environment first, or bring its log files there"
        )
    version = champion_version_in_log(log_directory, start, end, environment)
    if version is None:
        raise MonitoringError(
            f"no prediction of {environment} answered by its champion in {log_directory} between "
            f"{start.isoformat()} and {end.isoformat()}"
        )
    profile, digest = load_reference_profile(config, version)
    sensitive = [name for name in config.data.sensitive_features if name in profile["features"]]
    statistics = WindowStatistics(
        profile,
        read_labels(config, settings.serving.feedback_database_url),
        sensitive,
        unmeasured=frozenset(config.data.personal_columns),
        pair_shadow=strategy == "shadow",
    )
    for record in read_window(log_directory, start, end, environment):
        statistics.add(record)
    statistics.flush()
    if statistics.records == 0:
        raise MonitoringError(
            f"no prediction of {environment} in {log_directory} between {start.isoformat()} and "
            f"{end.isoformat()}"
        )
    champion_versions = (
        Counter(statistics.traffic["champion"].versions) if "champion" in statistics.traffic else Counter()
    )
    document = rendering.build_report(
        statistics,
        environment,
        window={"since": start.isoformat(), "until": end.isoformat()},
        champion={
            "version": version,
            "profile_sha256": digest,
            "versions_in_window": {str(key): value for key, value in champion_versions.items()},
        },
        rollout={
            "strategy": strategy,
            "challenger_weight": weight,
            "source": f"env/{environment}:release.yaml"
            if release is not None
            else f"environments/{environment}.yaml",
            "steps": list(rollout.steps),
            "analysis": rollout.analysis.model_dump(),
        },
        positive_label=config.data.positive_label,
        min_group_size=config.governance.min_group_size,
    )
    decision = decide(policy, rendering.policy_input(document))
    rendering.attach_decision(document, decision)
    directory = (
        out if out is not None else config.resolve(config.governance.reports_dir) / "monitoring" / environment
    )
    write_report(directory, document)
    return MonitorResult(directory=directory, document=document, decision=decision)


def write_report(directory: Path, document: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    (directory / "report.html").write_text(rendering.render_html(document), encoding="utf-8")
    (directory / "summary.md").write_text(rendering.render_markdown(document), encoding="utf-8")
    rendering.write_metrics(document, directory / "metrics.prom")
