from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import DataConfig
from {{ cookiecutter.package_name }}.errors import DataValidationError
from {{ cookiecutter.package_name }}.pipeline.data import (
    inferred_schema_lines,
    load_dataset,
    validate_for_training,
)

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


def write_csv(tmp_path: Path, header: str = HEADER, rows: list[str] = ROWS, delimiter: str = ",") -> Path:
    path = tmp_path / "toy.csv"
    lines = [line.replace(",", delimiter) for line in [header, *rows]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def column_of(name: str, rows: list[str] = ROWS, header: str = HEADER) -> list[str]:
    """A column's raw cells, read with plain string splitting (independent of the loader)."""
    position = header.split(",").index(name)
    return [row.split(",")[position] for row in rows]


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


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


@pytest.mark.parametrize("cell", ["inf", "-inf", "Infinity", "-Infinity", "1e999"])
def test_infinite_value_in_numeric_column_is_located(tmp_path: Path, cell: str) -> None:
    rows = [*ROWS]
    rows[6] = f"{cell},Lyon,M,1.7,no"
    line = 1 + 6 + 1  # header, six rows before it, then this row
    with pytest.raises(
        DataValidationError,
        match=rf"column 'age' is declared numeric .* line {line} holds '{cell}'; expected a finite number",
    ):
        load_dataset(config(), write_csv(tmp_path, rows=rows))


def test_repeated_header_is_named_with_its_positions(tmp_path: Path) -> None:
    header = "age,city,sex,age,label"
    positions = [index + 1 for index, name in enumerate(header.split(",")) if name == "age"]
    with pytest.raises(
        DataValidationError,
        match=rf"header 'age' appears {len(positions)} times \(columns {positions[0]} and {positions[1]}\)",
    ):
        load_dataset(config(ignore_columns=[]), write_csv(tmp_path, header=header))


def test_header_cell_without_a_name_is_located(tmp_path: Path) -> None:
    header = "age,city,sex,,label"
    with pytest.raises(DataValidationError, match=r"column 4 of the header has no name"):
        load_dataset(config(ignore_columns=[]), write_csv(tmp_path, header=header))


def test_delimiter_at_the_end_of_each_data_line_does_not_shift_the_columns(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "trailing").mkdir()
    plain = load_dataset(config(), write_csv(tmp_path / "plain"))
    trailing = load_dataset(config(), write_csv(tmp_path / "trailing", rows=[row + "," for row in ROWS]))
    assert trailing.features.equals(plain.features)
    assert trailing.labels.equals(plain.labels)


def test_rows_with_more_values_than_the_header_are_refused(tmp_path: Path) -> None:
    rows = [row + ",surplus" for row in ROWS]
    with pytest.raises(
        DataValidationError, match=rf"more values than the header's {len(HEADER.split(','))} names"
    ):
        load_dataset(config(), write_csv(tmp_path, rows=rows))


@pytest.mark.parametrize(
    ("delimiter", "looks", "setting"),
    [(";", "semicolon", r'data\.delimiter: ";"'), ("\t", "tab", r'data\.delimiter: "\\t"')],
)
def test_file_with_another_delimiter_says_which_to_set(
    tmp_path: Path, delimiter: str, looks: str, setting: str
) -> None:
    path = write_csv(tmp_path, delimiter=delimiter)
    with pytest.raises(DataValidationError, match=rf"looks {looks}-delimited.*set {setting}"):
        load_dataset(config(), path)


def test_configured_delimiter_reads_the_same_data(tmp_path: Path) -> None:
    (tmp_path / "comma").mkdir()
    (tmp_path / "semicolon").mkdir()
    by_comma = load_dataset(config(), write_csv(tmp_path / "comma"))
    by_semicolon = load_dataset(config(delimiter=";"), write_csv(tmp_path / "semicolon", delimiter=";"))
    assert by_semicolon.features.equals(by_comma.features)
    assert by_semicolon.labels.equals(by_comma.labels)
    assert by_semicolon.sensitive.equals(by_comma.sensitive)


@pytest.mark.parametrize(("column", "role"), [("age", "numeric"), ("city", "categorical")])
def test_feature_column_without_any_value_is_named(tmp_path: Path, column: str, role: str) -> None:
    position = HEADER.split(",").index(column)
    rows = [",".join("" if i == position else cell for i, cell in enumerate(row.split(","))) for row in ROWS]
    with pytest.raises(
        DataValidationError,
        match=rf"column '{column}' \(data\.{role}_features\) has no value in toy\.csv",
    ):
        load_dataset(config(), write_csv(tmp_path, rows=rows))


def test_sensitive_column_without_any_value_is_named(tmp_path: Path) -> None:
    header = HEADER + ",group"
    rows = [row + "," for row in ROWS]
    with pytest.raises(
        DataValidationError, match=r"column 'group' \(data\.sensitive_features\) has no value"
    ):
        load_dataset(
            config(sensitive_features=["sex", "group"], ignore_columns=["weight", "group"]),
            write_csv(tmp_path, header=header, rows=rows),
        )


def test_declared_schema_is_recorded_as_not_inferred(tmp_path: Path) -> None:
    dataset = load_dataset(config(), write_csv(tmp_path))
    assert dataset.schema.to_dict() == {
        "numeric": ["age"],
        "categorical": ["city", "sex"],
        "ignored": ["weight"],
        "inferred": False,
    }
    assert inferred_schema_lines(dataset) == []


def test_omitted_feature_lists_are_inferred_from_the_file(tmp_path: Path) -> None:
    dataset = load_dataset(
        config(numeric_features=[], categorical_features=[], ignore_columns=[]), write_csv(tmp_path)
    )
    candidates = [name for name in HEADER.split(",") if name != "label"]
    numeric = [name for name in candidates if all(is_number(cell) for cell in column_of(name) if cell != "")]
    categorical = [name for name in candidates if name not in numeric]
    assert numeric == ["age", "weight"] and categorical == ["city", "sex"]  # the toy data's intent
    assert dataset.schema.to_dict() == {
        "numeric": numeric,
        "categorical": categorical,
        "ignored": [],
        "inferred": True,
    }
    assert list(dataset.features.columns) == numeric + categorical
    assert all(str(dataset.features[name].dtype) == "float64" for name in numeric)
    assert list(dataset.labels) == [1 if cell == "yes" else 0 for cell in column_of("label")]


def test_inference_leaves_out_the_target_and_ignored_columns(tmp_path: Path) -> None:
    dataset = load_dataset(config(numeric_features=[], categorical_features=[]), write_csv(tmp_path))
    assert "label" not in dataset.schema.features
    assert "weight" not in dataset.schema.features
    assert dataset.schema.ignored == ("weight",)


def test_inferred_schema_lines_list_every_column_with_its_role(tmp_path: Path) -> None:
    dataset = load_dataset(config(numeric_features=[], categorical_features=[]), write_csv(tmp_path))
    text = "\n".join(inferred_schema_lines(dataset))
    assert "inferred" in text and "data.numeric_features" in text
    assert "numeric (1): age" in text
    assert "categorical (2): city, sex" in text
    assert "weight" in text


def test_inferred_identifier_like_column_is_pointed_out(tmp_path: Path) -> None:
    header = HEADER + ",customer"
    rows = [f"{row},C{index:03d}" for index, row in enumerate(ROWS)]
    dataset = load_dataset(
        config(numeric_features=[], categorical_features=[]), write_csv(tmp_path, header=header, rows=rows)
    )
    assert "customer" in dataset.schema.categorical
    notes = [line for line in inferred_schema_lines(dataset) if "customer" in line and "identifier" in line]
    assert notes, inferred_schema_lines(dataset)


def test_inferred_empty_column_is_named(tmp_path: Path) -> None:
    header = HEADER + ",notes"
    rows = [row + "," for row in ROWS]
    with pytest.raises(DataValidationError, match=r"column 'notes' \(inferred feature\) has no value"):
        load_dataset(
            config(numeric_features=[], categorical_features=[]),
            write_csv(tmp_path, header=header, rows=rows),
        )


def test_sensitive_feature_with_a_slash_in_its_name_is_accepted(tmp_path: Path) -> None:
    header = HEADER.replace("sex", "race/ethnicity")
    settings = config(categorical_features=["city", "race/ethnicity"], sensitive_features=["race/ethnicity"])
    dataset = load_dataset(settings, write_csv(tmp_path, header=header))
    validate_for_training(settings, dataset, test_size=0.25)
    assert list(dataset.sensitive.columns) == ["race/ethnicity"]
    assert list(dataset.sensitive["race/ethnicity"]) == column_of("sex")


def test_training_needs_enough_rows_of_each_class_for_the_split(tmp_path: Path) -> None:
    dataset = load_dataset(config(), write_csv(tmp_path))
    labels = column_of("label")
    smallest_class = min(set(labels), key=labels.count)
    validate_for_training(config(), dataset, test_size=0.25)  # 5 rows a class suffice for a quarter
    with pytest.raises(
        DataValidationError,
        match=rf"class '{smallest_class}' has only {labels.count(smallest_class)} row\(s\).*"
        r"model\.test_size 0\.1.*at least 10",
    ):
        validate_for_training(config(), dataset, test_size=0.1)


def test_training_refuses_a_dataset_whose_sensitive_feature_is_not_a_column(tmp_path: Path) -> None:
    dataset = load_dataset(config(), write_csv(tmp_path))
    with pytest.raises(DataValidationError, match=r"data\.sensitive_features: 'gender' is not a column"):
        validate_for_training(config(sensitive_features=["gender"]), dataset, test_size=0.25)


def test_training_refuses_labels_of_a_single_class(tmp_path: Path) -> None:
    dataset = load_dataset(config(), write_csv(tmp_path))
    one_class = replace(dataset, labels=pd.Series([1] * dataset.rows, name="label"))
    with pytest.raises(DataValidationError, match=r"'label' \(data\.target\) must hold both classes"):
        validate_for_training(config(), one_class, test_size=0.25)


def test_training_refuses_a_feature_column_without_values(tmp_path: Path) -> None:
    dataset = load_dataset(config(), write_csv(tmp_path))
    emptied = replace(dataset, features=dataset.features.assign(city=None))
    with pytest.raises(
        DataValidationError, match=r"column 'city' \(data\.categorical_features\) has no value"
    ):
        validate_for_training(config(), emptied, test_size=0.25)
