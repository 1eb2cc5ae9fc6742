"""/predict, /invocations, /feedback and the health and info endpoints of a direct (champion-only) service."""

from __future__ import annotations

import subprocess
import time

import numpy as np
import pandas as pd
import pytest
from serving_support import FEEDBACK_AUTH, Workspace, start_service

from {{ cookiecutter.package_name }}.io.prediction_log import read_prediction_log

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def service(workspace: Workspace, service_factory):
    return service_factory(workspace.release("direct"), {"serving": {"max_batch_rows": 50}})


def expected_scores(model, rows: list[dict]) -> np.ndarray:
    """The registered pipeline's own positive-class probabilities for the rows, computed here."""
    frame = pd.DataFrame(rows)
    return model.predict_proba(frame)[:, 1]


def test_predict_answers_the_champion_scores_labels_and_a_request_id(workspace: Workspace, service) -> None:
    rows = workspace.rows[:20]
    answer = service.post("/predict", {"instances": rows})
    assert answer.status == 200, answer.body
    document = answer.json()
    assert answer.headers["x-request-id"] == document["request_id"]
    scores = [item["score"] for item in document["predictions"]]
    np.testing.assert_allclose(scores, expected_scores(workspace.champion_model, rows), rtol=1e-9)
    labels = workspace.champion_model.predict(pd.DataFrame(rows)).tolist()
    assert [item["label"] for item in document["predictions"]] == labels
    assert {item["variant"] for item in document["predictions"]} == {"champion"}
    assert {item["model_version"] for item in document["predictions"]} == {workspace.champion}


def test_ready_and_info_name_the_served_version_and_its_verified_digest(
    workspace: Workspace, service
) -> None:
    assert service.get("/health/live").status == 200
    ready = service.get("/health/ready")
    assert ready.status == 200 and ready.json()["versions"] == {"champion": workspace.champion}
    info = service.get("/info").json()
    assert info["strategy"] == "direct"
    assert info["models"]["champion"]["artifact_digest"] == workspace.champion_digest
    assert info["environment"] == workspace.environment


@pytest.mark.parametrize(
    ("mutate", "status", "kind", "row", "column"),
    [
        (
            lambda rows: [rows[0], {k: v for k, v in rows[1].items() if k != "age"}],
            422,
            "missing_column",
            1,
            "age",
        ),
        (lambda rows: [rows[0], rows[1], {**rows[2], "colour": "red"}], 422, "unknown_column", 2, "colour"),
        (lambda rows: [{**rows[0], "age": "forty"}], 422, "wrong_type", 0, "age"),
        (lambda rows: [rows[0], {**rows[1], "sex": 3}], 422, "wrong_type", 1, "sex"),
        (lambda rows: [], 422, "empty_batch", None, None),
        (lambda rows: rows[:51], 413, "batch_too_large", None, None),
    ],
    ids=["missing-column", "unknown-column", "number-as-text", "text-as-number", "empty", "oversized"],
)
def test_bad_rows_get_a_4xx_naming_the_row_and_column(
    workspace: Workspace, service, mutate, status, kind, row, column
) -> None:
    answer = service.post("/predict", {"instances": mutate(workspace.rows)})
    assert answer.status == status, answer.body
    error = answer.json()["error"]
    assert (error["kind"], error["row"], error["column"]) == (kind, row, column)
    if column is not None:
        assert f"row {row}" in error["message"] and repr(column) in error["message"]


def test_bad_bodies_get_a_4xx_and_the_service_stays_up(workspace: Workspace, service) -> None:
    plain = service.request("POST", "/predict", b'{"instances": []}', {"Content-Type": "text/plain"})
    assert plain.status == 415 and plain.json()["error"]["kind"] == "wrong_content_type"
    broken = service.request("POST", "/predict", b'{"instances": [', {"Content-Type": "application/json"})
    assert broken.status == 400 and broken.json()["error"]["kind"] == "invalid_json"
    huge = b'{"instances": [' + b" " * 1_100_000 + b"]}"
    too_large = service.request("POST", "/predict", huge, {"Content-Type": "application/json"})
    assert too_large.status == 413 and too_large.json()["error"]["kind"] == "body_too_large"
    not_instances = service.post("/predict", {"rows": []})
    assert not_instances.status == 422
    assert service.post("/predict", {"instances": workspace.rows[:1]}).status == 200


