"""SHAP explanations checked against the models' own outputs, computed here independently."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import shap
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from {{ cookiecutter.package_name }}.config import DataConfig, ModelConfig
from {{ cookiecutter.package_name }}.governance.explainability import explain, feature_groups
from {{ cookiecutter.package_name }}.pipeline.features import build_pipeline, build_preprocessor

pytestmark = pytest.mark.unit

DATA = DataConfig(
    name="synthetic",
    path="synthetic.csv",
    target="label",
    positive_label="1",
    numeric_features=["age", "noise"],
    categorical_features=["city", "colour"],
)
FREQUENT_CITIES = [f"city{index}" for index in range(12)]
RARE_CITIES = ["hamlet", "village", "outpost"]
TOLERANCE = 1e-6
# Small ensembles keep the module fast; the explainers do not depend on the ensemble size.
FAMILY_PARAMS = {
    "hist_gradient_boosting": {"max_iter": 30},
    "random_forest": {"n_estimators": 20, "max_depth": 6, "n_jobs": 1},
    "logistic_regression": {},
}


def synthetic_table(rows: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """Label driven by age, colour and city; `noise` carries no signal at all."""
    rng = np.random.default_rng(seed)
    rare = rng.choice(RARE_CITIES, size=rows // 40)  # 3 rare cities share ~2.5% of rows: < 10 each in 400
    city = np.concatenate([rng.choice(FREQUENT_CITIES, size=rows - len(rare)), rare])
    colour = rng.choice(["red", "green", "blue"], size=rows)
    age = rng.normal(40, 12, size=rows)
    city_effect = np.array([(int(name[4:]) % 3 - 1) * 0.8 if name[4:].isdigit() else 0.0 for name in city])
    logit = 0.15 * (age - 40) + 1.5 * (colour == "red") - 1.0 * (colour == "blue") + city_effect
    labels = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({"age": age, "noise": rng.normal(size=rows), "city": city, "colour": colour})
    frame.loc[rng.choice(rows, size=rows // 50, replace=False), "age"] = np.nan
    return frame, pd.Series(labels, name="label")


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """On a few hundred rows OpenMP threads only add overhead, and stall badly on a busy CI runner."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def table() -> tuple[pd.DataFrame, pd.Series]:
    return synthetic_table(400, seed=1)


@pytest.fixture(scope="module")
def fitted(table: tuple[pd.DataFrame, pd.Series]) -> dict[str, Pipeline]:
    frame, labels = table
    return {
        family: build_pipeline(DATA, ModelConfig(family=family, params=params)).fit(frame, labels)
        for family, params in FAMILY_PARAMS.items()
    }


def raw_output(model: Pipeline, family: str, rows: pd.DataFrame) -> np.ndarray:
    """The quantity each explainer decomposes, computed from the fitted estimator."""
    transformed = model.named_steps["preprocess"].transform(rows)
    estimator = model.named_steps["model"]
    if family == "random_forest":
        return estimator.predict_proba(transformed)[:, 1]
    return estimator.decision_function(transformed)


def test_synthetic_city_column_exercises_rare_category_pooling(table: tuple[pd.DataFrame, pd.Series]) -> None:
    counts = table[0]["city"].value_counts()
    assert (counts[FREQUENT_CITIES] >= 10).all()
    assert (counts[RARE_CITIES] < 10).all()


@pytest.mark.parametrize(
    ("family", "explainer", "output"),
    [
        ("hist_gradient_boosting", "tree", "log-odds"),
        ("random_forest", "tree", "probability"),
        ("logistic_regression", "linear", "log-odds"),
    ],
)
def test_attributions_add_up_to_the_model_output(
    fitted: dict[str, Pipeline],
    table: tuple[pd.DataFrame, pd.Series],
    family: str,
    explainer: str,
    output: str,
) -> None:
    model, frame = fitted[family], table[0]
    report = explain(model, frame, frame, sample_size=60, background_size=40, random_state=0)
    expected = raw_output(model, family, report.data)
    assert (report.explainer, report.output) == (explainer, output)
    assert report.values.shape == (60, 4)
    np.testing.assert_allclose(
        report.base_value + report.values.sum(axis=1), expected, rtol=0, atol=TOLERANCE
    )
    assert report.additivity_errors.max() < TOLERANCE


