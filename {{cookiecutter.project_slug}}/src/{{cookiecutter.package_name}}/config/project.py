"""The project's single configuration file, `project.yaml`, as typed and validated settings.

Relative paths in the file are resolved against the directory that holds it. `MLFLOW_TRACKING_URI`
in the environment overrides `mlflow.tracking_uri`, as on a CI runner pointed at a shared server.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from {{ cookiecutter.package_name }}.config.environment import (
    ENVIRONMENT_NAME,  # noqa: F401 - re-exported by config
    EnvironmentSettings,
    environment_name_problem,
    load_environment,
)
from {{ cookiecutter.package_name }}.config.loading import describe, parse_yaml
from {{ cookiecutter.package_name }}.errors import ConfigError

DEFAULT_CONFIG_FILE = "project.yaml"
ModelFamily = Literal["hist_gradient_boosting", "random_forest", "logistic_regression"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Section):
    """Where the data is and what each column means.

    Leave out both `numeric_features` and `categorical_features` to have them inferred from the CSV
    (every column but the target and `ignore_columns`; numeric when every cell is a number).
    """

    name: str = Field(min_length=1)
    path: Path
    delimiter: str = ","
    target: str = Field(min_length=1)
    positive_label: str
    numeric_features: list[str] = []
    categorical_features: list[str] = []
    sensitive_features: list[str] = []
    ignore_columns: list[str] = []
    personal_columns: list[str] = Field(
        default=[],
        description="columns that are personal data: the prediction log hashes or drops them, as each "
        "environment's serving.prediction_log.personal_data says",
    )
    feedback_path: Path | None = Field(
        default=None,
        description="directory of labelled feedback rows (`feedback import` writes one CSV per import "
        "and a manifest line with its sha256); when set, training appends them to the training split "
        "only. Unset: no feedback is used",
    )

    @field_validator("positive_label", mode="before")
    @classmethod
    def _label_as_text(cls, value: Any) -> str:
        if isinstance(value, bool) or value is None:
            raise ValueError("expected the target value of the positive class, e.g. '>50K' or 1")
        return str(value)

    @field_validator("delimiter")
    @classmethod
    def _one_separator_character(cls, value: str) -> str:
        if len(value) != 1 or value in '"\r\n':
            raise ValueError(
                'expected one character that separates the columns, such as ";", "\\t" (a tab) or "|" '
                f'(default ","); got {value!r}'
            )
        return value

    @model_validator(mode="after")
    def _columns_are_consistent(self) -> DataConfig:
        roles = {
            "numeric_features": self.numeric_features,
            "categorical_features": self.categorical_features,
            "ignore_columns": self.ignore_columns,
        }
        seen: dict[str, str] = {}
        for role, columns in roles.items():
            for column in columns:
                if column == self.target:
                    raise ValueError(f"the target column {column!r} must not be listed in {role}")
                if seen.get(column) == role:
                    raise ValueError(f"column {column!r} is listed twice in {role}")
                if column in seen:
                    raise ValueError(f"column {column!r} is listed in both {seen[column]} and {role}")
                seen[column] = role
        if self.target in self.personal_columns:
            raise ValueError(
                f"the target column {self.target!r} must not be listed in personal_columns "
                "(the log records predictions, not the target)"
            )
        return self

    @property
    def infers_features(self) -> bool:
        """True when neither feature list is declared: the loader infers them from the CSV."""
        return not self.numeric_features and not self.categorical_features

    @property
    def features(self) -> list[str]:
        """The declared feature columns (empty when inferred: read `Dataset.schema` instead)."""
        return [*self.numeric_features, *self.categorical_features]


class ModelConfig(_Section):
    """Which estimator to train and how the data is split for evaluation."""

    family: ModelFamily
    params: dict[str, Any] = {}
    test_size: float = Field(default=0.25, gt=0, lt=1)
    random_state: int = 42


class MlflowConfig(_Section):
    """Where runs and models are recorded."""

    tracking_uri: str = "sqlite:///mlflow.db"
    artifact_root: Path = Path("mlartifacts")
    experiment: str = Field(min_length=1)
    registered_model: str = Field(min_length=1)


class GovernanceConfig(_Section):
    """Where evidence goes and how much it may cost (bounded whatever the size of the data)."""

    reports_dir: Path = Path("reports")
    policies_dir: Path = Path("policies")
    model_card: Path = Path("model_card.yaml")
    shap_sample_size: int = Field(default=300, ge=10, le=100_000)
    shap_background_size: int = Field(default=100, ge=10, le=10_000)
    min_group_size: int = Field(default=30, ge=1)
    fairness_max_rows: int = Field(default=50_000, ge=1_000)


class ProjectConfig(_Section):
    """Everything the pipeline, governance and delivery code read."""

    name: str = Field(min_length=1)
    policy_pack: str = Field(min_length=1)
    environments: list[str] = Field(min_length=1)
    data: DataConfig
    model: ModelConfig
    mlflow: MlflowConfig
    governance: GovernanceConfig = GovernanceConfig()
    root: Path = Path(".")

    @field_validator("environments")
    @classmethod
    def _environments_are_branch_safe(cls, names: list[str]) -> list[str]:
        for name in names:
            problem = environment_name_problem(name)
            if problem:
                raise ValueError(problem)
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"{', '.join(duplicates)} listed more than once")
        return names

    def environment_settings(self, environment: str) -> EnvironmentSettings:
        """The typed settings of one of this project's environments (environments/<env>.yaml)."""
        if environment not in self.environments:
            raise ConfigError(
                f"{environment!r} is not an environment of this project "
                f"(environments: {', '.join(self.environments)})"
            )
        return load_environment(self.root, environment)

    def resolve(self, path: Path) -> Path:
        """A path from the config file, made absolute against the project root."""
        return path if path.is_absolute() else (self.root / path).resolve()

    @property
    def data_path(self) -> Path:
        return self.resolve(self.data.path)

    @property
    def tracking_uri(self) -> str:
        """The tracking URI with a relative SQLite file resolved against the project root."""
        uri = self.mlflow.tracking_uri
        prefix = "sqlite:///"
        if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
            return prefix + str(self.resolve(Path(uri[len(prefix) :])))
        return uri

    @property
    def artifact_location(self) -> str:
        return self.resolve(self.mlflow.artifact_root).as_uri()


def load_config(path: Path | str = DEFAULT_CONFIG_FILE) -> ProjectConfig:
    """Read and validate project.yaml; every problem is reported with the key it concerns."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"{path}: configuration file not found (run from the project root or pass --config)"
        )
    document = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    document["root"] = path.resolve().parent
    override = os.environ.get("MLFLOW_TRACKING_URI")
    if override and isinstance(document.get("mlflow"), dict):
        document["mlflow"]["tracking_uri"] = override
    try:
        return ProjectConfig.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(describe(item) for item in error.errors())
        raise ConfigError(f"{path}: {problems}") from None
