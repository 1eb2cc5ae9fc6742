from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.config import DataConfig
from {{ cookiecutter.package_name }}.errors import DataValidationError
from {{ cookiecutter.package_name }}.pipeline.data import load_dataset

pytestmark = pytest.mark.unit

HEADER = "age,city,sex,weight,label"
ROWS = [
    "30,Paris,F,1.5,yes",
    "41,Lyon,M,2.0,no",
    ",Paris,M,1.1,no",
    "25,,F,0.9,yes",
    "52,Lyon,F,3.2,no",
    "38,Paris,M,2.2,yes",
    "29,Lyon,M,1.7,no",
    "47,Paris,F,2.4,yes",
    "33,Nice,M,1.3,no",
    "61,Nice,F,2.9,yes",
    "45,Lyon,M,2.1,yes",
]


def config(**overrides) -> DataConfig:
    settings = {
        "name": "toy",
        "path": "toy.csv",
        "target": "label",
        "positive_label": "yes",
        "numeric_features": ["age"],
        "categorical_features": ["city", "sex"],
        "sensitive_features": ["sex"],
        "ignore_columns": ["weight"],
    }
    return DataConfig(**{**settings, **overrides})


def write_csv(tmp_path: Path, header: str = HEADER, rows: list[str] = ROWS) -> Path:
    path = tmp_path / "toy.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_valid_file_gives_binary_labels_and_numeric_features(tmp_path: Path) -> None:
    dataset = load_dataset(config(), write_csv(tmp_path))
    assert dataset.rows == len(ROWS)
    assert list(dataset.labels) == [1 if row.endswith(",yes") else 0 for row in ROWS]
    assert str(dataset.features["age"].dtype) == "float64"
    assert dataset.features["age"].isna().sum() == 1
    assert list(dataset.features.columns) == ["age", "city", "sex"]
    assert list(dataset.sensitive["sex"]) == [row.split(",")[2] for row in ROWS]


def test_digest_is_the_sha256_of_the_file_bytes(tmp_path: Path) -> None:
    path = write_csv(tmp_path)
    assert load_dataset(config(), path).digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_missing_feature_column_is_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path)
    with pytest.raises(
        DataValidationError, match=r"data\.categorical_features: column\(s\) 'region' missing"
    ):
        load_dataset(config(categorical_features=["city", "sex", "region"]), path)


def test_extra_column_is_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path)
    with pytest.raises(DataValidationError, match=r"unexpected column\(s\) 'weight'"):
        load_dataset(config(ignore_columns=[]), path)


def test_non_numeric_value_in_numeric_column_is_located(tmp_path: Path) -> None:
    rows = [*ROWS]
    rows[4] = "fifty,Lyon,F,3.2,no"
    with pytest.raises(
        DataValidationError, match=r"column 'age' is declared numeric .* line 6 holds 'fifty'"
    ):
        load_dataset(config(), write_csv(tmp_path, rows=rows))


def test_target_with_three_classes_is_rejected(tmp_path: Path) -> None:
    rows = [*ROWS]
    rows[0] = "30,Paris,F,1.5,maybe"
    with pytest.raises(
        DataValidationError, match=r"'label' \(data\.target\) must hold exactly two classes, found 3"
    ):
        load_dataset(config(), write_csv(tmp_path, rows=rows))


def test_missing_target_value_is_located(tmp_path: Path) -> None:
    rows = [*ROWS]
    rows[2] = ",Paris,M,1.1,"
    with pytest.raises(
        DataValidationError, match=r"'label' \(data\.target\) has 1 missing value\(s\), first at .* line 4"
    ):
        load_dataset(config(), write_csv(tmp_path, rows=rows))


def test_positive_label_must_be_a_target_value(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"data\.positive_label: 'true' is not a value"):
        load_dataset(config(positive_label="true"), write_csv(tmp_path))


def test_sensitive_feature_that_is_not_a_column_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"data\.sensitive_features: 'gender' is not a column"):
        load_dataset(config(sensitive_features=["gender"]), write_csv(tmp_path))


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "toy.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"toy\.csv is empty"):
        load_dataset(config(), path)


def test_header_without_rows_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="no data rows"):
        load_dataset(config(), write_csv(tmp_path, rows=[]))


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"data\.path: file not found"):
        load_dataset(config(), tmp_path / "absent.csv")
