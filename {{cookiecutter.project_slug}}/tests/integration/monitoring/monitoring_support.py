"""Helpers of the monitoring tests: Adult test-split rows, log records written with the real
PredictionLog, labels stored in the real feedback store, and environment files."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from fixtures import FIXTURES

from {{ cookiecutter.package_name }}.config import ProjectConfig
from {{ cookiecutter.package_name }}.io.feedback import FeedbackStore, ServedRequest, resolve_database_url
from {{ cookiecutter.package_name }}.io.prediction_log import PredictionLog

TEST_SAMPLE = FIXTURES / "data" / "adult_test_sample.csv"


@dataclass(frozen=True)
class Workspace:
    """A project with a champion and a challenger, each with its evidence bundle."""

    root: Path
    config: ProjectConfig
    champion: int
    challenger: int
    champion_model: Any = field(repr=False)
    challenger_model: Any = field(repr=False)


def adult_test_rows(config: ProjectConfig) -> tuple[pd.DataFrame, np.ndarray]:
    """The Adult test-split sample as model inputs (schema order) and 0/1 labels."""
    frame = pd.read_csv(TEST_SAMPLE)
    columns = [*config.data.numeric_features, *config.data.categorical_features]
    labels = (frame[config.data.target] == config.data.positive_label).to_numpy(dtype=int)
    return frame[columns].reset_index(drop=True), labels


def write_environment(
    config: ProjectConfig, environment: str, log_directory: str, rollout: dict | None = None
) -> None:
    """environments/<env>.yaml with its own log directory and feedback store."""
    settings = {
        "rollout": rollout or {"strategy": "direct"},
        "serving": {
            "prediction_log": {"directory": log_directory},
            "feedback_database_url": f"sqlite:///{log_directory}/feedback.db",
        },
    }
    path = config.root / "environments" / f"{environment}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")


def log_rows(
    config: ProjectConfig,
    environment: str,
    model: Any,
    version: int,
    features: pd.DataFrame,
    variant: str = "champion",
    prefix: str = "r",
    time: datetime | None = None,
    status: int | None = None,
    latency_ms: float | None = None,
    shadow: bool = False,
) -> list[str]:
    """One request per row, scored by `model` and appended with the real PredictionLog; returns
    the request ids. `status` and `latency_ms` are the fields the monitor reads when present."""
    settings = config.environment_settings(environment)
    log = PredictionLog(config.resolve(settings.serving.prediction_log.directory))
    moment = (time or datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    scores = model.predict_proba(features)[:, 1]
    labels = [int(value) for value in model.classes_[model.predict_proba(features).argmax(axis=1)]]
    ids = [f"{prefix}-{index}" for index in range(len(features))]
    records = []
    for request_id, row, score, label in zip(
        ids, features.to_dict(orient="records"), scores, labels, strict=True
    ):
        record = {
            "request_id": request_id,
            "row": 0,
            "time": moment,
            "environment": environment,
            "endpoint": "predict",
            "variant": variant,
            "model_version": version,
            "shadow": shadow,
            "experiment_id": None,
            "routing_key_hash": None,
            "features": row,
            "score": float(score),
            "label": label,
        }
        if status is not None:
            record["status"] = status
        if latency_ms is not None:
            record["latency_ms"] = latency_ms
        records.append(record)
    log.append(records)
    log.close()
    return ids


def log_failures(config: ProjectConfig, environment: str, version: int, count: int, prefix: str) -> None:
    """Failed requests as the monitor expects them: row 0, status 500, no score."""
    settings = config.environment_settings(environment)
    log = PredictionLog(config.resolve(settings.serving.prediction_log.directory))
    moment = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    log.append(
        {
            "request_id": f"{prefix}-{index}",
            "row": 0,
            "time": moment,
            "environment": environment,
            "endpoint": "predict",
            "variant": "challenger",
            "model_version": version,
            "shadow": False,
            "status": 500,
            "latency_ms": 5.0,
            "features": None,
            "score": None,
            "label": None,
        }
        for index in range(count)
    )
    log.close()


def store_labels(
    config: ProjectConfig, environment: str, ids: list[str], labels: np.ndarray, variant: str, version: int
) -> None:
    settings = config.environment_settings(environment)
    store = FeedbackStore(resolve_database_url(settings.serving.feedback_database_url, config.root))
    store.record_requests(
        [ServedRequest(request_id, environment, variant, version, None, 1) for request_id in ids]
    )
    store.add_feedback([(request_id, 0, int(label)) for request_id, label in zip(ids, labels, strict=True)])
    store.close()
