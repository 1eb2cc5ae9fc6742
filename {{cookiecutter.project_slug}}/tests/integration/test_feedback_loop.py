"""The Label Studio round trip: export the most uncertain logged rows, label them, import, train on them.

The rows are answered by the real service (its application under a real uvicorn on 127.0.0.1, a
trained champion and a shadow challenger loaded from the registry as `serve` loads them), which writes
the prediction log and the feedback store; the first labels come back through its /feedback. Picked rows
are checked against an independent computation of the sampling rule; every refused input leaves the
feedback directory and the store byte for byte as they were.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
import yaml
from fixtures import install_fixture_project
from scipy.stats import entropy
from support.github_api import FakeGitHub
from support.http_client import post_feedback, post_many
from support.in_thread_service import registered_release, running_service
from support.workflow_runner import WorkflowRunner, actions_environment

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.commands.training import train
from {{ cookiecutter.package_name }}.config import load_config
from {{ cookiecutter.package_name }}.io.feedback import FeedbackStore, ServedRequest
from {{ cookiecutter.package_name }}.io.prediction_log import PredictionLog, read_prediction_log
from {{ cookiecutter.package_name }}.pipeline.data import load_dataset, read_feedback_manifest
from {{ cookiecutter.package_name }}.pipeline.feedback import labelled_in_directory
from {{ cookiecutter.package_name }}.pipeline.training import split_dataset

pytestmark = pytest.mark.integration

LOGGED_ROWS = 120
REQUEST_ROWS = 3  # rows per logged request: labels address (request_id, row)
ALREADY_LABELLED = 6
FEEDBACK_TOKEN = "feedback-loop-token"
STRUCTURAL = {"not json", "not a task list", "csv without label", "wrong extension", "missing file"}


def snapshot(*paths: Path) -> dict[str, bytes]:
    """Every file under the paths, with its bytes: what "writes nothing" is checked against."""
    files = {}
    for path in paths:
        candidates = [path] if path.is_file() else sorted(path.rglob("*")) if path.exists() else []
        files.update({str(item): item.read_bytes() for item in candidates if item.is_file()})
    return files


def logged_record(request_id, row, environment, version, features, score) -> dict:
    """A record as the service writes it for a row the champion answered."""
    return {
        "request_id": request_id,
        "row": row,
        "time": "2026-01-01T00:00:00+00:00",
        "environment": environment,
        "endpoint": "predict",
        "variant": "champion",
        "model_version": version,
        "shadow": False,
        "experiment_id": None,
        "routing_key_hash": None,
        "features": features,
        "score": score,
        "label": int(score >= 0.5),
    }


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory):
    """A project with `data.feedback_path` set, a trained champion and a log of its answers."""
    root = tmp_path_factory.mktemp("feedback-loop")
    config_file = install_fixture_project(root)
    document = yaml.safe_load(config_file.read_text())
    document["data"]["feedback_path"] = "data/feedback"
    config_file.write_text(yaml.safe_dump(document, sort_keys=False))
    config = load_config(config_file)
    environment = config.environments[-1]
    (root / "environments").mkdir(exist_ok=True)
    serving = {
        "prediction_log": {"directory": "logs/predictions"},
        "feedback_database_url": "sqlite:///feedback.db",
    }
    (root / "environments" / f"{environment}.yaml").write_text(yaml.safe_dump({"serving": serving}))
    trained = train(config)
    version = trained.registered.version
    # A second version to run in the shadow: it scores every row, and is never a labelling candidate.
    shadow = train(config, force=True).registered.version
    dataset = load_dataset(config.data, config.data_path)
    # Rows of the data file stand for live traffic; their true class is what a labeller would pick.
    rows = orjson.loads(dataset.features.iloc[:LOGGED_ROWS].to_json(orient="records"))
    truth = [dataset.classes[label] for label in dataset.labels.iloc[:LOGGED_ROWS]]
    release = registered_release(config, environment, version, shadow, strategy="shadow")
    with running_service(config, release, {"MLOPS_FEEDBACK_TOKEN": FEEDBACK_TOKEN}) as port:
        answers = post_many(
            port,
            [
                ("/predict", {"instances": rows[start : start + REQUEST_ROWS]}, {})
                for start in range(0, LOGGED_ROWS, REQUEST_ROWS)
            ],
        )
        keys = [(answer.json()["request_id"], row) for answer in answers for row in range(REQUEST_ROWS)]
        truth_by_key = dict(zip(keys, truth, strict=True))
        labelled = [
            (request_id, row, int(truth_by_key[(request_id, row)] == config.data.positive_label))
            for request_id, row in keys[:ALREADY_LABELLED]
        ]
        post_feedback(
            port,
            [{"request_id": key, "row": row, "label": label} for key, row, label in labelled],
            FEEDBACK_TOKEN,
        )
    records = read_prediction_log(root / "logs" / "predictions")
    assert sum(record["shadow"] for record in records) == LOGGED_ROWS, "the shadow scored every row"
    answered = sorted(
        (record for record in records if not record["shadow"]), key=lambda record: keys.index(key_of(record))
    )
    assert [key_of(record) for record in answered] == keys
    return {
        "root": root,
        "config_file": config_file,
        "config": config,
        "environment": environment,
        "records": answered,
        "truth": truth_by_key,
        "labelled": {(request_id, row) for request_id, row, _ in labelled},
        "trained": trained,
    }


def key_of(record) -> tuple[str, int]:
    return record["request_id"], int(record["row"])


def run(loop, *arguments: str) -> int:
    return main(["--config", str(loop["config_file"]), "feedback", *arguments])


def unlabelled(loop) -> list[dict]:
    return [record for record in loop["records"] if key_of(record) not in loop["labelled"]]


def most_certain(loop) -> list[dict]:
    """Unlabelled rows, most certain first: never among the exported ones, so free for import cases."""
    return sorted(unlabelled(loop), key=lambda record: -abs(2 * record["score"] - 1))


def state(loop) -> dict[str, bytes]:
    return snapshot(loop["root"] / "data", loop["root"] / "feedback.db")


def test_margin_export_picks_the_rows_closest_to_one_half(loop, tmp_path: Path) -> None:
    out = tmp_path / "tasks.json"
    arguments = ["--env", loop["environment"], "--strategy", "margin", "--n", "10", "--out", str(out)]
    assert run(loop, "export", *arguments) == 0
    tasks = json.loads(out.read_text())
    expected = sorted(unlabelled(loop), key=lambda record: abs(2 * record["score"] - 1))[:10]
    assert [(task["data"]["request_id"], task["data"]["row"]) for task in tasks] == [
        key_of(record) for record in expected
    ]
    for task, record in zip(tasks, expected, strict=True):
        prediction = task["predictions"][0]
        assert prediction["model_version"] == str(loop["trained"].registered.version)
        assert prediction["score"] == pytest.approx(max(record["score"], 1 - record["score"]), abs=1e-6)
        choice = prediction["result"][0]
        assert (choice["from_name"], choice["to_name"], choice["type"]) == ("label", "row", "choices")
        assert choice["value"]["choices"] == [loop["trained"].dataset.classes[int(record["score"] >= 0.5)]]
        assert {key: task["data"][key] for key in record["features"]} == record["features"]


def test_entropy_export_picks_the_rows_of_largest_entropy_as_csv(loop, tmp_path: Path) -> None:
    out = tmp_path / "rows.csv"
    arguments = ["--env", loop["environment"], "--strategy", "entropy", "--n", "7", "--format", "csv"]
    assert run(loop, "export", *arguments, "--out", str(out)) == 0
    frame = pd.read_csv(out, dtype={"request_id": str})
    candidates = unlabelled(loop)
    information = [entropy([record["score"], 1 - record["score"]], base=2) for record in candidates]
    expected = [candidates[index] for index in np.argsort(information, kind="stable")[::-1][:7]]
    picked = sorted(zip(frame["request_id"], frame["row"], strict=True))
    assert picked == sorted(key_of(record) for record in expected)
    assert frame["label"].isna().all()


def annotated(task: dict, index: int, label: str | None) -> dict:
    """A task as Label Studio exports it, with one annotation choosing `label` (none when None)."""
    result = [{"from_name": "label", "to_name": "row", "type": "choices", "value": {"choices": [label]}}]
    annotations = [] if label is None else [{"id": index + 1, "was_cancelled": False, "result": result}]
    return {"id": 100 + index, **task, "annotations": annotations}


def test_round_trip_label_studio_import_then_training_includes_the_rows(loop, tmp_path: Path) -> None:
    root, config = loop["root"], loop["config"]
    tasks_file = tmp_path / "tasks.json"
    assert run(loop, "export", "--env", loop["environment"], "--n", "12", "--out", str(tasks_file)) == 0
    tasks = json.loads(tasks_file.read_text())
    accepted = len(tasks) - 2  # the labeller left the last two tasks alone
    exported = [
        annotated(task, index, loop["truth"][(task["data"]["request_id"], task["data"]["row"])])
        if index < accepted
        else annotated(task, index, None)
        for index, task in enumerate(tasks)
    ]
    export_file = tmp_path / "project-1-at-2026.json"
    export_file.write_text(json.dumps(exported))
    before = train(config)
    assert run(loop, "import", str(export_file), "--env", loop["environment"]) == 0

    directory = root / "data" / "feedback"
    manifest = [json.loads(line) for line in (directory / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == 1 and manifest[0]["rows"] == accepted
    written = directory / manifest[0]["file"]
    assert manifest[0]["sha256"] == hashlib.sha256(written.read_bytes()).hexdigest()
    frame = pd.read_csv(written, dtype={"request_id": str})
    expected = {(task["data"]["request_id"], task["data"]["row"]) for task in tasks[:accepted]}
    assert set(zip(frame["request_id"], frame["row"], strict=True)) == expected
    for _, line in frame.iterrows():
        assert line[config.data.target] == loop["truth"][(line["request_id"], line["row"])]
    store = FeedbackStore(f"sqlite:///{root / 'feedback.db'}")
    stored = {(item["request_id"], item["row"]) for item in store.feedback()}
    store.close()
    assert expected <= stored

    after = train(load_config(loop["config_file"]))
    assert after.dataset.rows == before.dataset.rows + accepted
    assert after.dataset.digest != before.dataset.digest
    assert after.registered.version != before.registered.version
    assert after.registered.tags["data_digest"] == after.dataset.digest
    assert after.registered.tags["data_rows"] == str(before.dataset.rows + accepted)
    # The held-out rows are the data file's, untouched: the versions are compared on the same rows.
    held_out = split_dataset(load_dataset(config.data, config.data_path), config.model)
    pd.testing.assert_frame_equal(after.split.test_features, held_out.test_features)
    assert len(after.split.train_labels) == len(held_out.train_labels) + accepted

    again = tmp_path / "again.json"
    assert run(loop, "export", "--env", loop["environment"], "--n", "500", "--out", str(again)) == 0
    remaining = {(task["data"]["request_id"], task["data"]["row"]) for task in json.loads(again.read_text())}
    assert not remaining & expected and not remaining & loop["labelled"]


def label_studio_file(path: Path, entries: list[tuple[str, int, str]]) -> Path:
    tasks = [
        annotated({"data": {"request_id": request_id, "row": row}}, index, label)
        for index, (request_id, row, label) in enumerate(entries)
    ]
    path.write_text(json.dumps(tasks))
    return path


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "case",
    [
        "unknown id",
        "bad label",
        "duplicate",
        "already labelled",
        "unknown row",
        "not json",
        "not a task list",
        "csv without label",
        "wrong extension",
        "missing file",
    ],
)
def test_every_bad_import_is_refused_with_its_place_and_writes_nothing(
    loop, tmp_path: Path, capsys, case: str
) -> None:
    request_id, row = key_of(most_certain(loop)[0])
    label = loop["truth"][(request_id, row)]
    known = sorted(loop["labelled"])[0]
    stranger = "f" * 32
    files = {
        "unknown id": lambda: label_studio_file(
            tmp_path / "a.json", [(request_id, row, label), (stranger, 0, label)]
        ),
        "bad label": lambda: label_studio_file(tmp_path / "a.json", [(request_id, row, "maybe")]),
        "duplicate": lambda: label_studio_file(
            tmp_path / "a.json", [(request_id, row, label), (request_id, row, label)]
        ),
        "already labelled": lambda: label_studio_file(tmp_path / "a.json", [(known[0], known[1], label)]),
        "unknown row": lambda: label_studio_file(tmp_path / "a.json", [(request_id, REQUEST_ROWS, label)]),
        "not json": lambda: write(tmp_path / "a.json", "[{"),
        "not a task list": lambda: write(tmp_path / "a.json", '{"data": {}}'),
        "csv without label": lambda: write(tmp_path / "a.csv", f"request_id,row\n{request_id},{row}\n"),
        "wrong extension": lambda: write(tmp_path / "a.txt", "request_id,label\n"),
        "missing file": lambda: tmp_path / "absent.json",
    }
    expected_messages = {
        "unknown id": f"task 1: unknown request {stranger} row 0",
        "bad label": "task 0: label 'maybe' is not one of the target's classes",
        "duplicate": f"task 1: request {request_id} row {row} is labelled twice (first at task 0)",
        "already labelled": "task 0: request " + known[0],
        "unknown row": f"task 0: unknown request {request_id} row {REQUEST_ROWS}",
        "not json": "not a JSON document",
        "not a task list": "expected a JSON list of tasks",
        "csv without label": "lacks label",
        "wrong extension": "expected a Label Studio JSON export (.json) or a CSV",
        "missing file": "file not found",
    }
    path = files[case]()
    before = state(loop)
    capsys.readouterr()
    assert run(loop, "import", str(path), "--env", loop["environment"]) == 2
    error = capsys.readouterr().err
    assert expected_messages[case] in error
    assert path.name in error
    if case == "already labelled":
        assert "already labelled (feedback store)" in error
    if case not in STRUCTURAL:
        assert "nothing imported" in error
    assert state(loop) == before


def test_a_csv_of_request_id_and_label_is_imported_and_a_bad_line_is_named(
    loop, tmp_path: Path, capsys
) -> None:
    first, second = most_certain(loop)[1:3]
    good = loop["truth"][key_of(first)]
    lines = [
        "request_id,label,row",
        f"{first['request_id']},{good},{first['row']}",
        f"{second['request_id']},nope,{second['row']}",
    ]
    bad = write(tmp_path / "labels.csv", "\n".join(lines) + "\n")
    before = state(loop)
    assert run(loop, "import", str(bad), "--env", loop["environment"]) == 2
    assert "labels.csv: 1 problem(s), nothing imported:\n  line 3: label 'nope'" in capsys.readouterr().err
    assert state(loop) == before
    ok = write(tmp_path / "ok.csv", "\n".join(lines[:2]) + "\n")
    assert run(loop, "import", str(ok), "--env", loop["environment"]) == 0
    assert "Imported 1 labelled rows" in capsys.readouterr().out
    assert run(loop, "import", str(ok), "--env", loop["environment"]) == 2
    assert "line 2: request" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--env", "nowhere", "--n", "5"], "'nowhere' is not an environment of this project"),
        (["--n", "0"], "expected a positive number of rows"),
        (["--n", "-3"], "expected a positive number of rows"),
        (["--n", "five"], "expected a whole number of rows"),
        (["--strategy", "random", "--n", "5"], "invalid choice: 'random'"),
        (["--format", "xml", "--n", "5"], "invalid choice: 'xml'"),
    ],
)
def test_every_bad_export_is_refused_and_writes_nothing(
    loop, tmp_path: Path, capsys, arguments, message
) -> None:
    out = tmp_path / "out" / "tasks.json"
    if "--env" not in arguments:
        arguments = ["--env", loop["environment"], *arguments]
    before = state(loop)
    try:
        status = run(loop, "export", *arguments, "--out", str(out))
    except SystemExit as stop:  # argparse refuses a malformed option before any command runs
        status = stop.code
    assert status == 2
    assert message in capsys.readouterr().err
    assert not out.parent.exists()
    assert state(loop) == before


def test_an_environment_without_a_log_is_named_and_no_store_is_created(loop, tmp_path: Path, capsys) -> None:
    # The first environment, pointed for this test at a log and a store that do not exist (a project
    # with one environment has no other to use; its settings are restored afterwards).
    other = loop["config"].environments[0]
    settings = loop["root"] / "environments" / f"{other}.yaml"
    original = settings.read_text() if settings.exists() else None
    serving = {"prediction_log": {"directory": "logs/nothing"}, "feedback_database_url": "sqlite:///other.db"}
    settings.write_text(yaml.safe_dump({"serving": serving}))
    try:
        assert run(loop, "export", "--env", other, "--n", "5", "--out", str(tmp_path / "t.json")) == 2
    finally:
        if original is None:
            settings.unlink()
        else:
            settings.write_text(original)
    assert f"no prediction log for {other}" in capsys.readouterr().err
    assert not (tmp_path / "t.json").exists()
    assert not (loop["root"] / "other.db").exists()


def test_collect_writes_the_stores_new_labels_once(loop, capsys) -> None:
    root, config = loop["root"], loop["config"]
    directory = root / "data" / "feedback"
    in_files = labelled_in_directory(directory)
    fresh = [record for record in most_certain(loop)[10:14] if key_of(record) not in in_files]
    store = FeedbackStore(f"sqlite:///{root / 'feedback.db'}")
    # What the service's /feedback stores: the model's label, 0 or 1.
    store.add_feedback([(record["request_id"], record["row"], 1) for record in fresh])
    store.close()
    expected = (loop["labelled"] | {key_of(record) for record in fresh}) - set(in_files)
    assert run(loop, "collect", "--env", loop["environment"]) == 0
    assert f"Collected {len(expected)} labels" in capsys.readouterr().out
    entry = read_feedback_manifest(directory)[-1]
    assert entry["source"] == "feedback store" and entry["rows"] == len(expected)
    frame = pd.read_csv(directory / entry["file"], dtype={"request_id": str})
    assert set(zip(frame["request_id"], frame["row"], strict=True)) == expected
    positive = config.data.positive_label
    assert all(
        frame.loc[index, config.data.target] == positive
        for index in frame.index
        if (frame.loc[index, "request_id"], frame.loc[index, "row"]) in {key_of(record) for record in fresh}
    )
    before = state(loop)
    assert run(loop, "collect", "--env", loop["environment"]) == 0
    assert "holds no label that is not in a feedback file yet" in capsys.readouterr().out
    assert state(loop) == before


def git(cwd: Path, *arguments: str) -> str:
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    completed = subprocess.run(
        ["git", *identity, *arguments], cwd=cwd, capture_output=True, text=True, check=True
    )
    return completed.stdout.strip()


def test_propose_pushes_the_feedback_on_one_fixed_branch_and_opens_one_pr(
    loop, tmp_path: Path, capsys
) -> None:
    root = loop["root"]
    directory = root / "data" / "feedback"
    assert run(loop, "collect", "--env", loop["environment"]) == 0  # feedback to propose, run alone too
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(remote))
    # The checkout as main holds it: everything but the feedback gathered since.
    git(root, "init", "--quiet", "-b", "main")
    git(root, "add", "--all", "--", ".", ":!data/feedback")
    git(root, "commit", "--quiet", "-m", "main")
    git(root, "remote", "add", "origin", str(remote))
    git(root, "push", "--quiet", "origin", "main")
    head = git(root, "rev-parse", "HEAD")
    index_before = git(root, "diff", "--cached", "--name-only")

    with FakeGitHub(branches=None) as github:
        environ = {
            "GITHUB_API_URL": github.url,
            "GITHUB_REPOSITORY": github.repository,
            "GITHUB_TOKEN": "test-token",
        }
        with pytest.MonkeyPatch.context() as patch:
            for name, value in environ.items():
                patch.setenv(name, value)
            assert run(loop, "propose") == 0
            assert "Opened pull request #1" in capsys.readouterr().out
            (pull_request,) = github.open_pull_requests(base="main")
            assert pull_request["head"]["ref"] == "retrain/feedback"
            files = sorted(path.name for path in directory.iterdir())
            pushed = git(
                root,
                "ls-tree",
                "-r",
                "--name-only",
                "refs/remotes/origin/retrain/feedback",
                "--",
                "data/feedback",
            )
            assert sorted(Path(name).name for name in pushed.splitlines()) == files
            assert git(root, "rev-parse", "refs/remotes/origin/retrain/feedback~1") == head
            rows = sum(entry["rows"] for entry in read_feedback_manifest(directory))
            assert f"Adds {rows} labelled rows" in pull_request["body"]
            # A re-run with nothing new changes nothing and keeps the one PR.
            assert run(loop, "propose") == 0
            assert "already up to date" in capsys.readouterr().out
            assert len(github.open_pull_requests(base="main")) == 1
    # The checkout's own index is untouched: the commit was built in a scratch index.
    assert git(root, "diff", "--cached", "--name-only") == index_before
    assert git(root, "rev-parse", "HEAD") == head


PROJECT_ROOT = Path(__file__).resolve().parents[2]
IGNORED = shutil.ignore_patterns(
    ".git",
    ".venv",
    "mlflow.db",
    "mlartifacts",
    "reports",
    ".gitops-remote.git",
    "__pycache__",
    ".pytest_cache",
    "logs",
    "feedback.db",
)


def test_the_retrain_workflow_collects_the_stores_labels_and_opens_one_pr(tmp_path: Path) -> None:
    """retrain.yml's job as Actions runs it (support/workflow_runner), on a remote and a GitHub stand-in."""
    seed = tmp_path / "seed"
    shutil.copytree(PROJECT_ROOT, seed, ignore=IGNORED)
    config_file = install_fixture_project(seed)
    document = yaml.safe_load(config_file.read_text())
    document["data"]["feedback_path"] = "data/feedback"
    config_file.write_text(yaml.safe_dump(document, sort_keys=False))
    config = load_config(config_file)
    environment = config.environments[-1]
    # The deployment's log and store, outside the checkout, where environments/<env>.yaml says.
    deployment = tmp_path / "deployment"
    settings_file = seed / "environments" / f"{environment}.yaml"
    settings = yaml.safe_load(settings_file.read_text()) or {}
    settings.setdefault("serving", {}).update(
        prediction_log={"directory": str(deployment / "logs")},
        feedback_database_url=f"sqlite:///{deployment / 'feedback.db'}",
    )
    settings_file.write_text(yaml.safe_dump(settings, sort_keys=False))
    dataset = load_dataset(config.data, config.data_path)
    rows = dataset.features.head(8)
    request_ids = [uuid.uuid4().hex for _ in range(len(rows))]
    log = PredictionLog(deployment / "logs")
    log.append(
        logged_record(
            request_id, 0, environment, 1, {key: (None if pd.isna(v) else v) for key, v in row.items()}, 0.4
        )
        for request_id, (_, row) in zip(request_ids, rows.iterrows(), strict=True)
    )
    log.close()
    store = FeedbackStore(f"sqlite:///{deployment / 'feedback.db'}")
    store.record_requests([ServedRequest(rid, environment, "champion", 1, None, 1) for rid in request_ids])
    store.add_feedback([(rid, 0, index % 2) for index, rid in enumerate(request_ids[:5])])
    store.close()
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(remote))
    git(seed, "init", "--quiet", "-b", "main")
    git(seed, "add", "--all")
    git(seed, "commit", "--quiet", "-m", "project")
    git(seed, "push", "--quiet", str(remote), "main")

    with FakeGitHub(repository=f"example-org/{config.name}", branches=None) as github:
        runner = WorkflowRunner(
            project_root=PROJECT_ROOT,
            remote=remote,
            workspace_root=tmp_path / "runs",
            environment=actions_environment(github),
        )
        inputs = {"environment": environment}
        result = runner.run_job("retrain.yml", "propose", "workflow_dispatch", "main", inputs=inputs)
        assert result.success, result.log()
        assert f"Collected 5 labels from the feedback store of {environment}" in result.summary
        (pull_request,) = github.open_pull_requests(base="main")
        assert pull_request["head"]["ref"] == "retrain/feedback"
        assert "Adds 5 labelled rows" in pull_request["body"]
        pushed = git(remote, "show", "retrain/feedback:data/feedback/import-0001.csv")
        frame = pd.read_csv(io.StringIO(pushed), dtype={"request_id": str})
        assert sorted(frame["request_id"]) == sorted(request_ids[:5])
        assert git(remote, "rev-parse", "retrain/feedback~1") == git(remote, "rev-parse", "main")
        # A re-run force-updates the same branch and keeps the one pull request.
        again = runner.run_job("retrain.yml", "propose", "workflow_dispatch", "main", inputs=inputs)
        assert again.success, again.log()
        assert len(github.open_pull_requests(base="main")) == 1
        assert git(remote, "rev-parse", "retrain/feedback~1") == git(remote, "rev-parse", "main")


