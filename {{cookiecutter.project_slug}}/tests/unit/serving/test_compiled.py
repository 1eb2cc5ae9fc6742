"""The compiled preprocessing gives the fitted pipeline's own probabilities, or is not used at all."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from {{ cookiecutter.package_name }}.config import ModelConfig
from {{ cookiecutter.package_name }}.pipeline.features import build_pipeline
from {{ cookiecutter.package_name }}.serving import compiled as compiled_module
from {{ cookiecutter.package_name }}.serving.compiled import UNSEEN, compile_pipeline, verified

pytestmark = pytest.mark.unit


def request_rows(frame: pd.DataFrame) -> list[list]:
    """Rows as the service passes them: floats for numbers, str or None for categories."""
    rows = frame.astype(object).where(frame.notna(), None).values.tolist()
    return [[float(value) if isinstance(value, int | float) else value for value in row] for row in rows]


@pytest.fixture(scope="module")
def data(project_config):
    from {{ cookiecutter.package_name }}.pipeline.data import load_dataset
    from {{ cookiecutter.package_name }}.pipeline.training import split_dataset

    dataset = load_dataset(project_config.data, project_config.data_path)
    return dataset, split_dataset(dataset, project_config.model)


@pytest.mark.parametrize("family", ["hist_gradient_boosting", "logistic_regression", "random_forest"])
def test_compiled_probabilities_equal_the_pipeline_on_held_out_and_odd_rows(data, family: str) -> None:
    dataset, split = data
    params = {"n_estimators": 20} if family == "random_forest" else {"max_iter": 30}
    model = ModelConfig(family=family, params=params)
    pipeline = build_pipeline(dataset.schema, model).fit(split.train_features, split.train_labels)
    columns = list(split.test_features.columns)
    compiled = verified(pipeline, columns)
    assert compiled is not None, "the project's own pipeline structure compiles"
    rows = request_rows(split.test_features)
    categorical = [columns.index(name) for name in dataset.schema.categorical]
    numeric = [columns.index(name) for name in dataset.schema.numeric]
    odd = [list(row) for row in rows[:4]]
    odd[0][categorical[0]] = UNSEEN
    odd[1][categorical[-1]] = None
    odd[2][numeric[0]] = math.nan
    odd[3][numeric[-1]] = 1e9
    for batch in (rows, odd, rows[:1]):
        expected = pipeline.predict_proba(pd.DataFrame(batch, columns=columns))
        np.testing.assert_allclose(compiled.predict_proba(batch), expected, rtol=0, atol=1e-9)


def test_another_structure_is_left_to_the_pipeline(data) -> None:
    dataset, split = data
    numeric = list(dataset.schema.numeric)
    pipeline = Pipeline(
        [
            ("preprocess", ColumnTransformer([("numeric", MinMaxScaler(), numeric)])),
            ("model", LogisticRegression()),
        ]
    ).fit(split.train_features.fillna(0), split.train_labels)
    assert compile_pipeline(pipeline, list(split.test_features.columns)) is None


def test_a_compiled_form_that_disagrees_is_not_used(data, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset, split = data
    pipeline = build_pipeline(dataset.schema, ModelConfig(family="logistic_regression")).fit(
        split.train_features, split.train_labels
    )
    columns = list(split.test_features.columns)
    compiled = compile_pipeline(pipeline, columns)
    compiled.numeric.mean[0] += 1.0  # a statistic read wrong
    monkeypatch.setattr(compiled_module, "compile_pipeline", lambda *_: compiled)
    assert verified(pipeline, columns) is None
