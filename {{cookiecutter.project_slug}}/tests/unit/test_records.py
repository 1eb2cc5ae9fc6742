"""`records purge` deletes by the environment's retention and `erase` removes one subject, both recorded."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import yaml
from fixtures import install_fixture_project
from sqlalchemy import update

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.commands.records import record_keeping
from {{ cookiecutter.package_name }}.config import load_config
from {{ cookiecutter.package_name }}.governance.rendering import render
from {{ cookiecutter.package_name }}.io.feedback import FEEDBACK, SERVED_REQUESTS, FeedbackStore, ServedRequest
from {{ cookiecutter.package_name }}.io.prediction_log import DELETIONS_FILE, read_prediction_log

pytestmark = pytest.mark.unit

KEY = "records-test-key"
NOW = datetime.now(UTC)


def keyed(subject: str) -> str:
    unkeyed = hashlib.sha256(subject.encode()).hexdigest()[:16]
    return hmac.new(KEY.encode(), b"routing\0" + unkeyed.encode(), hashlib.sha256).hexdigest()[:32]


@pytest.fixture
def project(tmp_path):
    config_file = install_fixture_project(tmp_path)
    config = load_config(config_file)
    environment = config.environments[0]
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / f"{environment}.yaml").write_text(
        yaml.safe_dump(
            {
                "serving": {
                    "retention_days": 30,
                    "prediction_log": {"directory": "logs"},
                    "feedback_database_url": "sqlite:///feedback.db",
                }
            }
        )
    )
    return tmp_path, config_file, environment


def write_chunk(directory, name: str, rows: list[tuple[str, str, datetime]]) -> None:
    """A chunk of (request id, subject, time) rows as the service writes them (keyed hashes)."""
    directory.mkdir(exist_ok=True)
    lines = [
        orjson.dumps(
            {"request_id": rid, "row": 0, "time": moment.isoformat(), "routing_key_hash": keyed(subject)}
        )
        for rid, subject, moment in rows
    ]
    (directory / name).write_bytes(b"\n".join(lines) + b"\n")


def test_purge_deletes_old_chunks_and_feedback_and_records_it(project, capsys) -> None:
    root, config_file, environment = project
    old, recent = NOW - timedelta(days=45), NOW - timedelta(days=1)
    write_chunk(root / "logs", "predictions-1.jsonl", [("r1", "alice", old)])
    write_chunk(root / "logs", "predictions-2.jsonl", [("r2", "bob", old), ("r3", "bob", recent)])
    store = FeedbackStore(f"sqlite:///{root / 'feedback.db'}")
    store.record_requests([ServedRequest(rid, environment, "champion", 1, None, 1) for rid in ("r1", "r3")])
    store.add_feedback([("r1", 0, 1), ("r3", 0, 0)])
    with store.engine.begin() as connection:
        connection.execute(
            update(SERVED_REQUESTS).where(SERVED_REQUESTS.c.request_id == "r1").values(served_at=old)
        )
        connection.execute(update(FEEDBACK).where(FEEDBACK.c.request_id == "r1").values(received_at=old))
    store.close()

    assert main(["--config", str(config_file), "records", "purge", "--env", environment]) == 0
    assert (
        "deleted 1 prediction log chunk(s), 1 served request(s) and 1 feedback label(s)"
        in capsys.readouterr().out
    )
    assert sorted(path.name for path in (root / "logs").iterdir()) == [DELETIONS_FILE, "predictions-2.jsonl"]
    store = FeedbackStore(f"sqlite:///{root / 'feedback.db'}")
    assert store.counts() == {"feedback": 1, "served_requests": 1}
    store.close()
    [entry] = [orjson.loads(line) for line in (root / "logs" / DELETIONS_FILE).read_bytes().splitlines()]
    assert entry["action"] == "retention" and "retention_days=30" in entry["rule"]
    assert entry["counts"] == {"log_chunks": 1, "feedback": 1, "served_requests": 1}


def test_erase_removes_exactly_one_subject_everywhere(project, capsys, monkeypatch) -> None:
    root, config_file, environment = project
    monkeypatch.setenv("MLOPS_LOG_HASH_KEY", KEY)
    write_chunk(
        root / "logs", "predictions-1.jsonl", [("a1", "alice", NOW), ("b1", "bob", NOW), ("a2", "alice", NOW)]
    )
    write_chunk(root / "logs", "predictions-2.jsonl", [("c1", "carol", NOW)])
    untouched = (root / "logs" / "predictions-2.jsonl").read_bytes()
    store = FeedbackStore(f"sqlite:///{root / 'feedback.db'}")
    store.record_requests(
        [ServedRequest(rid, environment, "champion", 1, None, 1) for rid in ("a1", "a2", "b1", "c1")]
    )
    store.add_feedback([("a1", 0, 1), ("a2", 0, 0), ("b1", 0, 1), ("c1", 0, 0)])
    store.close()

    assert main(["--config", str(config_file), "erase", "--env", environment, "--subject", "alice"]) == 0
    output = capsys.readouterr().out
    assert "erased 2 logged row(s) from 1 chunk(s), 2 served request(s) and 2 feedback label(s)" in output
    assert [record["request_id"] for record in read_prediction_log(root / "logs")] == ["b1", "c1"]
    assert (root / "logs" / "predictions-2.jsonl").read_bytes() == untouched
    store = FeedbackStore(f"sqlite:///{root / 'feedback.db'}")
    assert sorted(item["request_id"] for item in store.feedback()) == ["b1", "c1"]
    store.close()
    deletions = (root / "logs" / DELETIONS_FILE).read_text()
    assert "alice" not in deletions and keyed("alice") not in deletions
    assert orjson.loads(deletions)["counts"]["log_rows"] == 2


def test_erase_refuses_when_the_log_hashes_personal_data_and_the_key_is_unset(
    project, capsys, monkeypatch
) -> None:
    root, config_file, environment = project
    monkeypatch.delenv("MLOPS_LOG_HASH_KEY", raising=False)
    document = yaml.safe_load((root / "project.yaml").read_text())
    document["data"]["personal_columns"] = ["age"]
    (root / "project.yaml").write_text(yaml.safe_dump(document))
    settings_file = root / "environments" / f"{environment}.yaml"
    settings = yaml.safe_load(settings_file.read_text())
    settings["serving"]["prediction_log"]["personal_data"] = "hash"
    settings_file.write_text(yaml.safe_dump(settings))
    assert main(["--config", str(config_file), "erase", "--env", environment, "--subject", "alice"]) == 2
    assert "MLOPS_LOG_HASH_KEY" in capsys.readouterr().err


def test_the_model_card_states_what_is_recorded_for_how_long_in_each_environment(project) -> None:
    root, config_file, environment = project
    document = yaml.safe_load((root / "project.yaml").read_text())
    document["data"]["personal_columns"] = ["age", "native-country"]
    (root / "project.yaml").write_text(yaml.safe_dump(document))
    config = load_config(config_file)
    for other in config.environments[1:]:
        (root / "environments" / f"{other}.yaml").write_text(
            yaml.safe_dump({"serving": {"retention_days": 400, "prediction_log": {"personal_data": "hash"}}})
        )
    facts = record_keeping(config)
    markdown = render("model_card_records.md.j2", records=facts)
    html = render("model_card_records.html.j2", autoescape=True, records=facts)
    assert "The personal columns (age, native-country) are written as a keyed hash or not at all" in markdown
    assert f"| {environment} | dropped | 30 days | no |" in markdown
    for other in config.environments[1:]:
        assert f"| {other} | keyed hash (HMAC-SHA256) | 400 days | no |" in markdown
        assert f"<td>{other}</td><td>keyed hash (HMAC-SHA256)</td><td>400 days</td><td>no</td>" in html
    assert "erase --env ENV --subject ROUTING_KEY" in markdown
