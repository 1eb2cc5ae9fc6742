"""Split the data and fit the pipeline."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from {{ cookiecutter.package_name }}.config import ModelConfig
from {{ cookiecutter.package_name }}.errors import ConfigError
from {{ cookiecutter.package_name }}.pipeline.data import Dataset


@dataclass(frozen=True)
class Split:
    """A stratified train/test split; `test_sensitive` lines up with `test_features` row by row."""

    train_features: pd.DataFrame
    train_labels: pd.Series
    test_features: pd.DataFrame
    test_labels: pd.Series
    test_sensitive: pd.DataFrame


def split_dataset(dataset: Dataset, model: ModelConfig) -> Split:
    """Hold out `model.test_size` of the rows, stratified by label, reproducibly."""
    indices = pd.RangeIndex(dataset.rows)
    train_index, test_index = train_test_split(
        indices,
        test_size=model.test_size,
        stratify=dataset.labels,
        random_state=model.random_state,
    )
    return Split(
        train_features=dataset.features.iloc[train_index].reset_index(drop=True),
        train_labels=dataset.labels.iloc[train_index].reset_index(drop=True),
        test_features=dataset.features.iloc[test_index].reset_index(drop=True),
        test_labels=dataset.labels.iloc[test_index].reset_index(drop=True),
        test_sensitive=dataset.sensitive.iloc[test_index].reset_index(drop=True),
    )


def fit_pipeline(pipeline: Pipeline, split: Split) -> Pipeline:
    try:
        return pipeline.fit(split.train_features, split.train_labels)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"model.params: training failed with these hyperparameters: {error}") from None
