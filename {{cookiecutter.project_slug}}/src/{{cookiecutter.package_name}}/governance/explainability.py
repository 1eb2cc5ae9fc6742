"""SHAP explanations of a fitted pipeline, reported per original column.

The explainer follows the estimator: exact tree SHAP for tree ensembles, the linear explainer for
linear models, a permutation explainer for anything else. Cost is bounded: a seeded sample of rows
is explained against a seeded background set, whatever the size of the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from {{ cookiecutter.package_name }}.errors import ProjectError

PROBABILITY_TREES = ("RandomForestClassifier", "ExtraTreesClassifier", "DecisionTreeClassifier")
LOG_ODDS_TREES = ("HistGradientBoostingClassifier", "GradientBoostingClassifier")
LINEAR_MODELS = ("LogisticRegression", "SGDClassifier", "RidgeClassifier")


class ExplainabilityError(ProjectError):
    """The model cannot be explained as configured."""


@dataclass(frozen=True)
class ShapReport:
    """SHAP values of the explained rows, one column per original feature."""

    explainer: str
    output: str
    features: list[str]
    values: np.ndarray
    base_value: float
    data: pd.DataFrame
    model_output: np.ndarray
    background_size: int

    @property
    def additivity_errors(self) -> np.ndarray:
        """|base value + sum of attributions - model output| per explained row."""
        return np.abs(self.base_value + self.values.sum(axis=1) - self.model_output)

    def importance(self) -> list[dict[str, float | str]]:
        """Mean |SHAP| per original feature, largest first."""
        means = np.abs(self.values).mean(axis=0)
        order = np.argsort(-means, kind="stable")
        return [{"feature": self.features[i], "mean_abs_shap": round(float(means[i]), 6)} for i in order]

    def to_dict(self) -> dict:
        return {
            "explainer": self.explainer,
            "output": self.output,
            "sample_size": int(self.values.shape[0]),
            "background_size": self.background_size,
            "base_value": round(float(self.base_value), 6),
            "importance": self.importance(),
            "additivity": {
                "max_error": float(self.additivity_errors.max(initial=0.0)),
                "checked_rows": int(self.values.shape[0]),
            },
        }


def feature_groups(preprocessor: ColumnTransformer) -> dict[str, list[int]]:
    """Map each original column to the indices of the transformed columns it produced."""
    groups: dict[str, list[int]] = {}
    for name, transformer, columns in preprocessor.transformers_:
        span = preprocessor.output_indices_.get(name, slice(0, 0))
        if transformer == "drop" or span.stop == span.start:
            continue
        widths = _output_widths(transformer, list(columns))
        if sum(widths) != span.stop - span.start:
            raise ExplainabilityError(
                f"cannot map the {span.stop - span.start} columns of transformer {name!r} back to "
                f"its input columns {list(columns)}"
            )
        start = span.start
        for column, width in zip(columns, widths, strict=True):
            groups.setdefault(str(column), []).extend(range(start, start + width))
            start += width
    return groups


def _output_widths(transformer, columns: list[str]) -> list[int]:
    """How many output columns each input column yields (one-hot encoders expand, others do not)."""
    last = transformer.steps[-1][1] if isinstance(transformer, Pipeline) else transformer
    if hasattr(last, "categories_"):
        infrequent = getattr(last, "infrequent_categories_", [None] * len(columns))
        dropped = getattr(last, "drop_idx_", None)
        widths = []
        for index, categories in enumerate(last.categories_):
            width = len(categories)
            if infrequent[index] is not None:
                width -= len(infrequent[index]) - 1
            if dropped is not None and dropped[index] is not None:
                width -= 1
            widths.append(width)
        return widths
    return [1] * len(columns)


def aggregate_by_feature(values: np.ndarray, groups: dict[str, list[int]]) -> np.ndarray:
    """Sum the attributions of expanded columns back into their original column (order of `groups`)."""
    return np.column_stack([values[:, indices].sum(axis=1) for indices in groups.values()])


def _explain_transformed(estimator, rows: np.ndarray, background: np.ndarray):
    """Return (explainer name, output name, values, base value, model output) on transformed data."""
    import shap

    kind = type(estimator).__name__
    if kind in PROBABILITY_TREES or kind in LOG_ODDS_TREES:
        explanation = shap.TreeExplainer(estimator)(rows, check_additivity=False)
        values, base = explanation.values, np.asarray(explanation.base_values)
        if values.ndim == 3:
            values, base = values[:, :, 1], base[:, 1]
        if kind in PROBABILITY_TREES:
            return "tree", "probability", values, base, estimator.predict_proba(rows)[:, 1]
        return "tree", "log-odds", values, base, estimator.decision_function(rows)
    if kind in LINEAR_MODELS:
        explanation = shap.LinearExplainer(estimator, background)(rows)
        return (
            "linear",
            "log-odds",
            explanation.values,
            explanation.base_values,
            estimator.decision_function(rows),
        )

    def positive_probability(data: np.ndarray) -> np.ndarray:
        return estimator.predict_proba(data)[:, 1]

    explainer = shap.PermutationExplainer(positive_probability, background, seed=0)
    explanation = explainer(rows, silent=True)
    return (
        "permutation",
        "probability",
        explanation.values,
        explanation.base_values,
        positive_probability(rows),
    )


def explain(
    model: Pipeline,
    rows: pd.DataFrame,
    background: pd.DataFrame,
    sample_size: int,
    background_size: int,
    random_state: int,
) -> ShapReport:
    """Explain at most `sample_size` rows against at most `background_size` background rows."""
    preprocessor, estimator = model.named_steps["preprocess"], model.steps[-1][1]
    sample = rows.sample(n=min(sample_size, len(rows)), random_state=random_state).reset_index(drop=True)
    reference = background.sample(n=min(background_size, len(background)), random_state=random_state)
    transformed = np.asarray(preprocessor.transform(sample), dtype=float)
    transformed_background = np.asarray(preprocessor.transform(reference), dtype=float)
    explainer, output, values, base, model_output = _explain_transformed(
        estimator, transformed, transformed_background
    )
    base_values = np.asarray(base, dtype=float).reshape(-1)
    groups = feature_groups(preprocessor)
    return ShapReport(
        explainer=explainer,
        output=output,
        features=list(groups),
        values=aggregate_by_feature(np.asarray(values, dtype=float), groups),
        base_value=float(base_values[0]),
        data=sample[list(groups)],
        model_output=np.asarray(model_output, dtype=float),
        background_size=len(reference),
    )
