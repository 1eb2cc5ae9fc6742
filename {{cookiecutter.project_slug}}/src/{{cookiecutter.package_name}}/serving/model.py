"""A served model: one registered version, its verified digest, its input schema, and how it scores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from {{ cookiecutter.package_name }}.serving.schema import InputSchema

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class Scores:
    """Per row: the positive-class probability and the predicted class label."""

    scores: np.ndarray
    labels: list[Any]


@dataclass(frozen=True)
class ServedModel:
    variant: str
    version: int
    artifact_digest: str
    pipeline: Any
    schema: InputSchema
    # The pipeline's preprocessing applied with numpy (serving.compiled), when it gave the pipeline's
    # own probabilities on probe rows at load; None: the pipeline scores a DataFrame as fitted.
    compiled: Any = None

    @property
    def classes(self) -> list[Any]:
        """The target's classes as the model knows them, as JSON values."""
        return [value.item() if hasattr(value, "item") else value for value in self.pipeline.classes_]

    def score(self, rows: list[list[Any]]) -> Scores:
        """Score rows (values in schema order) in one `predict_proba` call (compiled when verified).

        The label is the class of highest probability, which is what the estimators' `predict` returns
        (a tie goes to the first class, as `decision_function > 0` does for binary models).
        """
        if self.compiled is not None:
            probabilities = self.compiled.predict_proba(rows)
        else:
            probabilities = self.pipeline.predict_proba(pd.DataFrame(rows, columns=list(self.schema.columns)))
        classes = self.classes
        labels = [classes[index] for index in probabilities.argmax(axis=1)]
        return Scores(probabilities[:, -1], labels)
