"""The model's input columns, and the checks that turn a request body into a batch of rows.

The columns and their types come from the signature MLflow stored with the model (`MLmodel`), so the
service accepts exactly what the registered version was trained on. Every refusal names the row
index and the column, and is a 4xx: bad input never reaches the model.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

NUMERIC_TYPES = {"long", "integer", "double", "float"}
INTEGER_TYPES = {"long", "integer"}


class InvalidInput(Exception):
    """A request the service refuses; `status` is its HTTP status, `row` and `column` locate it."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 422,
        kind: str = "invalid_input",
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind
        self.row = row
        self.column = column

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"kind": self.kind, "message": self.message, "row": self.row, "column": self.column}}


@dataclass(frozen=True)
class InputSchema:
    """Column names in model order and their MLflow types (long, double, string, boolean...)."""

    columns: tuple[str, ...]
    types: tuple[str, ...]

    @classmethod
    def from_model_directory(cls, directory: Path) -> InputSchema:
        """Read the input signature from the artifact's MLmodel file."""
        document = yaml.safe_load((directory / "MLmodel").read_text(encoding="utf-8"))
        inputs = (document.get("signature") or {}).get("inputs")
        if not inputs:
            raise ValueError(f"{directory / 'MLmodel'} has no input signature: cannot validate requests")
        specs = json.loads(inputs) if isinstance(inputs, str) else inputs
        return cls(tuple(spec["name"] for spec in specs), tuple(spec["type"] for spec in specs))

    def type_of(self, column: str) -> str:
        return self.types[self.columns.index(column)]


def _check_value(value: Any, kind: str, row: int, column: str) -> Any:
    """The value as the model takes it (None and NaN mean missing); a wrong type is refused."""
    if value is None:
        return math.nan if kind in NUMERIC_TYPES else None
    if kind in NUMERIC_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(
                f"row {row}, column {column!r}: expected a number ({kind}), got {type(value).__name__} "
                f"{value!r}",
                kind="wrong_type",
                row=row,
                column=column,
            )
        if kind in INTEGER_TYPES and isinstance(value, float) and not value.is_integer():
            raise InvalidInput(
                f"row {row}, column {column!r}: expected an integer ({kind}), got {value!r}",
                kind="wrong_type",
                row=row,
                column=column,
            )
        return float(value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidInput(
                f"row {row}, column {column!r}: expected true or false, got {value!r}",
                kind="wrong_type",
                row=row,
                column=column,
            )
        return value
    if not isinstance(value, str):
        raise InvalidInput(
            f"row {row}, column {column!r}: expected a string, got {type(value).__name__} {value!r}",
            kind="wrong_type",
            row=row,
            column=column,
        )
    return value


def _check_count(count: int, max_rows: int) -> None:
    if count == 0:
        raise InvalidInput("the batch is empty: send 1 or more rows", kind="empty_batch")
    if count > max_rows:
        raise InvalidInput(
            f"the batch has {count} rows, more than serving.max_batch_rows ({max_rows})",
            status=413,
            kind="batch_too_large",
        )


def rows_from_records(records: Any, schema: InputSchema, max_rows: int, key: str) -> list[list[Any]]:
    """Rows (values in schema order) from a list of {column: value} objects."""
    if not isinstance(records, list):
        raise InvalidInput(f"{key!r} must be a list of rows, got {type(records).__name__}")
    _check_count(len(records), max_rows)
    expected = set(schema.columns)
    rows = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidInput(
                f"row {index}: expected an object of column: value, got {type(record).__name__}", row=index
            )
        unknown = [name for name in record if name not in expected]
        if unknown:
            raise InvalidInput(
                f"row {index}: unknown column {unknown[0]!r} (the model takes: {', '.join(schema.columns)})",
                kind="unknown_column",
                row=index,
                column=unknown[0],
            )
        missing = [name for name in schema.columns if name not in record]
        if missing:
            raise InvalidInput(
                f"row {index}: missing column {missing[0]!r}",
                kind="missing_column",
                row=index,
                column=missing[0],
            )
        rows.append(
            [
                _check_value(record[name], kind, index, name)
                for name, kind in zip(schema.columns, schema.types, strict=True)
            ]
        )
    return rows


def rows_from_split(document: Any, schema: InputSchema, max_rows: int) -> list[list[Any]]:
    """Rows from pandas' split orientation: {"columns": [...], "data": [[...], ...]}."""
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise InvalidInput("'dataframe_split' must be an object with 'columns' and 'data' lists")
    columns = document.get("columns")
    data = document["data"]
    if not isinstance(columns, list) or not all(isinstance(name, str) for name in columns):
        raise InvalidInput("'dataframe_split.columns' must be a list of column names")
    records = []
    for index, values in enumerate(data):
        if not isinstance(values, list) or len(values) != len(columns):
            raise InvalidInput(
                f"row {index}: expected a list of {len(columns)} values (one per column)", row=index
            )
        records.append(dict(zip(columns, values, strict=True)))
    return rows_from_records(records, schema, max_rows, "dataframe_split.data")


def rows_from_invocation(document: Any, schema: InputSchema, max_rows: int) -> list[list[Any]]:
    """Rows from an MLflow scoring request: dataframe_split, dataframe_records or instances."""
    if not isinstance(document, dict):
        raise InvalidInput(
            "the body must be a JSON object with dataframe_split, dataframe_records or instances"
        )
    keys = [key for key in ("dataframe_split", "dataframe_records", "instances") if key in document]
    if len(keys) != 1:
        raise InvalidInput(
            "give exactly one of dataframe_split, dataframe_records or instances "
            f"(got: {', '.join(sorted(document)) or 'none'})"
        )
    key = keys[0]
    if key == "dataframe_split":
        return rows_from_split(document[key], schema, max_rows)
    return rows_from_records(document[key], schema, max_rows, key)
