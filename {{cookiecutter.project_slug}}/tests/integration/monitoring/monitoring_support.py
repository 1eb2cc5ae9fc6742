"""Helpers of the monitoring tests: Adult test-split rows sent through the real service (its own
application under a real uvicorn on 127.0.0.1, the champion loaded from the registry as `serve` loads
it) with their labels posted to its /feedback, environment files, and, for the canary analysis whose
latencies and failures a test must choose, log records written with the real PredictionLog."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import yaml
from fixtures import FIXTURES
from support.http_client import post_feedback, post_many
from support.in_thread_service import registered_release, running_service

from {{ cookiecutter.package_name }}.config import ProjectConfig
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


FEEDBACK_TOKEN = "monitoring-tests-feedback-token"
ROWS_PER_REQUEST = 100


def serve_rows(
    workspace: Workspace, environment: str, features: pd.DataFrame, labels: np.ndarray | None = None
) -> list[dict]:
    """Send `features` to the service of the workspace's champion in `environment`, ROWS_PER_REQUEST
    rows a request, and post the first len(`labels`) rows' labels to its /feedback; the service logs
    where environments/<env>.yaml says. Returns what the service answered for each row, in the order of
    `features`: its request id, row, label and score."""
    release = registered_release(workspace.config, environment, workspace.champion)
    with running_service(workspace.config, release, {"MLOPS_FEEDBACK_TOKEN": FEEDBACK_TOKEN}) as port:
        rows = orjson.loads(features.to_json(orient="records"))
        answers = post_many(
            port,
            [
                ("/predict", {"instances": rows[start : start + ROWS_PER_REQUEST]}, {})
                for start in range(0, len(rows), ROWS_PER_REQUEST)
            ],
            concurrency=4,
        )
        assert [answer.status if answer else None for answer in answers] == [200] * len(answers), [
            answer.body for answer in answers if answer is None or answer.status != 200
        ][:1]
        served = [
            {"request_id": answer.json()["request_id"], "row": row, **prediction}
            for answer in answers
            for row, prediction in enumerate(answer.json()["predictions"])
        ]
        if labels is not None:
            feedback = [
                {"request_id": item["request_id"], "row": item["row"], "label": int(label)}
                for item, label in zip(served, labels, strict=False)
            ]
            post_feedback(port, feedback, FEEDBACK_TOKEN)
    return served


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
