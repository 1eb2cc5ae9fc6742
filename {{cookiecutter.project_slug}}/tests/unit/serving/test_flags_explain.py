"""The `explain-predictions` flag's contributions: per row, in row order, adding up to the model's output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from {{ cookiecutter.package_name }}.config import DataConfig, ModelConfig
from {{ cookiecutter.package_name }}.pipeline.features import build_pipeline
from {{ cookiecutter.package_name }}.serving.explain import RowExplainer

pytestmark = pytest.mark.unit

DATA = DataConfig(
    name="synthetic",
    path="synthetic.csv",
    target="label",
    positive_label="1",
    numeric_features=["age", "hours"],
    categorical_features=["colour"],
)
FAMILIES = {
    "hist_gradient_boosting": ({"max_iter": 20}, "tree", "log-odds"),
    "random_forest": ({"n_estimators": 10, "max_depth": 4, "n_jobs": 1}, "tree", "probability"),
    "logistic_regression": ({}, "linear", "log-odds"),
}


def table(rows: int = 300) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(3)
    colour = rng.choice(["red", "green", "blue"], size=rows)
    age = rng.normal(40, 10, size=rows)
    logit = 0.1 * (age - 40) + 1.2 * (colour == "red")
    labels = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({"age": age, "hours": rng.normal(40, 5, size=rows), "colour": colour})
    return frame, pd.Series(labels, name="label")


def served_rows(frame: pd.DataFrame) -> list[list]:
    """Rows as the service hands them over: values in column order, missing as None."""
    return frame.astype(object).where(frame.notna(), None).values.tolist()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_contributions_add_up_to_the_raw_output_row_by_row(family: str) -> None:
    params, explainer_name, output = FAMILIES[family]
    frame, labels = table()
    with threadpool_limits(limits=1):
        model = build_pipeline(DATA, ModelConfig(family=family, params=params)).fit(frame, labels)
        rows = frame.iloc[[5, 0, 42, 7]]
        explanations = RowExplainer(model, list(frame.columns)).explain(served_rows(rows))
        # Independent: the estimator's own output on these rows, in this order.
        expected = model.decision_function(rows) if output == "log-odds" else model.predict_proba(rows)[:, 1]
    assert (explanations.explainer, explanations.output) == (explainer_name, output)
    assert [set(row) for row in explanations.contributions] == [set(frame.columns)] * len(rows)
    totals = [explanations.base_value + sum(row.values()) for row in explanations.contributions]
    np.testing.assert_allclose(totals, expected, atol=1e-6)


def test_a_linear_models_reference_is_its_intercept_and_a_single_row_is_explained() -> None:
    frame, labels = table()
    model = build_pipeline(DATA, ModelConfig(family="logistic_regression", params={})).fit(frame, labels)
    explanations = RowExplainer(model, list(frame.columns)).explain(served_rows(frame.head(1)))
    assert explanations.base_value == pytest.approx(float(model.named_steps["model"].intercept_[0]))
    assert any(abs(value) > 1e-3 for value in explanations.contributions[0].values())
