"""The prediction log writes every appended record, rotates by size, drains on close, keeps no raw
personal data, and deletes by age (retention) and by subject (erasure) without touching anything else."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import orjson
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config.environment import PredictionLogSettings
from {{ cookiecutter.package_name }}.errors import ConfigError
from {{ cookiecutter.package_name }}.io.prediction_log import (
    DELETIONS_FILE,
    PredictionLog,
    RecordPrivacy,
    erase_rows,
    purge_chunks,
    read_prediction_log,
    record_deletion,
    record_privacy,
)

pytestmark = pytest.mark.unit


def test_close_writes_every_record_in_order_across_rotated_files(tmp_path) -> None:
    written = []
    log = PredictionLog(tmp_path, max_file_bytes=1024, on_written=written.extend)
    for number in range(500):
        log.append([{"request_id": f"r{number}", "row": 0, "score": number / 500, "features": {"age": None}}])
    log.close()
    records = read_prediction_log(tmp_path)
    assert [record["request_id"] for record in records] == [f"r{number}" for number in range(500)]
    assert len(log.files()) > 1
    assert len(written) == 500


def test_nan_features_are_written_as_null(tmp_path) -> None:
    log = PredictionLog(tmp_path)
    log.append([{"features": {"hours": float("nan")}}])
    log.close()
    assert read_prediction_log(tmp_path) == [{"features": {"hours": None}}]


KEY = b"a-test-key-not-in-git"


def personal_record(number: int, subject: str | None) -> dict:
    return {
        "request_id": f"r{number}",
        "row": 0,
        "time": f"2026-01-01T00:00:{number % 60:02d}+00:00",
        "routing_key_hash": None if subject is None else hashlib.sha256(subject.encode()).hexdigest()[:16],
        "features": {"email": f"person{number}@example.com", "age": 30 + number, "sex": "Female"},
    }


def test_hashed_personal_columns_are_keyed_hmacs_and_sensitive_features_keep_their_group(tmp_path) -> None:
    privacy = RecordPrivacy(frozenset({"email", "age"}), "hash", ("sex", "age"), KEY)
    log = PredictionLog(tmp_path, privacy=privacy)
    log.append([personal_record(1, "alice")])
    log.close()
    [record] = read_prediction_log(tmp_path)
    expected_email = hmac.new(KEY, b'email\0"person1@example.com"', hashlib.sha256).hexdigest()[:32]
    assert record["features"] == {
        "email": expected_email,
        "age": hmac.new(KEY, b"age\x0031", hashlib.sha256).hexdigest()[:32],
        "sex": "Female",
    }
    # the groups of sensitive features are what training's fairness audit groups by
    training_groups = pd.DataFrame({"sex": ["Female"], "age": [31]}).fillna("missing").astype(str)
    assert record["groups"] == training_groups.iloc[0].to_dict()
    unkeyed = hashlib.sha256(b"alice").hexdigest()[:16]
    assert (
        record["routing_key_hash"]
        == hmac.new(KEY, b"routing\0" + unkeyed.encode(), hashlib.sha256).hexdigest()[:32]
    )
    text = (tmp_path / log.files()[0].name).read_text()
    assert "person1@example.com" not in text and "alice" not in text and unkeyed not in text


def test_dropped_personal_columns_are_not_written_and_no_key_leaves_routing_hashes_unkeyed(tmp_path) -> None:
    log = PredictionLog(tmp_path, privacy=RecordPrivacy(frozenset({"email"}), "drop"))
    log.append([personal_record(2, "bob")])
    log.close()
    [record] = read_prediction_log(tmp_path)
    assert record["features"] == {"age": 32, "sex": "Female"}
    assert record["routing_key_hash"] == hashlib.sha256(b"bob").hexdigest()[:16]


def test_hashing_personal_data_without_a_key_is_refused_naming_the_variable() -> None:
    data = SimpleNamespace(personal_columns=["email"], sensitive_features=["sex"])
    with pytest.raises(ConfigError, match="TEAM_LOG_KEY"):
        record_privacy(data, PredictionLogSettings(personal_data="hash", hash_key_env="TEAM_LOG_KEY"), {})
    privacy = record_privacy(
        data, PredictionLogSettings(personal_data="hash", hash_key_env="TEAM_LOG_KEY"), {"TEAM_LOG_KEY": "k"}
    )
    assert privacy.key == b"k" and privacy.sensitive_columns == ("sex",)
    assert record_privacy(data, PredictionLogSettings(personal_data="drop"), {}).key is None


def write_chunk(directory, name: str, lines: list[dict]) -> None:
    (directory / name).write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))


def test_retention_deletes_exactly_the_chunks_whose_last_row_is_older_than_the_limit(tmp_path) -> None:
    write_chunk(
        tmp_path,
        "predictions-a.jsonl",
        [{"time": "2026-01-01T00:00:00+00:00"}, {"time": "2026-01-09T00:00:00+00:00"}],
    )
    write_chunk(
        tmp_path,
        "predictions-b.jsonl",
        [{"time": "2026-01-09T00:00:00+00:00"}, {"time": "2026-01-10T00:00:01+00:00"}],
    )
    write_chunk(tmp_path, "predictions-c.jsonl", [{"time": "2026-01-20T00:00:00+00:00"}])
    (tmp_path / DELETIONS_FILE).write_text("")
    deleted = purge_chunks(tmp_path, datetime(2026, 1, 10, tzinfo=UTC))
    assert [path.name for path in deleted] == ["predictions-a.jsonl"]
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        DELETIONS_FILE,
        "predictions-b.jsonl",
        "predictions-c.jsonl",
    ]


def test_erasure_removes_one_subjects_rows_and_leaves_every_other_byte(tmp_path) -> None:
    log = PredictionLog(tmp_path, max_file_bytes=1024)
    subjects = ["alice", "bob", None, "carol"]
    log.append([personal_record(number, subjects[number % 4]) for number in range(60)])
    log.close()
    before = {path.name: path.read_bytes() for path in log.files()}
    alice = hashlib.sha256(b"alice").hexdigest()[:16]
    erased = erase_rows(tmp_path, {alice})
    assert erased.rows == 15 and erased.request_ids == {f"r{number}" for number in range(0, 60, 4)}
    after = {path.name: path.read_bytes() for path in log.files()}
    expected = {
        name: b"".join(line for line in content.splitlines(keepends=True) if alice.encode() not in line)
        for name, content in before.items()
    }
    assert after == {name: content for name, content in expected.items() if content}
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_a_writer_whose_chunk_was_replaced_starts_a_new_one_and_loses_no_row(tmp_path) -> None:
    log = PredictionLog(tmp_path)
    log.append([personal_record(0, "alice")])
    time.sleep(0.2)
    erase_rows(tmp_path, {hashlib.sha256(b"alice").hexdigest()[:16]})  # the chunk is deleted
    log.append([personal_record(1, "bob")])
    log.close()
    assert [record["request_id"] for record in read_prediction_log(tmp_path)] == ["r1"]


def test_deletions_are_appended_with_counts_and_no_subject(tmp_path) -> None:
    record_deletion(tmp_path, "retention", "retention_days=30", {"log_chunks": 2})
    record_deletion(tmp_path, "erasure", "erasure request", {"log_rows": 3})
    entries = [orjson.loads(line) for line in (tmp_path / DELETIONS_FILE).read_bytes().splitlines()]
    assert [(entry["action"], entry["counts"]) for entry in entries] == [
        ("retention", {"log_chunks": 2}),
        ("erasure", {"log_rows": 3}),
    ]
