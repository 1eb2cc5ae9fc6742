"""`environments/<env>.yaml`: what one environment runs and how (rollout, serving, flags, scale).

The environment-name rule lives here, once; the hook, the CLI and the workflows ask this module.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from {{ cookiecutter.package_name }}.config.loading import load_model

ENVIRONMENTS_DIR = "environments"
ENVIRONMENT_NAME = re.compile(r"^[a-z](?:[a-z0-9-]{0,28}[a-z0-9])?$")
RESERVED_ALIAS = re.compile(r"^(latest|v\d+|.*-challenger)$")
Strategy = Literal["direct", "canary", "shadow", "ab"]
KUBERNETES_CPU = r"^([0-9]+m|[0-9]+(\.[0-9]+)?)$"
KUBERNETES_MEMORY = r"^[0-9]+(Ki|Mi|Gi|Ti|K|M|G|T)?$"
# Set (from a Kubernetes Secret), it replaces serving.feedback_database_url when the service starts:
# a PostgreSQL URL carries a password, which belongs in no file.
FEEDBACK_DATABASE_URL_ENV = "MLOPS_FEEDBACK_DATABASE_URL"


def environment_name_problem(name: str) -> str | None:
    """Why `name` cannot be an environment (a git branch env/<name>, an MLflow alias), or None."""
    if not ENVIRONMENT_NAME.match(name):
        return (
            f"{name!r} is not a valid environment name: expected 1-30 lowercase letters, digits and '-', "
            "starting with a letter and not ending with '-'"
        )
    if RESERVED_ALIAS.match(name):
        return f"{name!r} collides with an MLflow alias (latest, v<number>, <env>-challenger)"
    return None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CanaryAnalysis(_Section):
    """What a challenger under canary must show before its weight advances."""

    min_requests: int = Field(default=500, ge=1, description="requests the challenger must have answered")
    max_error_rate: float = Field(default=0.01, ge=0, le=1, description="share of 5xx answers allowed")
    max_p99_latency_ms: float = Field(default=250, gt=0, description="99th percentile latency limit")


class Rollout(_Section):
    """How traffic is split between the champion and a challenger."""

    strategy: Strategy = "direct"
    challenger_weight: int = Field(default=0, ge=0, le=100, description="percent of traffic (canary, ab)")
    steps: list[int] = Field(default=[10, 25, 50, 100], description="canary weights, increasing")
    analysis: CanaryAnalysis = CanaryAnalysis()
    shadow_fraction: float = Field(
        default=1.0, ge=0, le=1, description="share of requests the challenger scores under shadow"
    )
    experiment_id: str | None = Field(
        default=None,
        min_length=1,
        description="recorded with every row under ab (default: <env>-v<champion>-vs-v<challenger>)",
    )

    @field_validator("steps")
    @classmethod
    def _steps_increase_within_percent(cls, steps: list[int]) -> list[int]:
        if not steps:
            raise ValueError("give at least one weight, e.g. [10, 50, 100]")
        for step in steps:
            if not 0 < step <= 100:
                raise ValueError(f"weight {step} is not a percentage in 1..100")
        if steps != sorted(set(steps)):
            raise ValueError(f"weights must strictly increase, got {steps}")
        return steps


class PredictionLogSettings(_Section):
    """Where every scored row is appended (JSON Lines, rotated by size)."""

    directory: Path = Field(default=Path("logs/predictions"), description="relative to the project root")
    max_file_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, description="rotate beyond this size")
    personal_data: Literal["hash", "drop"] = Field(
        default="drop",
        description="what the log keeps of project.yaml's data.personal_columns: 'hash' (HMAC-SHA256 "
        "keyed by the variable named in hash_key_env; the service refuses to start without it) or "
        "'drop' (not written at all)",
    )
    hash_key_env: str = Field(
        default="MLOPS_LOG_HASH_KEY",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="environment variable holding the key of the log's keyed hashes (personal columns "
        "and routing keys); never put the key itself in a file",
    )


class ServingAuth(_Section):
    """Bearer tokens the service requires; the tokens are read from environment variables."""

    protect_predictions: bool = Field(
        default=False,
        description="also require a bearer token on /predict and /invocations (/feedback always needs one)",
    )
    feedback_token_env: str = Field(
        default="MLOPS_FEEDBACK_TOKEN",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="environment variable holding the token(s) accepted on /feedback (comma-separated)",
    )
    prediction_token_env: str = Field(
        default="MLOPS_PREDICTION_TOKEN",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="environment variable holding the token(s) accepted on /predict and /invocations",
    )


class Serving(_Section):
    """The service's own limits."""

    workers: int = Field(default=1, ge=1, le=64)
    max_batch_rows: int = Field(default=1000, ge=1, le=100_000, description="rows per request")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="request body limit")
    batch_window_ms: float = Field(default=2, ge=0, le=1000, description="micro-batching wait")
    predict_batch_rows: int = Field(
        default=2048, ge=1, le=100_000, description="most rows scored in one model call (micro-batch)"
    )
    max_queued_rows: int = Field(
        default=20_000, ge=1, description="rows waiting to be scored; beyond it requests get 503"
    )
    prediction_log: PredictionLogSettings = PredictionLogSettings()
    feedback_database_url: str = Field(
        default="sqlite:///feedback.db",
        min_length=1,
        description="where served request ids and feedback labels are stored: any SQLAlchemy URL; "
        "a relative SQLite path is relative to the project root",
    )
    auth: ServingAuth = ServingAuth()
    request_timeout_seconds: float = Field(
        default=30, gt=0, le=3600, description="a request not answered within this time gets 504"
    )
    retention_days: int = Field(
        default=90,
        ge=1,
        description="prediction log chunks and feedback older than this are deleted by `records purge`",
    )


class Autoscaling(_Section):
    """Replica bounds for the HorizontalPodAutoscaler."""

    min_replicas: int = Field(default=1, ge=1)
    max_replicas: int = Field(default=3, ge=1)
    target_cpu_percent: int = Field(default=70, ge=1, le=100)

    @model_validator(mode="after")
    def _bounds_are_ordered(self) -> Autoscaling:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) is below min_replicas ({self.min_replicas})"
            )
        return self


class Resources(_Section):
    """CPU and memory of one replica (Kubernetes quantities)."""

    cpu: str = Field(default="500m", pattern=KUBERNETES_CPU)
    memory: str = Field(default="1Gi", pattern=KUBERNETES_MEMORY)


class ImageSettings(_Section):
    """The serving image: whether this environment runs only releases that name one by digest."""

    required: bool = Field(
        default=False,
        description="deploy refuses a release without a serving image digest (set it once image.yml "
        "publishes the image and promotion records it with --image)",
    )


class EnvironmentSettings(_Section):
    """Everything one environment's desired state is rendered from, besides the model version."""

    rollout: Rollout = Rollout()
    serving: Serving = Serving()
    flags: Path | None = Field(default=None, description="the environment's OpenFeature (flagd) file")
    image: ImageSettings = ImageSettings()
    autoscaling: Autoscaling = Autoscaling()
    resources: Resources = Resources()


def settings_path(root: Path, environment: str) -> Path:
    return root / ENVIRONMENTS_DIR / f"{environment}.yaml"


def load_environment(root: Path, environment: str) -> EnvironmentSettings:
    """Read and validate environments/<env>.yaml; a missing file is an error naming it."""
    return load_model(EnvironmentSettings, settings_path(root, environment))
