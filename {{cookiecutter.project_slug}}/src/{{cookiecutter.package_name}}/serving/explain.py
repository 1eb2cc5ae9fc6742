"""Per-row SHAP contributions of the champion, for `/predict` answers when `explain-predictions` is on.

The attribution itself is the evidence bundle's (`governance.explainability`): the same explainer
choice per estimator, the same mapping of one-hot columns back to the original column. What differs
is the cost model: a request explains its own rows, and the explainer is built once per model (a
TreeExplainer over the demo's boosted trees took ≈ 85 ms to build and ≈ 8 ms to explain 3 rows
here; the first use also pays shap's import, ≈ 2 s). This module, and shap with it, is imported only
when the flag is first on.

Tree ensembles are explained exactly and need no background data (the trees record how many
training rows took each branch). Linear models need a reference point, and a served model carries
no training rows: the origin of the transformed space stands in, so a contribution is coefficient times
transformed value — a number relative to its training mean (the scaler centres it), a category
relative to no category — and the base value is the intercept. The same reference serves any other
estimator (permutation explainer).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from {{ cookiecutter.package_name }}.governance.explainability import (
    LOG_ODDS_TREES,
    PROBABILITY_TREES,
    _explain_transformed,
    aggregate_by_feature,
    feature_groups,
)


@dataclass(frozen=True)
class RowExplanations:
    """Contributions per explained row; `base_value` + a row's contributions = the model's `output`."""

    explainer: str
    output: str
    base_value: float
    contributions: list[dict[str, float]]

    def summary(self) -> dict[str, Any]:
        return {"explainer": self.explainer, "output": self.output, "base_value": self.base_value}


class RowExplainer:
    """Explains rows of one fitted pipeline; built on first use, then shared by every request."""

    def __init__(self, pipeline: Any, columns: list[str]) -> None:
        self.columns = list(columns)
        self.preprocessor = pipeline.named_steps["preprocess"]
        self.estimator = pipeline.steps[-1][1]
        self.groups = feature_groups(self.preprocessor)
        self._kind = type(self.estimator).__name__
        self._tree_explainer = None
        self._lock = threading.Lock()

    @property
    def is_tree(self) -> bool:
        return self._kind in PROBABILITY_TREES or self._kind in LOG_ODDS_TREES

    def _tree(self):
        if self._tree_explainer is None:
            import shap

            self._tree_explainer = shap.TreeExplainer(self.estimator)
        return self._tree_explainer

    def explain(self, rows: list[list[Any]]) -> RowExplanations:
        """Contributions of `rows` (values in the model's column order), one dict per row."""
        frame = pd.DataFrame(rows, columns=self.columns)
        transformed = np.asarray(self.preprocessor.transform(frame), dtype=float)
        with self._lock:
            if self.is_tree:
                explanation = self._tree()(transformed, check_additivity=False)
                values, base = explanation.values, np.asarray(explanation.base_values)
                if values.ndim == 3:  # one set per class: the positive class's, as the evidence does
                    values, base = values[:, :, 1], base[:, 1]
                explainer = "tree"
                output = "probability" if self._kind in PROBABILITY_TREES else "log-odds"
            else:
                origin = np.zeros((1, transformed.shape[1]))
                explainer, output, values, base, _ = _explain_transformed(self.estimator, transformed, origin)
        per_feature = aggregate_by_feature(np.asarray(values, dtype=float), self.groups)
        features = list(self.groups)
        base_values = np.asarray(base, dtype=float).reshape(-1)
        return RowExplanations(
            explainer=explainer,
            output=output,
            base_value=float(base_values[0]),
            contributions=[
                {feature: float(value) for feature, value in zip(features, row, strict=True)}
                for row in per_feature
            ],
        )
