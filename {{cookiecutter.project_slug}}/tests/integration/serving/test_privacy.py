"""What the real service records of a person: no raw personal value, no raw routing key; erasure beside it.

project.yaml marks columns as personal data; the environment hashes them with a key from the
environment. The test sends distinctive values and scans every file the service wrote for them,
then erases one subject while the service runs and checks that exactly that subject's rows went.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import time

import orjson
import pytest
import yaml
from serving_support import Workspace, read_stderr, start_service

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.io.feedback import FeedbackStore
from {{ cookiecutter.package_name }}.io.prediction_log import DELETIONS_FILE, read_prediction_log

pytestmark = pytest.mark.integration

HASH_KEY = "privacy-test-hash-key"
FEEDBACK_TOKEN = "privacy-test-feedback-token"
PERSONAL = ["native-country", "occupation", "age"]
SUBJECTS = ["alice@example.com", "bob@example.com", "carol@example.com"]


def marker(column: str, number: int) -> str:
    return f"RAW-{column}-{number}-VALUE"


@contextlib.contextmanager
def personal_columns(workspace: Workspace, columns: list[str]):
    """project.yaml with `columns` as personal data while a service starts; restored afterwards."""
    config_file = workspace.root / "project.yaml"
    original = config_file.read_text()
    document = yaml.safe_load(original)
    document["data"]["personal_columns"] = columns
    config_file.write_text(yaml.safe_dump(document, sort_keys=False))
    try:
        yield config_file
    finally:
        config_file.write_text(original)


def hashing_settings(directory, **log_settings) -> dict:
    """Settings that hash personal data; `prediction_log` is given whole, so its directory is too."""
    log = {"directory": str(directory / "predictions"), "personal_data": "hash", **log_settings}
    return {"serving": {"prediction_log": log}}


@pytest.fixture(scope="module")
def hashed(workspace: Workspace, tmp_path_factory):
    directory = tmp_path_factory.mktemp("privacy")
    with (
        pytest.MonkeyPatch.context() as patch,
        personal_columns(workspace, PERSONAL),
    ):
        patch.setenv("MLOPS_LOG_HASH_KEY", HASH_KEY)
        patch.setenv("MLOPS_FEEDBACK_TOKEN", FEEDBACK_TOKEN)
        service = start_service(
            workspace, directory, workspace.release("direct"), hashing_settings(directory)
        )
    yield service
    service.stop()


def sent_rows(workspace: Workspace, count: int) -> list[dict]:
    """Held-out rows whose personal strings are distinctive markers and whose ages are unusual."""
    rows = []
    for number, row in enumerate(workspace.rows[:count]):
        rows.append(
            {
                **row,
                "native-country": marker("native-country", number),
                "occupation": marker("occupation", number),
                "age": 90 + number,
            }
        )
    return rows


def every_file_text(directory) -> str:
    return "".join(
        path.read_text(errors="replace") for path in sorted(directory.rglob("*")) if path.is_file()
    )


def test_the_log_holds_no_raw_personal_value_and_no_raw_routing_key(workspace: Workspace, hashed) -> None:
    rows = sent_rows(workspace, 6)
    for index, subject in enumerate(SUBJECTS):
        answer = hashed.post(
            "/predict", {"instances": rows[2 * index : 2 * index + 2]}, {"X-Routing-Key": subject}
        )
        assert answer.status == 200, answer.body
        label = {"request_id": answer.json()["request_id"], "label": 1}
        assert hashed.post("/feedback", label, {"Authorization": f"Bearer {FEEDBACK_TOKEN}"}).status == 200
    hashed.stop()
    records = read_prediction_log(hashed.log_directory)
    assert len(records) == 6
    text = every_file_text(hashed.log_directory)
    for number in range(6):
        for column in ("native-country", "occupation"):
            assert marker(column, number) not in text
    for subject in SUBJECTS:
        assert subject not in text
        assert hashlib.sha256(subject.encode()).hexdigest()[:16] not in text  # keyed, not the plain hash
    key = HASH_KEY.encode()
    for record, row in zip(records, rows, strict=True):
        for column in PERSONAL:
            sent = row[column]
            value = orjson.dumps(
                float(sent) if isinstance(sent, int) else sent
            )  # numbers are logged as doubles
            expected = hmac.new(key, column.encode() + b"\0" + value, hashlib.sha256).hexdigest()[:32]
            assert record["features"][column] == expected
        expected_groups = {
            column: "missing" if row[column] is None else str(row[column])
            for column in workspace.config.data.sensitive_features
        }
        assert record["groups"] == expected_groups
        assert record["routing_key_hash"] in {keyed_routing_hash(subject) for subject in SUBJECTS}
    database = (hashed.directory / "feedback.db").read_bytes()
    assert all(subject.encode() not in database for subject in SUBJECTS)


def test_erase_beside_the_running_service_removes_exactly_one_subject(workspace: Workspace, tmp_path) -> None:
    with pytest.MonkeyPatch.context() as patch, personal_columns(workspace, PERSONAL) as config_file:
        patch.setenv("MLOPS_LOG_HASH_KEY", HASH_KEY)
        patch.setenv("MLOPS_FEEDBACK_TOKEN", FEEDBACK_TOKEN)
        # small chunks, so the subject's rows are spread over several files among other subjects' rows
        settings = hashing_settings(tmp_path / "erasure", max_file_bytes=2048)
        service = start_service(workspace, tmp_path / "erasure", workspace.release("direct"), settings)
        try:
            rows = sent_rows(workspace, 3)
            for round_number in range(8):
                for subject in SUBJECTS:
                    answer = service.post(
                        "/predict", {"instances": rows[: 1 + round_number % 3]}, {"X-Routing-Key": subject}
                    )
                    assert answer.status == 200, answer.body
                    label = {"request_id": answer.json()["request_id"], "label": round_number % 2}
                    auth = {"Authorization": f"Bearer {FEEDBACK_TOKEN}"}
                    assert service.post("/feedback", label, auth).status == 200
            # The log is written off the request path: wait until it holds every answered row.
            answered = len(SUBJECTS) * sum(1 + round_number % 3 for round_number in range(8))
            deadline = time.monotonic() + 30
            while len(before := read_prediction_log(service.log_directory)) < answered:
                assert time.monotonic() < deadline, f"{len(before)} of {answered} rows logged after 30 s"
                time.sleep(0.05)
            erased_subject = SUBJECTS[0]
            exit_code = main(
                [
                    "--config",
                    str(config_file),
                    "erase",
                    "--env",
                    workspace.environment,
                    "--subject",
                    erased_subject,
                ]
            )
            assert exit_code == 0, read_stderr(service.directory)
            after_erasure = service.post("/predict", {"instances": rows[:1]}, {"X-Routing-Key": SUBJECTS[1]})
            assert after_erasure.status == 200
        finally:
            service.stop()
    after = read_prediction_log(service.log_directory)
    erased_hash = keyed_routing_hash(erased_subject)
    erased_ids = {record["request_id"] for record in before if record["routing_key_hash"] == erased_hash}
    assert len(erased_ids) == 8
    kept_before = [record for record in before if record["routing_key_hash"] != erased_hash]
    assert len(kept_before) < len(before)
    # every other row is still there, unchanged and in order, followed by the row answered after the erasure
    assert after[: len(kept_before)] == kept_before
    assert [record["request_id"] for record in after[len(kept_before) :]] == [
        after_erasure.json()["request_id"]
    ]
    assert all(record["routing_key_hash"] != erased_hash for record in after)

    store = FeedbackStore(f"sqlite:///{service.directory / 'feedback.db'}")
    try:
        remaining = store.feedback()
        assert remaining and not {item["request_id"] for item in remaining} & erased_ids
        assert len(remaining) == 16  # the other two subjects' labels, 8 each
        assert all(store.served(request_id) is None for request_id in erased_ids)
    finally:
        store.close()
    deletions = (service.log_directory / DELETIONS_FILE).read_text()
    assert erased_subject not in deletions and erased_hash not in deletions


def keyed_routing_hash(subject: str) -> str:
    """The routing key's hash as the log should hold it, computed here: HMAC of the plain sha256 prefix."""
    plain = hashlib.sha256(subject.encode()).hexdigest()[:16]
    return hmac.new(HASH_KEY.encode(), b"routing\0" + plain.encode(), hashlib.sha256).hexdigest()[:32]


def test_hashing_without_a_key_stops_serve_before_it_listens(workspace: Workspace, tmp_path) -> None:
    with pytest.MonkeyPatch.context() as patch, personal_columns(workspace, PERSONAL):
        patch.delenv("MLOPS_LOG_HASH_KEY", raising=False)
        patch.setenv("MLOPS_FEEDBACK_TOKEN", FEEDBACK_TOKEN)
        try:
            service = start_service(
                workspace,
                tmp_path / "no-key",
                workspace.release("direct"),
                hashing_settings(tmp_path / "no-key"),
            )
        except AssertionError as error:
            message = str(error)
        else:
            service.stop()
            pytest.fail("serve started without its hash key")
    assert "exited with 2" in message and "MLOPS_LOG_HASH_KEY" in message and "Traceback" not in message
