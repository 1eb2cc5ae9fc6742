"""What the service recorded, kept no longer than allowed: retention (`records purge`) and erasure (`erase`).

Both act on one environment's prediction log directory and feedback store, as named in
`environments/<env>.yaml`, and append what they deleted (how many, by which rule, never whose) to
the log directory's `deletions.jsonl`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

from {{ cookiecutter.package_name }}.config import ProjectConfig
from {{ cookiecutter.package_name }}.config.environment import EnvironmentSettings, settings_path
from {{ cookiecutter.package_name }}.errors import ProjectError
from {{ cookiecutter.package_name }}.io.feedback import FeedbackStore, store_url
from {{ cookiecutter.package_name }}.io.prediction_log import (
    erase_rows,
    purge_chunks,
    record_deletion,
    record_privacy,
)
from {{ cookiecutter.package_name }}.serving.routing import hash_routing_key


@dataclass(frozen=True)
class Purge:
    """What a retention run deleted: chunks older than `before`, and feedback rows by table."""

    before: datetime
    chunks: list[Path]
    database: dict[str, int]


@dataclass(frozen=True)
class SubjectErasure:
    """What an erasure removed of one subject."""

    rows: int
    chunks: int
    database: dict[str, int]


def record_keeping(config: ProjectConfig) -> dict:
    """What the service records and for how long, per environment: the model card's "records" section.

    An environment without a settings file yet (a fresh checkout of a test fixture) is left out.
    """
    environments = []
    for name in config.environments:
        if not settings_path(config.root, name).is_file():
            continue
        serving = config.environment_settings(name).serving
        environments.append(
            {
                "name": name,
                "personal_data": serving.prediction_log.personal_data,
                "retention_days": serving.retention_days,
                "protect_predictions": serving.auth.protect_predictions,
            }
        )
    return {
        "personal_columns": list(config.data.personal_columns),
        "sensitive_features": list(config.data.sensitive_features),
        "environments": environments,
    }


def log_directory(config: ProjectConfig, settings: EnvironmentSettings) -> Path:
    return config.resolve(settings.serving.prediction_log.directory)


def _open_store(config: ProjectConfig, settings: EnvironmentSettings) -> FeedbackStore | None:
    """The environment's feedback store, or None for a SQLite file never created (nothing to delete)."""
    url = store_url(settings.serving.feedback_database_url, Path(config.root), os.environ)
    parsed = make_url(url)
    is_file = parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")
    if is_file and not Path(parsed.database).is_file():
        return None
    return FeedbackStore(url)


def purge(config: ProjectConfig, environment: str, now: datetime | None = None) -> Purge:
    """Delete the log chunks wholly older than `serving.retention_days`, and older feedback."""
    settings = config.environment_settings(environment)
    days = settings.serving.retention_days
    before = (now or datetime.now(UTC)) - timedelta(days=days)
    directory = log_directory(config, settings)
    chunks = purge_chunks(directory, before) if directory.is_dir() else []
    store = _open_store(config, settings)
    database = {"feedback": 0, "served_requests": 0}
    if store is not None:
        try:
            database = store.purge_before(before)
        finally:
            store.close()
    record_deletion(
        directory,
        "retention",
        f"environments/{environment}.yaml serving.retention_days={days} (older than {before.isoformat()})",
        {"log_chunks": len(chunks), **database},
    )
    return Purge(before, chunks, database)


def erase(
    config: ProjectConfig, environment: str, subject: str, environ: Mapping[str, str] | None = None
) -> SubjectErasure:
    """Remove every logged row, served request and label of the subject whose routing key is `subject`.

    Rows are matched by the routing key's hash, keyed or not (the key is read from the environment,
    as the service reads it); the raw key is neither stored nor recorded.
    """
    if not subject:
        raise ProjectError("--subject is empty: give the routing key of the subject to erase")
    settings = config.environment_settings(environment)
    privacy = record_privacy(
        config.data, settings.serving.prediction_log, os.environ if environ is None else environ
    )
    unkeyed = hash_routing_key(subject)
    hashes = {unkeyed, privacy.routing_key_hash(unkeyed)}
    directory = log_directory(config, settings)
    erased = erase_rows(directory, hashes) if directory.is_dir() else None
    rows = erased.rows if erased else 0
    chunks = erased.chunks if erased else 0
    store = _open_store(config, settings)
    database = {"feedback": 0, "served_requests": 0}
    if store is not None:
        try:
            database = store.erase(set(erased.request_ids) if erased else set(), hashes)
        finally:
            store.close()
    record_deletion(
        directory,
        "erasure",
        "erasure request for one subject (matched by routing key hash)",
        {"log_rows": rows, "log_chunks_rewritten": chunks, **database},
    )
    return SubjectErasure(rows, chunks, database)