def test_feedback_is_stored_for_known_requests_and_refused_otherwise(workspace: Workspace, service) -> None:
    first = service.post("/predict", {"instances": workspace.rows[:3]}).json()["request_id"]
    second = service.post("/predict", {"instances": workspace.rows[3:4]}).json()["request_id"]
    single = service.post("/feedback", {"request_id": second, "label": 1}, FEEDBACK_AUTH)
    assert single.status == 200 and single.json() == {"accepted": 1}
    several = service.post(
        "/feedback",
        [{"request_id": first, "label": 0, "row": 2}, {"request_id": first, "label": 1}],
        FEEDBACK_AUTH,
    )
    assert several.json() == {"accepted": 2}
    unknown = service.post("/feedback", {"request_id": "no-such-request", "label": 1}, FEEDBACK_AUTH)
    assert unknown.status == 404 and unknown.json()["error"]["column"] == "request_id"
    outside = service.post("/feedback", {"request_id": first, "label": ">50K?"}, FEEDBACK_AUTH)
    assert outside.status == 422 and outside.json()["error"]["kind"] == "invalid_label"
    samples = service.metrics()
    assert samples['feedback_received_total{variant="champion"}'] == 3


def wait_for_log_rows(directory, count: int, timeout: float = 30) -> list[dict]:
    """The prediction log's records once it holds `count` of them (the writer is a thread of its own)."""
    deadline = time.monotonic() + timeout
    records = read_prediction_log(directory)
    while len(records) < count and time.monotonic() < deadline:
        time.sleep(0.05)
        records = read_prediction_log(directory)
    return records


def test_every_answered_row_is_in_the_prediction_log(workspace: Workspace, service_factory) -> None:
    # A service of its own, so its log holds this test's rows and nothing else, whichever tests ran before.
    own = service_factory(workspace.release("direct"))
    try:
        answer = own.post("/predict", {"instances": workspace.rows[:5]}, {"X-Routing-Key": "customer-7"})
        assert answer.status == 200, answer.body
        records = wait_for_log_rows(own.log_directory, 5)
    finally:
        own.stop()
    assert {row["request_id"] for row in records} == {answer.json()["request_id"]}
    assert [row["row"] for row in records] == list(range(5))
    assert [row["features"] for row in records] == workspace.rows[:5]
    first = records[0]
    assert first["routing_key_hash"] and "customer-7" not in str(first)
    assert first["variant"] == "champion" and first["model_version"] == workspace.champion
    assert first["environment"] == workspace.environment
    assert [row["score"] for row in records] == pytest.approx(
        [item["score"] for item in answer.json()["predictions"]]
    )


def test_an_artifact_whose_digest_differs_from_the_release_is_not_served(
    workspace: Workspace, tmp_path
) -> None:
    forged = workspace.release("direct").model_copy(deep=True)
    document = forged.model_dump(by_alias=True)
    document["model"]["artifact_digest"] = "sha256:" + "0" * 64
    release = type(forged).model_validate(document)
    with pytest.raises(AssertionError, match="exited with 2") as failed:
        start_service(workspace, tmp_path / "forged", release)
    assert "refusing to serve" in str(failed.value) and "sha256:" + "0" * 64 in str(failed.value)


def git(cwd, *arguments: str) -> None:
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", *identity, *arguments], cwd=cwd, check=True, capture_output=True)


def test_serve_reads_the_release_from_the_environment_branch(workspace: Workspace, tmp_path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(remote))
    branch = tmp_path / "branch"
    git(tmp_path, "init", "--quiet", "-b", f"env/{workspace.environment}", str(branch))
    (branch / "release.yaml").write_text(workspace.release("canary", 40).to_yaml())
    git(branch, "add", "release.yaml")
    git(branch, "commit", "--quiet", "-m", "release")
    git(branch, "push", "--quiet", str(remote), f"env/{workspace.environment}")
    if not (workspace.root / ".git").exists():
        git(workspace.root, "init", "--quiet", "-b", "main")
        git(workspace.root, "remote", "add", "origin", str(remote))
    service = start_service(workspace, tmp_path / "from-branch", None)
    try:
        info = service.get("/info").json()
        assert (info["strategy"], info["challenger_weight"]) == ("canary", 40)
        assert info["models"]["challenger"]["version"] == workspace.challenger
    finally:
        service.stop()
