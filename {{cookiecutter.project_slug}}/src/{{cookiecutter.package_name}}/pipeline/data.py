"""Load the project's CSV and check it against the columns declared in project.yaml.

Every failure names the column (and the config key that declares it) and the line of the file, so the
fix is obvious. Everything that can be checked before fitting is checked here: a problem found after
training would leave a registered model version without its evidence.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from {{ cookiecutter.package_name }}.config import DataConfig, ProjectConfig
from {{ cookiecutter.package_name }}.errors import DataValidationError

MIN_ROWS_PER_CLASS = 5
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
# The feedback directory (`data.feedback_path`): one CSV per import and a manifest line for each.
FEEDBACK_MANIFEST = "manifest.jsonl"
FEEDBACK_KEY_COLUMNS = ("request_id", "row")


@dataclass(frozen=True)
class FeatureSchema:
    """The feature columns the model uses, by type, and whether they were inferred from the file.

    Build pipelines and record evidence from this, not from `DataConfig`'s lists, which are empty
    when the columns are inferred.
    """

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    ignored: tuple[str, ...] = ()
    inferred: bool = False

    @classmethod
    def declared(cls, data: DataConfig) -> FeatureSchema:
        """The schema project.yaml declares (no file needed)."""
        return cls(
            numeric=tuple(data.numeric_features),
            categorical=tuple(data.categorical_features),
            ignored=tuple(data.ignore_columns),
            inferred=False,
        )

    @property
    def features(self) -> list[str]:
        """Feature columns in the order the model receives them: numeric, then categorical."""
        return [*self.numeric, *self.categorical]

    def role(self, column: str) -> str:
        """Where the column's role comes from, as error messages name it."""
        if self.inferred:
            return "inferred feature"
        return "data.numeric_features" if column in self.numeric else "data.categorical_features"

    def to_dict(self) -> dict:
        return {
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "ignored": list(self.ignored),
            "inferred": self.inferred,
        }


@dataclass(frozen=True)
class Dataset:
    """Validated features, binary labels (1 = positive class) and the sensitive columns.

    `classes` holds the target's original values as (label 0, label 1). The last `feedback_rows` rows
    come from the feedback directory (`data.feedback_path`): they join the training split only, so the
    held-out rows stay those of the data file and versions remain comparable.
    """

    name: str
    path: Path
    digest: str
    features: pd.DataFrame
    labels: pd.Series
    sensitive: pd.DataFrame
    schema: FeatureSchema
    classes: tuple[str, str]
    feedback_rows: int = 0

    @property
    def rows(self) -> int:
        return len(self.labels)

    @property
    def file_rows(self) -> int:
        """Rows read from the data file (`data.path`), without the feedback rows."""
        return self.rows - self.feedback_rows


def file_digest(path: Path) -> str:
    """sha256 of the file's bytes: the data's identity in the registry and in every report."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _delimiter_setting(delimiter: str) -> str:
    """The delimiter as it is written in project.yaml (a double-quoted YAML string)."""
    return f"data.delimiter: {json.dumps(delimiter)}"


def _describe_delimiter(delimiter: str) -> str:
    name = DELIMITER_NAMES.get(delimiter)
    return f"{name} {delimiter!r}" if name else repr(delimiter)


def read_header(path: Path, delimiter: str = ",") -> list[str]:
    """The header row's names exactly as written (pandas would rename repeated ones)."""
    if not path.is_file():
        raise DataValidationError(f"data.path: file not found: {path}")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle, delimiter=delimiter), None)
    except (UnicodeDecodeError, csv.Error) as error:
        raise DataValidationError(f"{path.name} is not a readable CSV file: {error}") from None
    if not header:
        raise DataValidationError(f"{path.name} is empty: expected a header row and data rows")
    return header


