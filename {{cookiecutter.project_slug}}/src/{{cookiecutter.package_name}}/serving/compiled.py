"""The fitted preprocessing of the project's pipeline, applied with numpy to the rows of a request.

scikit-learn's ColumnTransformer costs about 8 ms per call on a DataFrame whatever its size (input
validation, pandas conversions), most of a single-row prediction. The service receives rows as plain
lists already checked against the signature, so for the structure `pipeline.features` builds (median
imputation and scaling of numbers; constant imputation and one-hot encoding of categories) it applies
the fitted statistics directly and hands the estimator the same matrix.

Nothing is assumed: `compile_pipeline` returns None for any other structure, and the service uses the
compiled path only after it gave exactly the pipeline's own probabilities on probe rows (every
category, missing values, unseen categories, extreme numbers). Otherwise the pipeline scores as fitted.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

UNSEEN = "\0unseen category"


@dataclass(frozen=True)
class _Numeric:
    positions: list[int]  # where the block's columns are in a request row
    fill: np.ndarray  # the imputer's statistics
    mean: np.ndarray
    scale: np.ndarray


@dataclass(frozen=True)
class _Categorical:
    positions: list[int]
    fill: Any  # the imputer's constant
    width: int  # output columns of the block
    codes: list[dict[Any, int]]  # per column: category -> output column within the block
    unknown: list[int | None]  # per column: output column of an unseen category (None: all zeros)


@dataclass(frozen=True)
class CompiledPipeline:
    """predict_proba of the pipeline, on rows of values in signature order."""

    numeric: _Numeric
    categorical: _Categorical
    estimator: Any

    def transform(self, rows: Sequence[Sequence[Any]]) -> np.ndarray:
        numeric = self.numeric
        values = np.array([[row[index] for index in numeric.positions] for row in rows], dtype=float)
        values = np.where(np.isnan(values), numeric.fill, values)
        values = (values - numeric.mean) / numeric.scale
        categorical = self.categorical
        encoded = np.zeros((len(rows), categorical.width))
        for position, codes, unknown in zip(
            categorical.positions, categorical.codes, categorical.unknown, strict=True
        ):
            for index, row in enumerate(rows):
                value = row[position]
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    value = categorical.fill
                code = codes.get(value, unknown)
                if code is not None:
                    encoded[index, code] = 1.0
        return np.hstack([values, encoded])

    def predict_proba(self, rows: Sequence[Sequence[Any]]) -> np.ndarray:
        return self.estimator.predict_proba(self.transform(rows))


def _numeric_block(transformer: Any, positions: list[int]) -> _Numeric | None:
    if not isinstance(transformer, Pipeline) or len(transformer.steps) != 2:
        return None
    (_, imputer), (_, scaler) = transformer.steps
    if not (isinstance(imputer, SimpleImputer) and type(scaler) is StandardScaler):
        return None
    missing = imputer.missing_values
    if imputer.add_indicator or not (isinstance(missing, float) and math.isnan(missing)):
        return None
    if len(imputer.statistics_) != len(positions):  # an empty column dropped
        return None
    # Copies: the compiled form never shares (or changes) the fitted estimators' arrays.
    mean = np.array(scaler.mean_, dtype=float) if scaler.with_mean else np.zeros(len(positions))
    scale = np.array(scaler.scale_, dtype=float) if scaler.with_std else np.ones(len(positions))
    return _Numeric(positions, np.array(imputer.statistics_, dtype=float), mean, scale)


def _categorical_block(transformer: Any, positions: list[int]) -> _Categorical | None:
    if not isinstance(transformer, Pipeline) or len(transformer.steps) != 2:
        return None
    (_, imputer), (_, encoder) = transformer.steps
    if not (isinstance(imputer, SimpleImputer) and type(encoder) is OneHotEncoder):
        return None
    if imputer.strategy != "constant" or imputer.add_indicator or encoder.drop is not None:
        return None
    # The encoder itself says where each known category and an unseen one go: one probe row per
    # category position (columns with fewer categories repeat their last one).
    categories = [list(column) for column in encoder.categories_]
    depth = max(len(column) for column in categories) + 1
    probe = np.empty((depth, len(categories)), dtype=object)
    for column, known in enumerate(categories):
        for row in range(depth):
            probe[row, column] = known[min(row, len(known) - 1)] if row < depth - 1 else UNSEEN
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Found unknown categories", category=UserWarning)
        output = np.asarray(encoder.transform(probe))
    widths = [len(names) for names in _split_feature_names(encoder, len(categories))]
    starts = np.cumsum([0, *widths[:-1]])
    codes, unknown = [], []
    for column, known in enumerate(categories):
        block = output[:, starts[column] : starts[column] + widths[column]]
        mapping = {}
        for row, value in enumerate(known):
            hot = np.flatnonzero(block[row])
            if len(hot) != 1:
                return None
            mapping[value] = int(starts[column] + hot[0])
        hot = np.flatnonzero(block[-1])
        codes.append(mapping)
        unknown.append(int(starts[column] + hot[0]) if len(hot) == 1 else None)
    return _Categorical(positions, imputer.fill_value, output.shape[1], codes, unknown)


def _split_feature_names(encoder: OneHotEncoder, columns: int) -> list[list[str]]:
    names = list(encoder.get_feature_names_out([f"c{index}" for index in range(columns)]))
    return [[name for name in names if name.startswith(f"c{index}_")] for index in range(columns)]


def compile_pipeline(pipeline: Any, columns: Sequence[str]) -> CompiledPipeline | None:
    """The compiled form of a fitted `preprocess` + `model` pipeline, or None when it is not one."""
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        return None
    (_, preprocessor), (_, estimator) = pipeline.steps
    if not isinstance(preprocessor, ColumnTransformer) or hasattr(estimator, "feature_names_in_"):
        return None
    if getattr(preprocessor, "sparse_output_", False):
        return None
    blocks = [item for item in preprocessor.transformers_ if item[0] != "remainder"]
    remainder = [item for item in preprocessor.transformers_ if item[0] == "remainder"]
    if [name for name, _, _ in blocks] != ["numeric", "categorical"] or any(
        transformer != "drop" for _, transformer, _ in remainder
    ):
        return None
    index = {name: position for position, name in enumerate(columns)}
    try:
        (_, numeric, numeric_columns), (_, categorical, categorical_columns) = blocks
        numeric_block = _numeric_block(numeric, [index[name] for name in numeric_columns])
        categorical_block = _categorical_block(categorical, [index[name] for name in categorical_columns])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if numeric_block is None or categorical_block is None:
        return None
    return CompiledPipeline(numeric_block, categorical_block, estimator)


def probe_rows(compiled: CompiledPipeline, columns: Sequence[str]) -> list[list[Any]]:
    """Rows that visit every category, missing values, an unseen category and extreme numbers."""
    numeric, categorical = compiled.numeric, compiled.categorical
    depth = max(len(codes) for codes in categorical.codes)
    rows = []
    for step in range(depth + 3):
        row: list[Any] = [None] * len(columns)
        for column, position in enumerate(numeric.positions):
            choices = [numeric.fill[column], math.nan, -1e6, 1e6, 0.0, numeric.mean[column] + 0.5]
            row[position] = float(choices[step % len(choices)])
        for column, position in enumerate(categorical.positions):
            known = list(categorical.codes[column])
            extras = [None, UNSEEN, math.nan]
            row[position] = (known + extras)[step % (len(known) + len(extras))]
        rows.append(row)
    return rows


def verified(pipeline: Any, columns: Sequence[str]) -> CompiledPipeline | None:
    """The compiled pipeline if it reproduces the pipeline's probabilities on probe rows."""
    compiled = compile_pipeline(pipeline, columns)
    if compiled is None:
        return None
    rows = probe_rows(compiled, columns)
    try:
        expected = pipeline.predict_proba(pd.DataFrame(rows, columns=list(columns)))
        actual = compiled.predict_proba(rows)
    except Exception:
        return None
    # Equal up to the order of floating-point sums (a forest adds its trees' votes in parallel).
    same = np.allclose(expected, actual, rtol=0, atol=1e-9) and np.array_equal(
        expected.argmax(axis=1), actual.argmax(axis=1)
    )
    return compiled if same else None
