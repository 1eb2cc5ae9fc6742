"""Feedback rows: which logged predictions to label next, how labels come back, and how they join training.

Active learning picks the rows the champion is least sure of (uncertainty sampling: the smallest margin
`|2p - 1|`, or the largest binary entropy). They leave as Label Studio import tasks or a CSV, and come back
as a Label Studio JSON export or a CSV of `request_id,label[,row]`. Every label is checked against the
prediction log (the row must have been answered) and the target's classes before anything is written;
accepted rows become one CSV per import under the feedback directory, with a manifest line holding its
sha256, and training adds them to its training split only (`training_split`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from {{ cookiecutter.package_name }}.config import ModelConfig
from {{ cookiecutter.package_name }}.errors import ProjectError
from {{ cookiecutter.package_name }}.pipeline.data import (
    FEEDBACK_KEY_COLUMNS,
    FEEDBACK_MANIFEST,
    Dataset,
    read_feedback_manifest,
)
from {{ cookiecutter.package_name }}.pipeline.training import Split, split_dataset

Strategy = Literal["margin", "entropy"]
STRATEGIES: tuple[str, ...] = ("margin", "entropy")
# Label Studio's names for the labelling interface: a Choices tag "label" on an object tag "row".
FROM_NAME, TO_NAME = "label", "row"
Key = tuple[str, int]


class FeedbackError(ProjectError):
    """Feedback could not be exported or imported; the message lists every refused entry."""


# Uncertainty sampling -------------------------------------------------------------------------------


def uncertainty(scores: Sequence[float] | np.ndarray, strategy: Strategy) -> np.ndarray:
    """How unsure the model is of each positive-class probability: larger means less sure.

    margin: `1 - |2p - 1|` (1 at p = 0.5, 0 at 0 or 1); entropy: the binary entropy in bits.
    """
    p = np.asarray(scores, dtype="float64")
    if strategy == "margin":
        return 1.0 - np.abs(2.0 * p - 1.0)
    if strategy == "entropy":
        q = np.clip(p, 1e-12, 1 - 1e-12)
        return -(q * np.log2(q) + (1 - q) * np.log2(1 - q))
    raise FeedbackError(f"--strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")


def most_uncertain(scores: Sequence[float] | np.ndarray, strategy: Strategy, n: int) -> np.ndarray:
    """Positions of the `n` least certain scores, least certain first (ties keep log order)."""
    if n <= 0:
        raise FeedbackError(f"--n {n}: expected a positive number of rows to label")
    order = np.argsort(-uncertainty(scores, strategy), kind="stable")
    return order[:n]


def key_of(record: Mapping[str, Any]) -> Key:
    return str(record["request_id"]), int(record["row"])


def answered_rows(records: Iterable[Mapping[str, Any]], environment: str) -> dict[Key, Mapping[str, Any]]:
    """The rows the environment answered (no shadow scores, no failed requests), by (request id, row)."""
    return {
        key_of(record): record
        for record in records
        if record.get("environment") == environment
        and not record.get("shadow")
        and (record.get("status") or 200) < 500  # a failed request answered nothing
    }


def labelling_candidates(
    answered: Mapping[Key, Mapping[str, Any]], labelled: set[Key]
) -> list[Mapping[str, Any]]:
    """The champion's answered rows that have no label yet, in log order."""
    return [
        record
        for key, record in answered.items()
        if record.get("variant") == "champion" and key not in labelled
    ]


def class_name(label: Any, classes: tuple[str, str]) -> str:
    """The target class of a logged prediction (the model predicts 0 or 1, the index into `classes`)."""
    if isinstance(label, int | np.integer) and not isinstance(label, bool) and 0 <= int(label) <= 1:
        return classes[int(label)]
    return str(label)


def label_studio_task(record: Mapping[str, Any], classes: tuple[str, str]) -> dict[str, Any]:
    """One Label Studio import task with the model's prediction (score: its confidence, 0.5 to 1)."""
    score = float(record["score"])
    return {
        "data": {**record["features"], "request_id": record["request_id"], "row": record["row"]},
        "predictions": [
            {
                "model_version": str(record["model_version"]),
                "score": round(max(score, 1.0 - score), 6),
                "result": [
                    {
                        "from_name": FROM_NAME,
                        "to_name": TO_NAME,
                        "type": "choices",
                        "value": {"choices": [class_name(record["label"], classes)]},
                    }
                ],
            }
        ],
    }


