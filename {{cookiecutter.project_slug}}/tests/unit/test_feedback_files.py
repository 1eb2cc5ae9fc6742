"""Labels coming back and the feedback directory: parsing, checking, the files training reads, the split."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import DataConfig, ModelConfig
from {{ cookiecutter.package_name }}.errors import DataValidationError
from {{ cookiecutter.package_name }}.pipeline.data import load_dataset
from {{ cookiecutter.package_name }}.pipeline.feedback import (
    FeedbackError,
    check_labels,
    feedback_frame,
    labelled_in_directory,
    parse_label_csv,
    parse_label_studio_export,
    training_split,
    write_feedback,
)
from {{ cookiecutter.package_name }}.pipeline.training import split_dataset

pytestmark = pytest.mark.unit

CLASSES = ("no", "yes")
FEATURES = ["age", "city"]
HEADER = "age,city,label"
ROWS = [
    f"{20 + index},{'Paris' if index % 3 else 'Lyon'},{'yes' if index % 2 else 'no'}" for index in range(24)
]


def choice(label: str) -> dict:
    return {"from_name": "label", "to_name": "row", "type": "choices", "value": {"choices": [label]}}


def task(request_id: str, row, *annotations: dict) -> dict:
    return {
        "id": 1,
        "data": {"request_id": request_id, "row": row, "age": 30},
        "annotations": list(annotations),
    }


def test_a_label_studio_export_yields_one_label_per_labelled_task() -> None:
    text = json.dumps(
        [
            task("a", 0, {"result": [choice("yes")]}),
            task("b", 1, {"was_cancelled": True, "result": [choice("no")]}, {"result": [choice("yes")]}),
            task("c", 0),  # nobody labelled it
            task("d", 0, {"was_cancelled": True, "result": [choice("no")]}),
        ]
    )
    parsed = parse_label_studio_export(text)
    assert [(entry.where, entry.request_id, entry.row, entry.label) for entry in parsed.entries] == [
        ("task 0", "a", 0, "yes"),
        ("task 1", "b", 1, "yes"),
    ]
    assert parsed.unlabelled == 2 and parsed.problems == []


def test_disagreeing_annotations_and_a_missing_key_are_problems_naming_the_task() -> None:
    text = json.dumps(
        [
            task("a", 0, {"result": [choice("yes")]}, {"result": [choice("no")]}),
            {"data": {"age": 30}, "annotations": [{"result": [choice("yes")]}]},
            task("c", "first", {"result": [choice("yes")]}),
        ]
    )
    problems = parse_label_studio_export(text).problems
    assert problems[0].startswith("task 0: the annotations disagree (no, yes)")
    assert problems[1].startswith("task 1: expected data.request_id and data.row")
    assert problems[2] == "task 2: data.row 'first' is not a row number"


@pytest.mark.parametrize("text", ["{", '{"tasks": []}'])
def test_a_file_that_is_not_a_task_list_is_refused(text: str) -> None:
    with pytest.raises(FeedbackError, match="Label Studio's JSON export"):
        parse_label_studio_export(text)


def test_a_csv_row_defaults_to_zero_and_extra_columns_are_ignored() -> None:
    parsed = parse_label_csv("request_id,label,score\na,yes,0.4\nb,,0.5\n")
    assert [(entry.where, entry.request_id, entry.row, entry.label) for entry in parsed.entries] == [
        ("line 2", "a", 0, "yes")
    ]
    assert parsed.unlabelled == 1


def test_a_csv_without_request_id_or_label_is_refused() -> None:
    with pytest.raises(FeedbackError, match="lacks request_id, label"):
        parse_label_csv("id,value\na,yes\n")


def logged(request_id: str, row: int = 0) -> dict:
    return {"request_id": request_id, "row": row, "features": {"age": 33, "city": "Lyon"}, "score": 0.4}


def test_every_refused_entry_is_named_in_one_message() -> None:
    parsed = parse_label_csv("request_id,label,row\na,yes,0\nzz,yes,0\na,no,0\nb,maybe,0\nc,no,0\n")
    answered = {("a", 0): logged("a"), ("b", 0): logged("b"), ("c", 0): logged("c")}
    with pytest.raises(FeedbackError) as raised:
        check_labels(parsed, answered, CLASSES, {("c", 0): "feedback store"}, FEATURES)
    message = str(raised.value)
    assert message.startswith("4 problem(s), nothing imported:")
    assert "line 3: unknown request zz row 0" in message
    assert "line 4: request a row 0 is labelled twice (first at line 2)" in message
    assert "line 5: label 'maybe' is not one of the target's classes 'no', 'yes'" in message
    assert "line 6: request c row 0 is already labelled (feedback store)" in message


def test_accepted_labels_come_with_their_logged_record() -> None:
    parsed = parse_label_csv("request_id,label\na,yes\n")
    ((entry, record),) = check_labels(parsed, {("a", 0): logged("a")}, CLASSES, {}, FEATURES)
    assert entry.label == "yes" and record["features"]["city"] == "Lyon"


def data_config(**changes) -> DataConfig:
    settings = {
        "name": "toy",
        "path": "toy.csv",
        "target": "label",
        "positive_label": "yes",
        "numeric_features": ["age"],
        "categorical_features": ["city"],
        "sensitive_features": ["city"],
    }
    return DataConfig(**{**settings, **changes})


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "toy.csv"
    data.write_text("\n".join([HEADER, *ROWS]) + "\n")
    return data, tmp_path / "feedback"


def import_rows(directory: Path, rows: list[tuple[str, int, int, str, str]]) -> dict:
    """Write feedback the way `feedback import` does: (request_id, row, age, city, label) tuples."""
    parsed = parse_label_csv("request_id,row,label\n" + "".join(f"{r[0]},{r[1]},{r[4]}\n" for r in rows))
    answered = {
        (r[0], r[1]): {"request_id": r[0], "row": r[1], "features": {"age": r[2], "city": r[3]}} for r in rows
    }
    accepted = check_labels(parsed, answered, CLASSES, labelled_in_directory(directory), FEATURES)
    return write_feedback(directory, feedback_frame(accepted, FEATURES, "label"), {"source": "test"})


def test_no_feedback_yet_leaves_the_dataset_and_its_digest_unchanged(project) -> None:
    data, directory = project
    plain = load_dataset(data_config(), data)
    with_empty = load_dataset(data_config(), data, directory)
    assert with_empty.digest == plain.digest == hashlib.sha256(data.read_bytes()).hexdigest()
    assert with_empty.rows == plain.rows and with_empty.feedback_rows == 0


def test_imported_rows_are_appended_and_change_the_digest(project) -> None:
    data, directory = project
    plain = load_dataset(data_config(), data)
    entry = import_rows(directory, [("a", 0, 50, "Nice", "yes"), ("b", 2, 61, "Lyon", "no")])
    assert entry["sha256"] == hashlib.sha256((directory / entry["file"]).read_bytes()).hexdigest()
    dataset = load_dataset(data_config(), data, directory)
    assert dataset.rows == plain.rows + 2 and dataset.feedback_rows == 2
    assert dataset.digest != plain.digest
    assert dataset.features.tail(2).to_dict("list") == {"age": [50.0, 61.0], "city": ["Nice", "Lyon"]}
    assert dataset.labels.tail(2).tolist() == [1, 0]
    assert dataset.sensitive["city"].tail(2).tolist() == ["Nice", "Lyon"]
    second = import_rows(directory, [("c", 0, 44, "Paris", "no")])
    assert second["file"] == "import-0002.csv"
    assert load_dataset(data_config(), data, directory).rows == plain.rows + 3


def test_the_feedback_rows_join_the_training_split_only(project) -> None:
    data, directory = project
    import_rows(
        directory, [("a", 0, 50, "Nice", "yes"), ("b", 0, 61, "Lyon", "no"), ("c", 0, 39, "Nice", "no")]
    )
    model = ModelConfig(family="logistic_regression", test_size=0.25, random_state=3)
    without = split_dataset(load_dataset(data_config(), data), model)
    split = training_split(load_dataset(data_config(), data, directory), model)
    pd.testing.assert_frame_equal(split.test_features, without.test_features)
    pd.testing.assert_series_equal(split.test_labels, without.test_labels)
    assert len(split.train_features) == len(without.train_features) + 3
    assert split.train_features.tail(3)["city"].tolist() == ["Nice", "Lyon", "Nice"]


def test_a_changed_feedback_file_is_refused_naming_it(project) -> None:
    data, directory = project
    entry = import_rows(directory, [("a", 0, 50, "Nice", "yes")])
    path = directory / entry["file"]
    path.write_text(path.read_text().replace("Nice", "Lyon"))
    with pytest.raises(DataValidationError, match=f"{entry['file']} changed since it was imported"):
        load_dataset(data_config(), data, directory)


def test_a_csv_the_manifest_does_not_list_is_refused(project) -> None:
    data, directory = project
    import_rows(directory, [("a", 0, 50, "Nice", "yes")])
    (directory / "extra.csv").write_text("request_id,row,age,city,label\nz,0,1,Lyon,no\n")
    with pytest.raises(
        DataValidationError, match=re.escape("extra.csv in feedback/ is not listed in manifest.jsonl")
    ):
        load_dataset(data_config(), data, directory)


def hand_written(directory: Path, text: str) -> None:
    """A feedback file recorded in the manifest with its true digest, however it was made."""
    directory.mkdir(exist_ok=True)
    (directory / "import-0001.csv").write_text(text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    (directory / "manifest.jsonl").write_text(
        json.dumps({"file": "import-0001.csv", "sha256": digest, "rows": 1})
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("request_id,row,age,label\na,0,40,yes\n", r"import-0001.csv: column\(s\) 'city' missing"),
        ("request_id,row,age,city,label,extra\na,0,40,Lyon,yes,1\n", r"unexpected column\(s\) 'extra'"),
        ("request_id,row,age,city,label\na,0,40,Lyon,maybe\n", "import-0001.csv line 2: column 'label'"),
        ("request_id,row,age,city,label\na,0,old,Lyon,yes\n", "import-0001.csv line 2 holds 'old'"),
        (
            "request_id,row,age,city,label\na,0,40,Lyon,yes\na,0,41,Lyon,no\n",
            "import-0001.csv line 3: request a row 0 is labelled again",
        ),
    ],
)
def test_a_feedback_file_that_does_not_match_the_data_names_file_line_and_column(
    project, text, message
) -> None:
    data, directory = project
    hand_written(directory, text)
    with pytest.raises(DataValidationError, match=message):
        load_dataset(data_config(), data, directory)