def test_an_import_for_an_unknown_environment_is_refused_and_writes_nothing(
    loop, tmp_path: Path, capsys
) -> None:
    request_id, row = key_of(most_certain(loop)[0])
    path = label_studio_file(tmp_path / "a.json", [(request_id, row, loop["truth"][(request_id, row)])])
    before = state(loop)
    assert run(loop, "import", str(path), "--env", "nowhere") == 2
    assert "'nowhere' is not an environment of this project" in capsys.readouterr().err
    assert state(loop) == before


def test_a_personal_feature_the_log_dropped_is_left_empty_in_the_feedback_file(loop, tmp_path: Path) -> None:
    config_file, config = loop["config_file"], loop["config"]
    personal = config.data.categorical_features[-1]
    original = config_file.read_text()
    document = yaml.safe_load(original)
    document["data"]["personal_columns"] = [personal]
    record = dict(most_certain(loop)[5])
    # The log as a project with this personal column writes it: the column dropped.
    # (row 0 of a request of its own: a CSV line without a row addresses row 0)
    dropped = {**record, "request_id": uuid.uuid4().hex, "row": 0, "features": dict(record["features"])}
    del dropped["features"][personal]
    log = PredictionLog(loop["root"] / "logs" / "predictions")
    log.append([dropped])
    log.close()
    path = write(
        tmp_path / "labels.csv", f"request_id,label\n{dropped['request_id']},{config.data.positive_label}\n"
    )
    try:
        config_file.write_text(yaml.safe_dump(document, sort_keys=False))
        assert run(loop, "import", str(path), "--env", loop["environment"]) == 0
    finally:
        config_file.write_text(original)
    directory = loop["root"] / "data" / "feedback"
    entry = read_feedback_manifest(directory)[-1]
    frame = pd.read_csv(directory / entry["file"], dtype={"request_id": str})
    assert frame["request_id"].tolist() == [dropped["request_id"]]
    assert frame[personal].isna().all()
    assert (
        frame.loc[0, config.data.numeric_features[0]] == record["features"][config.data.numeric_features[0]]
    )


def test_propose_refuses_a_project_whose_training_would_not_read_the_feedback(loop, capsys) -> None:
    config_file = loop["config_file"]
    original = config_file.read_text()
    document = yaml.safe_load(original)
    del document["data"]["feedback_path"]
    try:
        config_file.write_text(yaml.safe_dump(document, sort_keys=False))
        assert run(loop, "propose", "--no-pr") == 2
    finally:
        config_file.write_text(original)
    assert "data.feedback_path is not set in project.yaml" in capsys.readouterr().err
