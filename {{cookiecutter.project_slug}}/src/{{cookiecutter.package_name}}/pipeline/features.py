"""The scikit-learn pipeline: preprocessing per column type, then the configured estimator."""

from __future__ import annotations

from typing import Any

from sklearn.base import ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from {{ cookiecutter.package_name }}.config import DataConfig, ModelConfig
from {{ cookiecutter.package_name }}.errors import ConfigError
from {{ cookiecutter.package_name }}.pipeline.data import FeatureSchema

ESTIMATORS: dict[str, type[ClassifierMixin]] = {
    "hist_gradient_boosting": HistGradientBoostingClassifier,
    "random_forest": RandomForestClassifier,
    "logistic_regression": LogisticRegression,
}
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "hist_gradient_boosting": {},
    "random_forest": {"n_estimators": 150, "max_depth": 12, "min_samples_leaf": 3, "n_jobs": -1},
    "logistic_regression": {"max_iter": 2000},
}
RARE_CATEGORY_COUNT = 10


def _as_schema(columns: FeatureSchema | DataConfig) -> FeatureSchema:
    if isinstance(columns, FeatureSchema):
        return columns
    if columns.infers_features:
        raise ValueError(
            "project.yaml declares no feature lists, so they are inferred when the data is loaded: "
            "build the pipeline from the loaded Dataset's schema"
        )
    return FeatureSchema.declared(columns)


def build_preprocessor(columns: FeatureSchema | DataConfig) -> ColumnTransformer:
    """Impute and scale numbers; impute and one-hot encode categories (rare ones pooled).

    `columns` is the loaded Dataset's schema; a DataConfig that declares both lists will do where no
    file is read. Empty numeric columns are kept (imputed as 0) so the output keeps one column per
    numeric input, which the explanations rely on to map values back to columns.
    """
    schema = _as_schema(columns)
    numeric = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
        ]
    )
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
            (
                "encode",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    min_frequency=RARE_CATEGORY_COUNT,
                    sparse_output=False,
                ),
            ),
        ]
    )
    return ColumnTransformer(
        [
            ("numeric", numeric, list(schema.numeric)),
            ("categorical", categorical, list(schema.categorical)),
        ],
        verbose_feature_names_out=True,
    )


def build_estimator(model: ModelConfig) -> ClassifierMixin:
    """The configured estimator; an unknown hyperparameter is reported with the valid ones."""
    estimator_class = ESTIMATORS[model.family]
    valid = estimator_class().get_params()
    unknown = sorted(set(model.params) - set(valid))
    if unknown:
        raise ConfigError(
            f"model.params: {', '.join(unknown)} is not a parameter of {estimator_class.__name__} "
            f"(valid: {', '.join(sorted(valid))})"
        )
    params = {**DEFAULT_PARAMS[model.family], **model.params}
    if "random_state" in valid:
        params.setdefault("random_state", model.random_state)
    return estimator_class(**params)


def build_pipeline(columns: FeatureSchema | DataConfig, model: ModelConfig) -> Pipeline:
    """Preprocessing for `columns` (pass `dataset.schema`), then the configured estimator."""
    return Pipeline([("preprocess", build_preprocessor(columns)), ("model", build_estimator(model))])
