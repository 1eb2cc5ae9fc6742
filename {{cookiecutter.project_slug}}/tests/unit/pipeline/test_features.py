from __future__ import annotations

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import DataConfig, ModelConfig
from {{ cookiecutter.package_name }}.errors import ConfigError
from {{ cookiecutter.package_name }}.pipeline.data import FeatureSchema
from {{ cookiecutter.package_name }}.pipeline.features import (
    ESTIMATORS,
    build_estimator,
    build_pipeline,
    build_preprocessor,
)

pytestmark = pytest.mark.unit

DATA = DataConfig(
    name="toy",
    path="toy.csv",
    target="label",
    positive_label="1",
    numeric_features=["x"],
    categorical_features=["colour"],
)


def toy_frame(rows: int = 40) -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.DataFrame(
        {
            "x": [float(i % 10) if i % 7 else None for i in range(rows)],
            "colour": [["red", "green", "blue", None][i % 4] for i in range(rows)],
        }
    )
    labels = pd.Series([int(i % 10 >= 5) for i in range(rows)])
    return frame, labels


@pytest.mark.parametrize("family", sorted(ESTIMATORS))
def test_each_family_fits_and_gives_probabilities(family: str) -> None:
    frame, labels = toy_frame()
    model = build_pipeline(DATA, ModelConfig(family=family)).fit(frame, labels)
    probabilities = model.predict_proba(frame)
    assert probabilities.shape == (len(frame), 2)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    assert probabilities.sum(axis=1) == pytest.approx(1.0)


def test_unseen_category_at_prediction_time_is_tolerated() -> None:
    frame, labels = toy_frame()
    model = build_pipeline(DATA, ModelConfig(family="logistic_regression")).fit(frame, labels)
    unseen = pd.DataFrame({"x": [3.0], "colour": ["ultraviolet"]})
    assert model.predict(unseen).shape == (1,)


def test_unknown_hyperparameter_is_named_with_the_valid_ones() -> None:
    with pytest.raises(
        ConfigError,
        match=r"model\.params: n_trees is not a parameter of RandomForestClassifier.*n_estimators",
    ):
        build_estimator(ModelConfig(family="random_forest", params={"n_trees": 10}))


def test_configured_hyperparameters_reach_the_estimator() -> None:
    estimator = build_estimator(
        ModelConfig(family="hist_gradient_boosting", params={"max_iter": 17}, random_state=3)
    )
    assert estimator.get_params()["max_iter"] == 17
    assert estimator.get_params()["random_state"] == 3


def test_pipeline_uses_the_resolved_schema_not_the_config_lists() -> None:
    frame, labels = toy_frame()
    schema = FeatureSchema(numeric=("x",), categorical=("colour",), ignored=(), inferred=True)
    undeclared = DataConfig(name="toy", path="toy.csv", target="label", positive_label="1")
    assert undeclared.numeric_features == [] and undeclared.categorical_features == []
    model = build_pipeline(schema, ModelConfig(family="logistic_regression")).fit(frame, labels)
    columns = {name: list(selected) for name, _, selected in model.named_steps["preprocess"].transformers_}
    assert columns["numeric"] == ["x"]
    assert columns["categorical"] == ["colour"]


def test_config_without_feature_lists_cannot_build_a_pipeline() -> None:
    undeclared = DataConfig(name="toy", path="toy.csv", target="label", positive_label="1")
    with pytest.raises(ValueError, match="schema"):
        build_preprocessor(undeclared)


def test_numeric_column_empty_in_the_training_rows_keeps_its_output_column() -> None:
    frame, _ = toy_frame()
    frame = frame.assign(y=float("nan"))
    schema = FeatureSchema(numeric=("x", "y"), categorical=("colour",), ignored=(), inferred=False)
    preprocessor = build_preprocessor(schema).fit(frame)
    names = list(preprocessor.get_feature_names_out())
    assert [name for name in names if name.startswith("numeric__")] == ["numeric__x", "numeric__y"]
    assert preprocessor.transform(frame).shape[1] == len(names)


@pytest.mark.parametrize("family", sorted(ESTIMATORS))
def test_constant_feature_columns_do_not_break_fitting(family: str) -> None:
    frame, labels = toy_frame()
    frame = frame.assign(x=7.0, colour="red")
    model = build_pipeline(DATA, ModelConfig(family=family)).fit(frame, labels)
    assert model.predict_proba(frame).shape == (len(frame), 2)