def check_header(header: list[str], delimiter: str, file_name: str) -> None:
    """Refuse a header read with the wrong delimiter, with an unnamed column or a repeated name."""
    if len(header) == 1:
        splits = {
            candidate: len(next(csv.reader([header[0]], delimiter=candidate)))
            for candidate in DELIMITER_NAMES
            if candidate != delimiter
        }
        candidate, count = max(splits.items(), key=lambda item: item[1])
        if count > 1:
            raise DataValidationError(
                f"{file_name}: the header row holds no {_describe_delimiter(delimiter)} but {count} names "
                f"separated by {_describe_delimiter(candidate)}: the file looks "
                f"{DELIMITER_NAMES[candidate]}-delimited; set {_delimiter_setting(candidate)} in project.yaml"
            )
    for position, name in enumerate(header, start=1):
        if not name.strip():
            raise DataValidationError(
                f"{file_name}: column {position} of the header has no name; expected a name for every "
                "column (a delimiter at the end of the header line adds an unnamed column)"
            )
    repeated = [name for name, count in Counter(header).items() if count > 1]
    if repeated:
        described = []
        for name in repeated:
            positions = [str(index) for index, value in enumerate(header, start=1) if value == name]
            listed = ", ".join(positions[:-1]) + " and " + positions[-1]
            described.append(f"header {name!r} appears {len(positions)} times (columns {listed})")
        raise DataValidationError(
            f"{file_name}: {'; '.join(described)}; expected each column name once: rename or remove "
            "the copies"
        )


