"""`experiment report`: compare the variants of an environment's A/B experiment on the labels that came back.

The feedback store joins each label to the request it is for (which variant and version served it,
under which experiment id); the prediction log adds what the variant predicted for that row, so the
accuracy can be compared beside the positive-label rate. The statistics are in serving/experiment.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import make_url

from {{ cookiecutter.package_name }}.config import ProjectConfig
from {{ cookiecutter.package_name }}.errors import ProjectError
from {{ cookiecutter.package_name }}.io.feedback import FEEDBACK, SERVED_REQUESTS, FeedbackStore, resolve_database_url
from {{ cookiecutter.package_name }}.io.prediction_log import read_prediction_log
from {{ cookiecutter.package_name }}.serving.experiment import ExperimentReport, LabelledRow, compare_variants


class ExperimentError(ProjectError):
    """There is no experiment to report on, or nothing to compare yet."""


def parse_moment(text: str | None, option: str) -> datetime | None:
    """An ISO 8601 date or time as an aware UTC datetime (a time without offset is UTC)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ExperimentError(
            f"{option} {text!r}: expected an ISO 8601 date or time, e.g. 2026-01-31T12:00"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _open_store(config: ProjectConfig, url: str) -> FeedbackStore:
    resolved = resolve_database_url(url, config.root)
    parsed = make_url(resolved)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        from pathlib import Path

        if not Path(parsed.database).is_file():
            raise ExperimentError(
                f"no feedback store at {parsed.database} (serving.feedback_database_url): the service has "
                "not answered a request yet"
            )
    return FeedbackStore(resolved)


def _served_under_experiments(store: FeedbackStore, environment: str) -> list[dict[str, Any]]:
    query = select(
        SERVED_REQUESTS.c.request_id,
        SERVED_REQUESTS.c.served_at,
        SERVED_REQUESTS.c.variant,
        SERVED_REQUESTS.c.model_version,
        SERVED_REQUESTS.c.experiment_id,
    ).where(SERVED_REQUESTS.c.environment == environment, SERVED_REQUESTS.c.experiment_id.is_not(None))
    with store.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def _labels(store: FeedbackStore, request_ids: set[str]) -> dict[tuple[str, int], Any]:
    """The latest label of each (request id, row): a later label corrects an earlier one."""
    query = select(FEEDBACK.c.id, FEEDBACK.c.request_id, FEEDBACK.c.row, FEEDBACK.c.label).order_by(
        FEEDBACK.c.id
    )
    labels: dict[tuple[str, int], Any] = {}
    with store.engine.connect() as connection:
        for row in connection.execute(query):
            if row.request_id in request_ids:
                labels[(row.request_id, row.row)] = row.label
    return labels


def _predictions(config: ProjectConfig, directory, request_ids: set[str]) -> dict[tuple[str, int], Any]:
    """What the answering variant predicted per (request id, row), from the prediction log."""
    path = directory if directory.is_absolute() else config.root / directory
    if not path.is_dir():
        return {}
    return {
        (record["request_id"], record["row"]): record.get("label")
        for record in read_prediction_log(path)
        if not record.get("shadow")
        and (record.get("status") or 200) < 500  # a failed request answered nothing
        and record.get("request_id") in request_ids
    }


def experiment_report(
    config: ProjectConfig,
    environment: str,
    since: datetime | None = None,
    until: datetime | None = None,
    experiment_id: str | None = None,
) -> ExperimentReport:
    """Compare the variants of `environment`'s experiment (default: the latest one served) on the
    feedback for the requests served between `since` and `until`."""
    settings = config.environment_settings(environment)
    if settings.rollout.strategy != "ab" and experiment_id is None:
        raise ExperimentError(
            f"environments/{environment}.yaml: rollout.strategy is {settings.rollout.strategy!r}, not 'ab': "
            "there is no experiment to report (name a past one with --experiment)"
        )
    store = _open_store(config, settings.serving.feedback_database_url)
    try:
        served = [
            item
            for item in _served_under_experiments(store, environment)
            if (since is None or _aware(item["served_at"]) >= since)
            and (until is None or _aware(item["served_at"]) < until)
        ]
        if experiment_id is None and served:
            experiment_id = max(served, key=lambda item: _aware(item["served_at"]))["experiment_id"]
        served = [item for item in served if item["experiment_id"] == experiment_id]
        if not served:
            which = f"experiment {experiment_id!r}" if experiment_id else "an A/B experiment"
            raise ExperimentError(f"{environment}: no request served under {which} in the window")
        by_id = {item["request_id"]: item for item in served}
        labels = _labels(store, set(by_id))
    finally:
        store.close()
    if not labels:
        raise ExperimentError(
            f"{environment}: no feedback yet for experiment {experiment_id!r} ({len(served)} requests "
            "served): send labels to POST /feedback"
        )
    predicted = _predictions(config, settings.serving.prediction_log.directory, set(by_id))
    rows = [
        LabelledRow(
            by_id[request_id]["variant"],
            by_id[request_id]["model_version"],
            label,
            predicted.get((request_id, row)),
        )
        for (request_id, row), label in labels.items()
    ]
    window = {
        "since": None if since is None else since.isoformat(),
        "until": None if until is None else until.isoformat(),
    }
    return compare_variants(experiment_id, environment, rows, config.data.positive_label, len(served), window)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _with_interval(proportion) -> str:
    interval = proportion.interval()
    if interval is None:
        return "-"
    return f"{_percent(proportion.rate)} [{_percent(interval[0])}, {_percent(interval[1])}]"


def render_report(report: ExperimentReport) -> str:
    """The report as a terminal table."""
    window = report.window
    span = ""
    if window.get("since") or window.get("until"):
        span = f", served from {window.get('since') or 'the start'} until {window.get('until') or 'now'}"
    positive = f"positive ({report.positive_label})"
    lines = [
        f"Experiment {report.experiment_id} in {report.environment}: "
        f"{report.served_requests} requests served{span}",
        f"{'variant':<12}{'versions':<10}{'labelled':>9}  {positive:<28}{'accuracy':<28}",
    ]
    for outcome in report.variants.values():
        lines.append(
            f"{outcome.variant:<12}{','.join(map(str, outcome.versions)):<10}{outcome.positive.trials:>9}  "
            f"{_with_interval(outcome.positive):<28}{_with_interval(outcome.correct):<28}"
        )
    for name, test in (
        ("positive-label rate", report.positive_rate_test),
        ("accuracy", report.accuracy_test),
    ):
        if test is None:
            lines.append(f"challenger - champion, {name}: not testable (both variants need labelled rows)")
        else:
            lines.append(
                f"challenger - champion, {name}: {test.difference * 100:+.1f} points "
                f"(z = {test.z:.2f}, p = {test.p_value:.3g})"
            )
    lines.append("95% Wilson score intervals; two-sided pooled two-proportion z-test.")
    return "\n".join(lines)
