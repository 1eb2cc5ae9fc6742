"""Load the project's CSV and check it against the columns declared in project.yaml.

Every failure names the column (and the config key that declares it) so the fix is obvious.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from {{ cookiecutter.package_name }}.config import DataConfig
from {{ cookiecutter.package_name }}.errors import DataValidationError

MIN_ROWS_PER_CLASS = 5


@dataclass(frozen=True)
class Dataset:
    """Validated features, binary labels (1 = positive class) and the sensitive columns."""

    name: str
    path: Path
    digest: str
    features: pd.DataFrame
    labels: pd.Series
    sensitive: pd.DataFrame

    @property
    def rows(self) -> int:
        return len(self.labels)


def file_digest(path: Path) -> str:
    """sha256 of the file's bytes: the data's identity in the registry and in every report."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataValidationError(f"data.path: file not found: {path}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=True)
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"{path.name} is empty: expected a header row and data rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataValidationError(f"{path.name} is not a readable CSV file: {error}") from None
    if frame.empty:
        raise DataValidationError(f"{path.name} has a header but no data rows")
    return frame


def _quote(columns: list[str] | set[str]) -> str:
    return ", ".join(repr(column) for column in sorted(columns))


def check_columns(frame: pd.DataFrame, config: DataConfig, file_name: str) -> None:
    present = set(frame.columns)
    for column in config.sensitive_features:
        if column not in present:
            raise DataValidationError(
                f"data.sensitive_features: {column!r} is not a column of {file_name} "
                f"(columns: {_quote(present)})"
            )
    if config.target not in present:
        raise DataValidationError(f"data.target: column {config.target!r} is missing from {file_name}")
    declared = {
        "data.numeric_features": config.numeric_features,
        "data.categorical_features": config.categorical_features,
        "data.ignore_columns": config.ignore_columns,
    }
    for key, columns in declared.items():
        missing = [column for column in columns if column not in present]
        if missing:
            raise DataValidationError(f"{key}: column(s) {_quote(missing)} missing from {file_name}")
    known = {config.target, *config.features, *config.ignore_columns, *config.sensitive_features}
    extra = present - known
    if extra:
        raise DataValidationError(
            f"{file_name}: unexpected column(s) {_quote(extra)}; declare each in data.numeric_features, "
            "data.categorical_features or data.ignore_columns"
        )


def parse_numeric(frame: pd.DataFrame, columns: list[str], file_name: str) -> pd.DataFrame:
    """Convert declared numeric columns to float64; a value that is not a number is an error."""
    converted = {}
    for column in columns:
        raw = frame[column]
        numbers = pd.to_numeric(raw, errors="coerce")
        bad = numbers.isna() & raw.notna()
        if bad.any():
            position = int(bad.to_numpy().argmax())
            raise DataValidationError(
                f"column {column!r} is declared numeric (data.numeric_features) but {file_name} line "
                f"{position + 2} holds {raw.iloc[position]!r}; expected a number or an empty cell"
            )
        converted[column] = numbers.astype("float64")
    return frame.assign(**converted)


def encode_target(frame: pd.DataFrame, config: DataConfig, file_name: str) -> pd.Series:
    """Labels as 0/1 with 1 for `data.positive_label`; exactly two classes, no missing label."""
    target = frame[config.target]
    missing = target.isna()
    if missing.any():
        line = int(missing.to_numpy().argmax()) + 2
        raise DataValidationError(
            f"column {config.target!r} (data.target) has {int(missing.sum())} missing value(s), "
            f"first at {file_name} line {line}: every row needs a label"
        )
    classes = sorted(target.str.strip().unique())
    if len(classes) != 2:
        raise DataValidationError(
            f"column {config.target!r} (data.target) must hold exactly two classes, found "
            f"{len(classes)}: {_quote(classes[:10])}"
        )
    if config.positive_label not in classes:
        raise DataValidationError(
            f"data.positive_label: {config.positive_label!r} is not a value of column "
            f"{config.target!r}; expected one of {_quote(classes)}"
        )
    labels = (target.str.strip() == config.positive_label).astype("int64")
    smallest = int(labels.value_counts().min())
    if smallest < MIN_ROWS_PER_CLASS:
        raise DataValidationError(
            f"column {config.target!r} (data.target): a class has only {smallest} row(s); "
            f"expected at least {MIN_ROWS_PER_CLASS} per class to train and evaluate"
        )
    return labels.rename(config.target)


def load_dataset(config: DataConfig, path: Path) -> Dataset:
    """Read, validate and split the CSV at `path` into features, labels and sensitive columns."""
    frame = read_csv(path)
    check_columns(frame, config, path.name)
    frame = parse_numeric(frame, config.numeric_features, path.name)
    labels = encode_target(frame, config, path.name)
    return Dataset(
        name=config.name,
        path=path,
        digest=file_digest(path),
        features=frame[config.features].reset_index(drop=True),
        labels=labels.reset_index(drop=True),
        sensitive=frame[config.sensitive_features].fillna("missing").reset_index(drop=True),
    )
