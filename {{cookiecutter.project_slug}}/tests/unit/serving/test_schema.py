"""Request rows checked against the model's input signature: every refusal names row and column."""

from __future__ import annotations

import math

import pytest

from {{ cookiecutter.package_name }}.serving.schema import (
    InputSchema,
    InvalidInput,
    rows_from_invocation,
    rows_from_records,
)

pytestmark = pytest.mark.unit

SCHEMA = InputSchema(("age", "hours", "sex"), ("long", "double", "string"))
ROW = {"age": 40, "hours": 38.5, "sex": "Female"}


def test_rows_come_back_in_schema_order_with_missing_values_as_nan_or_none() -> None:
    rows = rows_from_records([{"sex": "Male", "hours": None, "age": 31}, ROW], SCHEMA, 10, "instances")
    assert rows[1] == [40.0, 38.5, "Female"]
    assert rows[0][0] == 31.0 and math.isnan(rows[0][1]) and rows[0][2] == "Male"


@pytest.mark.parametrize(
    ("records", "kind", "row", "column"),
    [
        ([ROW, {"age": 1, "sex": "Male"}], "missing_column", 1, "hours"),
        ([{**ROW, "extra": 1}], "unknown_column", 0, "extra"),
        ([ROW, ROW, {**ROW, "age": 40.5}], "wrong_type", 2, "age"),
        ([{**ROW, "age": True}], "wrong_type", 0, "age"),
        ([{**ROW, "sex": 1}], "wrong_type", 0, "sex"),
        ([ROW, [1, 2, 3]], "invalid_input", 1, None),
    ],
)
def test_bad_rows_are_refused_naming_row_and_column(records, kind, row, column) -> None:
    with pytest.raises(InvalidInput) as caught:
        rows_from_records(records, SCHEMA, 10, "instances")
    assert (caught.value.kind, caught.value.row, caught.value.column) == (kind, row, column)
    assert caught.value.status == 422


def test_batch_size_limits() -> None:
    with pytest.raises(InvalidInput) as empty:
        rows_from_records([], SCHEMA, 2, "instances")
    assert empty.value.kind == "empty_batch"
    with pytest.raises(InvalidInput) as large:
        rows_from_records([ROW] * 3, SCHEMA, 2, "instances")
    assert large.value.status == 413 and "max_batch_rows (2)" in large.value.message


def test_the_three_mlflow_payloads_give_the_same_rows() -> None:
    split = {"dataframe_split": {"columns": ["age", "hours", "sex"], "data": [[40, 38.5, "Female"]]}}
    records = {"dataframe_records": [ROW]}
    instances = {"instances": [ROW]}
    assert (
        rows_from_invocation(split, SCHEMA, 5)
        == rows_from_invocation(records, SCHEMA, 5)
        == rows_from_invocation(instances, SCHEMA, 5)
    )
    with pytest.raises(InvalidInput, match="exactly one of"):
        rows_from_invocation({**records, **instances}, SCHEMA, 5)