def read_csv(path: Path, delimiter: str = ",") -> pd.DataFrame:
    """Every cell as text (or NA when empty), after checking the header row."""
    header = read_header(path, delimiter)
    check_header(header, delimiter, path.name)
    try:
        with warnings.catch_warnings():
            # Rows longer than the header: by default pandas silently makes the first column the
            # index (every value lands under the wrong name); with index_col=False it warns instead.
            # A delimiter at the end of each line (an empty surplus value) is read correctly.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(path, sep=delimiter, dtype=str, keep_default_na=True, index_col=False)
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"{path.name} is empty: expected a header row and data rows") from None
    except pd.errors.ParserWarning:
        raise DataValidationError(
            f"{path.name}: the data rows hold more values than the header's {len(header)} names; "
            "expected one value per header name (is a name missing from the header row?)"
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataValidationError(f"{path.name} is not a readable CSV file: {error}") from None
    if frame.empty:
        raise DataValidationError(f"{path.name} has a header but no data rows")
    return frame


def _quote(columns: list[str] | set[str]) -> str:
    return ", ".join(repr(column) for column in sorted(columns))


def _holds_only_numbers(raw: pd.Series) -> bool:
    present = raw.dropna()
    return not present.empty and bool(pd.to_numeric(present, errors="coerce").notna().all())


def resolve_schema(frame: pd.DataFrame, config: DataConfig, file_name: str) -> FeatureSchema:
    """The declared schema, or one inferred from the file when no feature list is declared.

    Inference takes every column but the target and `data.ignore_columns`, in file order: numeric when
    every non-empty cell is a number, categorical otherwise.
    """
    if not config.infers_features:
        return FeatureSchema.declared(config)
    excluded = {config.target, *config.ignore_columns}
    candidates = [str(column) for column in frame.columns if column not in excluded]
    if not candidates:
        raise DataValidationError(
            f"{file_name}: no column is left to use as a feature (every column is data.target or in "
            "data.ignore_columns); expected at least one feature column"
        )
    numeric = tuple(column for column in candidates if _holds_only_numbers(frame[column]))
    return FeatureSchema(
        numeric=numeric,
        categorical=tuple(column for column in candidates if column not in numeric),
        ignored=tuple(config.ignore_columns),
        inferred=True,
    )


def check_columns(frame: pd.DataFrame, config: DataConfig, schema: FeatureSchema, file_name: str) -> None:
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
    known = {config.target, *schema.features, *schema.ignored, *config.sensitive_features}
    extra = present - known
    if extra:
        raise DataValidationError(
            f"{file_name}: unexpected column(s) {_quote(extra)}; declare each in data.numeric_features, "
            "data.categorical_features or data.ignore_columns (or leave out both feature lists to infer them)"
        )


def _first_position(mask: pd.Series) -> int | None:
    return int(mask.to_numpy().argmax()) if mask.any() else None


def parse_numeric(frame: pd.DataFrame, schema: FeatureSchema, file_name: str) -> pd.DataFrame:
    """Convert the numeric columns to float64; a value that is not a finite number is an error.

    Infinity passes `pd.to_numeric` but no estimator accepts it, so it is refused here, where the
    column and the line can still be named.
    """
    role = "was inferred numeric" if schema.inferred else "is declared numeric (data.numeric_features)"
    converted = frame.copy()
    for column in schema.numeric:
        raw = frame[column]
        numbers = pd.to_numeric(raw, errors="coerce").astype("float64")
        problems = (
            (numbers.isna() & raw.notna(), "a number or an empty cell"),
            (pd.Series(np.isinf(numbers.to_numpy()), index=raw.index), "a finite number or an empty cell"),
        )
        for mask, expected in problems:
            position = _first_position(mask)
            if position is not None:
                raise DataValidationError(
                    f"column {column!r} {role} but {file_name} line {position + 2} holds "
                    f"{raw.iloc[position]!r}; expected {expected}"
                )
        converted[column] = numbers
    return converted


def check_values_present(
    features: pd.DataFrame, schema: FeatureSchema, file_name: str, sensitive: pd.DataFrame | None = None
) -> None:
    """A feature or sensitive column whose every cell is empty is refused before anything is fitted."""
    for column in schema.features:
        if features[column].isna().all():
            raise DataValidationError(
                f"column {column!r} ({schema.role(column)}) has no value in {file_name}: every cell is "
                "empty; expected at least one value (fill the column or list it in data.ignore_columns)"
            )
    for column in [] if sensitive is None else sensitive.columns:
        if sensitive[column].isna().all():
            raise DataValidationError(
                f"column {column!r} (data.sensitive_features) has no value in {file_name}: every cell is "
                "empty; expected the group of each row (fill the column or remove it from the list)"
            )


def encode_target(
    frame: pd.DataFrame, config: DataConfig, file_name: str
) -> tuple[pd.Series, tuple[str, str]]:
    """Labels as 0/1 with 1 for `data.positive_label`, and the two original classes (label 0, label 1)."""
    target = frame[config.target]
    missing = target.isna()
    if missing.any():
        line = _first_position(missing) + 2
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
    negative = next(value for value in classes if value != config.positive_label)
    return labels.rename(config.target), (negative, config.positive_label)


def load_dataset(config: DataConfig, path: Path, feedback_directory: Path | None = None) -> Dataset:
    """Read, validate and split the CSV at `path` into features, labels and sensitive columns.

    With `feedback_directory`, the feedback rows imported there are appended (see `append_feedback`).
    """
    frame = read_csv(path, config.delimiter)
    schema = resolve_schema(frame, config, path.name)
    check_columns(frame, config, schema, path.name)
    frame = parse_numeric(frame, schema, path.name)
    check_values_present(frame, schema, path.name, sensitive=frame[config.sensitive_features])
    labels, classes = encode_target(frame, config, path.name)
    dataset = Dataset(
        name=config.name,
        path=path,
        digest=file_digest(path),
        features=frame[schema.features].reset_index(drop=True),
        labels=labels.reset_index(drop=True),
        sensitive=frame[config.sensitive_features].fillna("missing").reset_index(drop=True),
        schema=schema,
        classes=classes,
    )
    return dataset if feedback_directory is None else append_feedback(dataset, config, feedback_directory)


def feedback_directory(config: ProjectConfig) -> Path | None:
    """The feedback directory training reads (`data.feedback_path`), or None when it is not set."""
    return None if config.data.feedback_path is None else config.resolve(config.data.feedback_path)


def load_training_data(config: ProjectConfig) -> Dataset:
    """The data file and, when `data.feedback_path` is set, the feedback rows imported there."""
    return load_dataset(config.data, config.data_path, feedback_directory(config))


def read_feedback_manifest(directory: Path) -> list[dict]:
    """The imports recorded in the directory's manifest, oldest first (none before the first import)."""
    manifest = directory / FEEDBACK_MANIFEST
    if not manifest.is_file():
        return []
    entries = []
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataValidationError(f"{manifest} line {number}: not a JSON object ({error})") from None
        if not isinstance(entry, dict) or not {"file", "sha256", "rows"} <= entry.keys():
            raise DataValidationError(
                f"{manifest} line {number}: expected an object with file, sha256 and rows"
            )
        entries.append(entry)
    return entries


def feedback_files(directory: Path) -> list[Path]:
    """The manifest's files, each checked to be present and unchanged since it was imported.

    A CSV in the directory that the manifest does not list is refused: training would otherwise
    depend on a file whose origin nobody recorded.
    """
    entries = read_feedback_manifest(directory)
    listed = {entry["file"] for entry in entries}
    strays = sorted(path.name for path in directory.glob("*.csv") if path.name not in listed)
    if strays:
        raise DataValidationError(
            f"data.feedback_path: {', '.join(strays)} in {directory.name}/ is not listed in "
            f"{FEEDBACK_MANIFEST}; add feedback with `feedback import` (which records it) or remove the file"
        )
    paths = []
    for number, entry in enumerate(entries, start=1):
        path = directory / entry["file"]
        if not path.is_file():
            raise DataValidationError(
                f"data.feedback_path: {entry['file']} (line {number} of {FEEDBACK_MANIFEST}) is missing"
            )
        actual = file_digest(path)
        if actual != entry["sha256"]:
            raise DataValidationError(
                f"data.feedback_path: {entry['file']} changed since it was imported (sha256 {actual[:12]}, "
                f"{FEEDBACK_MANIFEST} line {number} records {str(entry['sha256'])[:12]}); feedback files "
                "are append-only: import corrections as a new file"
            )
        paths.append(path)
    return paths


def read_feedback_file(
    path: Path, config: DataConfig, schema: FeatureSchema, classes: tuple[str, str]
) -> pd.DataFrame:
    """One feedback CSV checked against the training data: same feature columns, a known class per row."""
    frame = read_csv(path, ",")
    expected = [*FEEDBACK_KEY_COLUMNS, *schema.features, config.target]
    missing = [column for column in expected if column not in frame.columns]
    if missing:
        raise DataValidationError(f"{path.name}: column(s) {_quote(missing)} missing; expected {expected}")
    extra = [column for column in frame.columns if column not in expected]
    if extra:
        raise DataValidationError(
            f"{path.name}: unexpected column(s) {_quote(extra)}; a feedback file holds {expected}"
        )
    frame = parse_numeric(frame, schema, path.name)
    target = frame[config.target].str.strip()
    unknown = target.isna() | ~target.isin(classes)
    position = _first_position(unknown)
    if position is not None:
        raise DataValidationError(
            f"{path.name} line {position + 2}: column {config.target!r} (data.target) holds "
            f"{frame[config.target].iloc[position]!r}; expected one of the target's classes "
            f"{_quote(set(classes))}"
        )
    return frame


def append_feedback(dataset: Dataset, config: DataConfig, directory: Path) -> Dataset:
    """The dataset with the feedback rows appended; its digest then covers every feedback file.

    No feedback yet (no directory, or an empty manifest) leaves the dataset and its digest unchanged.
    """
    if not directory.is_dir():
        return dataset
    paths = feedback_files(directory)
    if not paths:
        return dataset
    frames = [read_feedback_file(path, config, dataset.schema, dataset.classes) for path in paths]
    seen: dict[tuple[str, str], str] = {}
    for path, frame in zip(paths, frames, strict=True):
        for line, key in enumerate(zip(frame["request_id"], frame["row"], strict=True), start=2):
            if key in seen:
                raise DataValidationError(
                    f"{path.name} line {line}: request {key[0]} row {key[1]} is labelled again (first in "
                    f"{seen[key]}); expected one label per logged row"
                )
            seen[key] = path.name
    feedback = pd.concat(frames, ignore_index=True)
    labels = (feedback[config.target].str.strip() == config.positive_label).astype("int64")
    # A sensitive column that is not a model input was never logged: its group is unknown.
    sensitive = pd.DataFrame(
        {
            column: feedback[column] if column in feedback.columns else pd.Series(pd.NA, index=feedback.index)
            for column in config.sensitive_features
        }
    ).astype(object)
    digest = hashlib.sha256(
        json.dumps({"data": dataset.digest, "feedback": [file_digest(path) for path in paths]}).encode()
    ).hexdigest()
    return Dataset(
        name=dataset.name,
        path=dataset.path,
        digest=digest,
        features=pd.concat([dataset.features, feedback[dataset.schema.features]], ignore_index=True),
        labels=pd.concat([dataset.labels, labels.rename(dataset.labels.name)], ignore_index=True),
        sensitive=pd.concat([dataset.sensitive, sensitive.fillna("missing")], ignore_index=True).reset_index(
            drop=True
        ),
        schema=dataset.schema,
        classes=dataset.classes,
        feedback_rows=len(feedback),
    )


def rows_needed_per_class(test_size: float) -> int:
    """Rows of each class that give both the training and the held-out set at least one of them."""
    smaller_share = min(test_size, 1 - test_size)
    return max(MIN_ROWS_PER_CLASS, math.ceil(round(1 / smaller_share, 9)))


def validate_for_training(data: DataConfig, dataset: Dataset, *, test_size: float) -> None:
    """Everything about the data that would make fitting or evaluation fail, checked before either.

    `load_dataset` already refuses most problems; this repeats the checks that concern the loaded
    `Dataset` (which may come from elsewhere) and adds the one that needs `model.test_size`.
    """
    file_name = dataset.path.name
    for column in data.sensitive_features:
        if column not in dataset.sensitive.columns:
            raise DataValidationError(
                f"data.sensitive_features: {column!r} is not a column of the data loaded from {file_name} "
                f"(columns: {_quote({*dataset.features.columns, *dataset.sensitive.columns})})"
            )
    if not dataset.schema.features:
        raise DataValidationError(f"{file_name}: no feature column; expected at least one")
    check_values_present(dataset.features, dataset.schema, file_name)
    counts = dataset.labels.value_counts()
    target = dataset.labels.name
    present = sorted(int(label) for label in counts.index)
    if present != [0, 1]:
        found = ", ".join(repr(dataset.classes[label]) for label in present) or "none"
        raise DataValidationError(
            f"column {target!r} (data.target) must hold both classes {_quote(set(dataset.classes))}; "
            f"found {found}"
        )
    needed = rows_needed_per_class(test_size)
    for label in (0, 1):
        if counts[label] < needed:
            raise DataValidationError(
                f"column {target!r} (data.target): class {dataset.classes[label]!r} has only "
                f"{int(counts[label])} row(s); with model.test_size {test_size} the training and held-out "
                f"sets each need some, so expected at least {needed} rows of each class (add rows or "
                "change model.test_size)"
            )


def inferred_schema_lines(dataset: Dataset) -> list[str]:
    """What to print when the feature schema was inferred (nothing when project.yaml declares it)."""
    schema = dataset.schema
    if not schema.inferred:
        return []

    def listed(columns) -> str:
        return ", ".join(columns) if columns else "(none)"

    lines = [
        f"Feature schema inferred from {dataset.path.name} (declare data.numeric_features and "
        "data.categorical_features in project.yaml to change it):",
        f"  numeric ({len(schema.numeric)}): {listed(schema.numeric)}",
        f"  categorical ({len(schema.categorical)}): {listed(schema.categorical)}",
    ]
    if schema.ignored:
        lines.append(f"  not used (data.ignore_columns): {listed(schema.ignored)}")
    inputs = [column for column in dataset.sensitive.columns if column in schema.features]
    if inputs:
        lines.append(
            f"  sensitive features that are model inputs: {listed(inputs)} (list one in "
            "data.ignore_columns to audit it without using it)"
        )
    for column in schema.categorical:
        present = dataset.features[column].dropna()
        if len(present) > 1 and present.nunique() == len(present):
            lines.append(
                f"  note: {column!r} holds a different value on every row, like an identifier; if it "
                "does not describe the rows, add it to data.ignore_columns"
            )
    return lines