def test_unknown_estimator_falls_back_to_permutation_explainer(table: tuple[pd.DataFrame, pd.Series]) -> None:
    frame, labels = table
    model = Pipeline([("preprocess", build_preprocessor(DATA)), ("model", GaussianNB())])
    model.fit(frame, labels)
    report = explain(model, frame, frame, sample_size=15, background_size=15, random_state=0)
    probability = model.predict_proba(report.data)[:, 1]
    assert (report.explainer, report.output) == ("permutation", "probability")
    np.testing.assert_allclose(report.base_value + report.values.sum(axis=1), probability, atol=TOLERANCE)


def test_feature_groups_cover_every_encoded_column_once(
    fitted: dict[str, Pipeline], table: tuple[pd.DataFrame, pd.Series]
) -> None:
    preprocessor = fitted["hist_gradient_boosting"].named_steps["preprocess"]
    names = list(preprocessor.get_feature_names_out())
    groups = feature_groups(preprocessor)
    assert sorted(index for indices in groups.values() for index in indices) == list(range(len(names)))
    assert set(groups) == {"age", "noise", "city", "colour"}
    for column in ("city", "colour"):
        encoded = [index for index, name in enumerate(names) if name.startswith(f"categorical__{column}_")]
        assert groups[column] == encoded
    counts = table[0]["city"].value_counts()
    # one column per frequent city plus one pooled column for the rare ones
    assert len(groups["city"]) == (counts >= 10).sum() + 1 == len(FREQUENT_CITIES) + 1
    assert [names[groups[column][0]] for column in ("age", "noise")] == ["numeric__age", "numeric__noise"]


def test_summing_one_hot_columns_conserves_total_attribution(
    fitted: dict[str, Pipeline], table: tuple[pd.DataFrame, pd.Series]
) -> None:
    model = fitted["hist_gradient_boosting"]
    preprocessor, estimator = model.named_steps["preprocess"], model.named_steps["model"]
    report = explain(model, table[0], table[0], sample_size=40, background_size=40, random_state=3)
    transformed = preprocessor.transform(report.data)
    raw = shap.TreeExplainer(estimator)(transformed, check_additivity=False).values
    names = preprocessor.get_feature_names_out()
    np.testing.assert_allclose(report.values.sum(axis=1), raw.sum(axis=1), atol=1e-9)
    for position, feature in enumerate(report.features):
        prefix = f"numeric__{feature}" if feature in DATA.numeric_features else f"categorical__{feature}_"
        columns = [index for index, name in enumerate(names) if name.startswith(prefix)]
        np.testing.assert_allclose(report.values[:, position], raw[:, columns].sum(axis=1), atol=1e-9)


def test_cost_is_bounded_and_seeded_on_a_large_table(fitted: dict[str, Pipeline]) -> None:
    rows, _ = synthetic_table(5_000, seed=2)
    model = fitted["logistic_regression"]
    first = explain(model, rows, rows, sample_size=50, background_size=20, random_state=7)
    second = explain(model, rows, rows, sample_size=50, background_size=20, random_state=7)
    assert first.values.shape == (50, 4)
    assert len(first.data) == 50
    summary = first.to_dict()
    assert (summary["sample_size"], summary["background_size"]) == (50, 20)
    assert summary["additivity"]["checked_rows"] == 50
    np.testing.assert_array_equal(first.values, second.values)
    assert first.base_value == second.base_value


def test_importance_is_sorted_and_ranks_noise_below_signal(
    fitted: dict[str, Pipeline], table: tuple[pd.DataFrame, pd.Series]
) -> None:
    report = explain(
        fitted["logistic_regression"],
        table[0],
        table[0],
        sample_size=200,
        background_size=100,
        random_state=0,
    )
    importance = report.importance()
    scores = [item["mean_abs_shap"] for item in importance]
    assert scores == sorted(scores, reverse=True)
    expected = dict(zip(report.features, np.abs(report.values).mean(axis=0), strict=True))
    for item in importance:
        assert item["mean_abs_shap"] == pytest.approx(expected[item["feature"]], abs=1e-6)
    ranking = [item["feature"] for item in importance]
    assert ranking.index("noise") > ranking.index("age")
    assert ranking.index("noise") > ranking.index("colour")
    assert ranking[-1] == "noise"