def label_studio_config(classes: tuple[str, str], features: Sequence[str]) -> str:
    """A labelling interface matching the exported tasks (paste it into the project's settings)."""
    lines = [f'  <Text name="{TO_NAME}" value="request $request_id, row $row"/>']
    lines += [
        f'  <Text name="feature-{index}" value="{name}: ${name}"/>' for index, name in enumerate(features)
    ]
    choices = "".join(f'\n    <Choice value="{value}"/>' for value in classes)
    lines.append(f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single">{choices}\n  </Choices>')
    return "<View>\n" + "\n".join(lines) + "\n</View>\n"


def candidates_csv(
    records: Sequence[Mapping[str, Any]],
    features: Sequence[str],
    classes: tuple[str, str],
    strategy: Strategy,
) -> str:
    """The picked rows as CSV, an empty `label` column to fill in; `feedback import` reads it back."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["request_id", "row", "label", "predicted", "score", strategy, "model_version", *features]
    )
    values = uncertainty([record["score"] for record in records], strategy)
    for record, value in zip(records, values, strict=True):
        writer.writerow(
            [
                record["request_id"],
                record["row"],
                "",
                class_name(record["label"], classes),
                record["score"],
                round(float(value), 6),
                record["model_version"],
                *(record["features"].get(column) for column in features),
            ]
        )
    return buffer.getvalue()


# Labels coming back ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelEntry:
    """One label as read from an import file; `where` names its line or task for error messages."""

    where: str
    request_id: str
    row: int
    label: str


@dataclass(frozen=True)
class ParsedLabels:
    entries: list[LabelEntry]
    problems: list[str]
    unlabelled: int = 0


def _as_row(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def parse_label_studio_export(text: str) -> ParsedLabels:
    """The labels of a Label Studio JSON export: one choice per task, cancelled annotations skipped.

    A task nobody labelled is counted, not refused (an export of every task holds them). Annotations
    of one task that disagree are refused: the import would otherwise have to pick a winner.
    """
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as error:
        raise FeedbackError(f"not a JSON document ({error}); expected Label Studio's JSON export") from None
    if not isinstance(tasks, list):
        raise FeedbackError("expected a JSON list of tasks (Label Studio's JSON export)")
    entries, problems, unlabelled = [], [], 0
    for index, task in enumerate(tasks):
        where = f"task {index}"
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict) or "request_id" not in data or "row" not in data:
            problems.append(
                f"{where}: expected data.request_id and data.row (tasks made by `feedback export`)"
            )
            continue
        row = _as_row(data["row"])
        if row is None:
            problems.append(f"{where}: data.row {data['row']!r} is not a row number")
            continue
        choices = set()
        for annotation in task.get("annotations") or []:
            if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
                continue
            for result in annotation.get("result") or []:
                if isinstance(result, dict) and result.get("from_name") == FROM_NAME:
                    picked = (result.get("value") or {}).get("choices") or []
                    choices.update(str(choice) for choice in picked)
                    if len(picked) != 1:
                        choices.add(f"{len(picked)} choices")
        if not choices:
            unlabelled += 1
            continue
        if len(choices) > 1:
            problems.append(
                f"{where}: the annotations disagree ({', '.join(sorted(choices))}); expected one label"
            )
            continue
        entries.append(LabelEntry(where, str(data["request_id"]), row, choices.pop()))
    return ParsedLabels(entries, problems, unlabelled)


def parse_label_csv(text: str) -> ParsedLabels:
    """Labels from a CSV with `request_id` and `label` columns (and `row`, default 0); other columns are
    ignored, so the CSV of `feedback export` can be filled in and imported as it is. Empty labels are
    counted as unlabelled."""
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [column for column in ("request_id", "label") if column not in header]
    if missing:
        raise FeedbackError(
            f"the header {header} lacks {', '.join(missing)}; expected a CSV of request_id,label[,row]"
        )
    entries, problems, unlabelled = [], [], 0
    for line, record in enumerate(reader, start=2):
        where = f"line {line}"
        label = (record.get("label") or "").strip()
        request_id = (record.get("request_id") or "").strip()
        if not request_id:
            problems.append(f"{where}: no request_id")
            continue
        if not label:
            unlabelled += 1
            continue
        row = _as_row(record.get("row") or "0")
        if row is None:
            problems.append(f"{where}: row {record.get('row')!r} is not a row number")
            continue
        entries.append(LabelEntry(where, request_id, row, label))
    return ParsedLabels(entries, problems, unlabelled)


def check_labels(
    parsed: ParsedLabels,
    answered: Mapping[Key, Mapping[str, Any]],
    classes: tuple[str, str],
    labelled: Mapping[Key, str],
    features: Sequence[str],
) -> list[tuple[LabelEntry, Mapping[str, Any]]]:
    """Each entry with its logged record; refuses unknown rows, unknown classes and repeated labels.

    `labelled` maps rows already labelled to where (the feedback store, a feedback file). Every
    problem is collected, so one run names them all; any problem refuses the whole file.
    """
    problems = list(parsed.problems)
    accepted, first_seen = [], {}
    for entry in parsed.entries:
        key = (entry.request_id, entry.row)
        record = answered.get(key)
        if key in first_seen:
            problems.append(
                f"{entry.where}: request {entry.request_id} row {entry.row} is labelled twice "
                f"(first at {first_seen[key]})"
            )
            continue
        first_seen[key] = entry.where
        if record is None:
            problems.append(
                f"{entry.where}: unknown request {entry.request_id} row {entry.row} (not an answered row "
                "of this environment's prediction log)"
            )
            continue
        if entry.label not in classes:
            problems.append(
                f"{entry.where}: label {entry.label!r} is not one of the target's classes "
                f"{', '.join(repr(value) for value in classes)}"
            )
            continue
        if key in labelled:
            problems.append(
                f"{entry.where}: request {entry.request_id} row {entry.row} is already labelled "
                f"({labelled[key]})"
            )
            continue
        absent = [column for column in features if column not in record["features"]]
        if absent:
            problems.append(
                f"{entry.where}: the log of request {entry.request_id} lacks feature(s) {', '.join(absent)}"
            )
            continue
        accepted.append((entry, record))
    if problems:
        raise FeedbackError("\n  ".join([f"{len(problems)} problem(s), nothing imported:", *problems]))
    return accepted


# The feedback directory -----------------------------------------------------------------------------


def labelled_in_directory(directory: Path) -> dict[Key, str]:
    """Rows already in the feedback directory's files, with the file that holds each."""
    found: dict[Key, str] = {}
    for entry in read_feedback_manifest(directory):
        path = directory / entry["file"]
        if not path.is_file():
            continue
        with path.open(encoding="utf-8", newline="") as handle:
            for record in csv.DictReader(handle):
                row = _as_row(record.get("row"))
                if row is not None:
                    found.setdefault(
                        (str(record.get("request_id")), row), f"{directory.name}/{entry['file']}"
                    )
    return found


def feedback_frame(
    accepted: Sequence[tuple[LabelEntry, Mapping[str, Any]]],
    features: Sequence[str],
    target: str,
    withheld: Iterable[str] = (),
) -> pd.DataFrame:
    """The rows to train on: key columns, the logged features, the label under the target's name.

    `withheld` columns (personal data, which the log hashes or drops) are left empty: a hash is not
    the value the model would have seen.
    """
    withheld = set(withheld)
    rows = [
        {
            FEEDBACK_KEY_COLUMNS[0]: entry.request_id,
            FEEDBACK_KEY_COLUMNS[1]: entry.row,
            **{column: None if column in withheld else record["features"][column] for column in features},
            target: entry.label,
        }
        for entry, record in accepted
    ]
    return pd.DataFrame(rows, columns=[*FEEDBACK_KEY_COLUMNS, *features, target])


def next_feedback_file(directory: Path) -> str:
    """`import-0001.csv`, `import-0002.csv`, ...: numbered in manifest order, never reused."""
    return f"import-{len(read_feedback_manifest(directory)) + 1:04d}.csv"


def write_feedback(directory: Path, frame: pd.DataFrame, source: Mapping[str, Any]) -> dict[str, Any]:
    """Write the rows as the next import file and record it (sha256, rows, source) in the manifest.

    The file is written under a temporary name and renamed, and the manifest line is appended last,
    so an interrupted import leaves no file that training would read.
    """
    directory.mkdir(parents=True, exist_ok=True)
    name = next_feedback_file(directory)
    content = frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
    partial = directory / f".{name}.partial"
    partial.write_bytes(content)
    partial.replace(directory / name)
    entry = {
        "file": name,
        "sha256": hashlib.sha256(content).hexdigest(),
        "rows": len(frame),
        **source,
        "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with (directory / FEEDBACK_MANIFEST).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
    return entry


# Training --------------------------------------------------------------------------------------------


def training_split(dataset: Dataset, model: ModelConfig) -> Split:
    """The data file's split, with the feedback rows added to the training side only.

    The held-out rows are exactly those a version trained without feedback is evaluated on, so a
    version with feedback and the champion are compared on the same rows.
    """
    if not dataset.feedback_rows:
        return split_dataset(dataset, model)
    file_rows = dataset.file_rows
    base = replace(
        dataset,
        features=dataset.features.iloc[:file_rows],
        labels=dataset.labels.iloc[:file_rows],
        sensitive=dataset.sensitive.iloc[:file_rows],
        feedback_rows=0,
    )
    split = split_dataset(base, model)
    return replace(
        split,
        train_features=pd.concat(
            [split.train_features, dataset.features.iloc[file_rows:]], ignore_index=True
        ),
        train_labels=pd.concat([split.train_labels, dataset.labels.iloc[file_rows:]], ignore_index=True),
    )
