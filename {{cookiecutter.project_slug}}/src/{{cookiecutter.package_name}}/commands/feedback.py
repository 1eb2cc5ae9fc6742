"""Feedback commands: export the rows worth labelling, import the labels that come back, propose retraining.

Two records of feedback, each with its own job. The feedback store (`serving.feedback_database_url`) is
the service's live record: `/feedback` writes it and monitoring joins it to the log. The feedback
directory (`data.feedback_path`, `data/feedback/` by default) is training input kept in git: one CSV
per import with the features joined from the prediction log, and a manifest line with its sha256.
`import` writes both, and writes nothing at all when any entry is refused. `collect` turns the store's
labels into a feedback file; `propose` commits the feedback directory on the fixed branch
`retrain/feedback` and opens (or updates) its pull request, whose model report does the retraining.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import make_url

from {{ cookiecutter.package_name }}.config import ProjectConfig
from {{ cookiecutter.package_name }}.io.feedback import FeedbackStore, resolve_database_url
from {{ cookiecutter.package_name }}.io.prediction_log import read_prediction_log
from {{ cookiecutter.package_name }}.pipeline import feedback
from {{ cookiecutter.package_name }}.pipeline.data import (
    FEEDBACK_MANIFEST,
    Dataset,
    load_dataset,
    read_feedback_manifest,
)
from {{ cookiecutter.package_name }}.pipeline.feedback import FeedbackError

DEFAULT_FEEDBACK_PATH = Path("data/feedback")
FORMATS = ("label-studio", "csv")


@dataclass(frozen=True)
class ExportResult:
    text: str
    rows: int
    candidates: int
    label_config: str


@dataclass(frozen=True)
class ImportResult:
    file: str
    rows: int
    unlabelled: int
    directory: Path
    manifest_entry: dict[str, Any]


def feedback_directory(config: ProjectConfig) -> Path:
    """Where imports go: `data.feedback_path`, or data/feedback/ while it is unset."""
    return config.resolve(config.data.feedback_path or DEFAULT_FEEDBACK_PATH)


def _sources(config: ProjectConfig, environment: str) -> tuple[Path, str]:
    """The environment's prediction log directory and feedback store URL (validates the environment)."""
    serving = config.environment_settings(environment).serving
    log = config.resolve(serving.prediction_log.directory)
    return log, resolve_database_url(serving.feedback_database_url, config.root)


def _store_exists(url: str) -> bool:
    """False for a SQLite file that was never created: reading it must not create it."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        return Path(parsed.database).is_file()
    return True


def _labelled_in_store(url: str) -> dict[feedback.Key, str]:
    if not _store_exists(url):
        return {}
    store = FeedbackStore(url)
    try:
        return {(str(item["request_id"]), int(item["row"])): "feedback store" for item in store.feedback()}
    finally:
        store.close()


def _answered(log: Path, environment: str) -> dict[feedback.Key, dict[str, Any]]:
    if not log.is_dir():
        raise FeedbackError(
            f"no prediction log for {environment} at {log} (serving.prediction_log.directory)"
        )
    try:
        records = read_prediction_log(log)
    except orjson.JSONDecodeError as error:
        raise FeedbackError(f"{log}: a prediction log line is not JSON ({error})") from None
    return feedback.answered_rows(records, environment)


def _training_data(config: ProjectConfig) -> Dataset:
    """The data file alone: its schema and classes are what feedback rows must match."""
    return load_dataset(config.data, config.data_path)


def withheld_features(config: ProjectConfig, dataset: Dataset) -> list[str]:
    """Model inputs that are personal data: the log holds their hash or nothing, never the value."""
    return [column for column in dataset.schema.features if column in config.data.personal_columns]


def logged_features(config: ProjectConfig, dataset: Dataset) -> list[str]:
    """The features every logged record must hold for its row to be trained on."""
    withheld = set(withheld_features(config, dataset))
    return [column for column in dataset.schema.features if column not in withheld]


def export_uncertain(
    config: ProjectConfig, environment: str, strategy: feedback.Strategy, n: int, output_format: str
) -> ExportResult:
    """The `n` champion rows of the environment's log the model is least sure of, not labelled yet."""
    if output_format not in FORMATS:
        raise FeedbackError(f"--format {output_format!r}: expected one of {', '.join(FORMATS)}")
    feedback.uncertainty([], strategy)  # refuses an unknown strategy before any reading
    if n <= 0:
        raise FeedbackError(f"--n {n}: expected a positive number of rows to label")
    log, url = _sources(config, environment)
    answered = _answered(log, environment)
    labelled = {**_labelled_in_store(url), **feedback.labelled_in_directory(feedback_directory(config))}
    candidates = feedback.labelling_candidates(answered, set(labelled))
    if not candidates:
        raise FeedbackError(
            f"the prediction log of {environment} ({log}) holds no answered champion row without a label"
        )
    picked = [
        candidates[index] for index in feedback.most_uncertain([r["score"] for r in candidates], strategy, n)
    ]
    dataset = _training_data(config)
    if output_format == "csv":
        text = feedback.candidates_csv(picked, dataset.schema.features, dataset.classes, strategy)
    else:
        tasks = [feedback.label_studio_task(record, dataset.classes) for record in picked]
        text = orjson.dumps(tasks, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode() + "\n"
    label_config = feedback.label_studio_config(dataset.classes, dataset.schema.features)
    return ExportResult(text, len(picked), len(candidates), label_config)


def parse_labels(path: Path) -> feedback.ParsedLabels:
    """A Label Studio JSON export (.json) or a CSV of request_id,label[,row] (.csv)."""
    if not path.is_file():
        raise FeedbackError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise FeedbackError(f"{path}: not a UTF-8 text file ({error})") from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            return feedback.parse_label_studio_export(text)
        if suffix == ".csv":
            return feedback.parse_label_csv(text)
    except FeedbackError as error:
        raise FeedbackError(f"{path}: {error}") from None
    raise FeedbackError(
        f"{path}: expected a Label Studio JSON export (.json) or a CSV of request_id,label (.csv)"
    )


def import_labels(config: ProjectConfig, path: Path, environment: str) -> ImportResult:
    """Check every label of `path`, then append the accepted rows to the feedback directory and store.

    Nothing is written when one entry is refused or when no entry holds a label; when the store
    refuses the labels, the file and its manifest line are taken back out.
    """
    parsed = parse_labels(path)
    log, url = _sources(config, environment)
    answered = _answered(log, environment)
    directory = feedback_directory(config)
    dataset = _training_data(config)
    features = dataset.schema.features
    labelled = {**_labelled_in_store(url), **feedback.labelled_in_directory(directory)}
    try:
        accepted = feedback.check_labels(
            parsed, answered, dataset.classes, labelled, logged_features(config, dataset)
        )
    except FeedbackError as error:
        raise FeedbackError(f"{path}: {error}") from None
    if not accepted:
        raise FeedbackError(
            f"{path}: no labelled entry ({parsed.unlabelled} without a label): nothing imported"
        )
    frame = feedback.feedback_frame(
        accepted, features, config.data.target, withheld_features(config, dataset)
    )
    manifest = directory / FEEDBACK_MANIFEST
    before = manifest.read_bytes() if manifest.is_file() else None
    entry = feedback.write_feedback(
        directory, frame, {"source": path.name, "environment": environment, "format": path.suffix.lstrip(".")}
    )
    try:
        store = FeedbackStore(url)
        try:
            store.add_feedback(
                [(item.request_id, item.row, dataset.classes.index(item.label)) for item, _ in accepted]
            )
        finally:
            store.close()
    except Exception as error:
        # The store refused: take the file back out, so the two records never disagree.
        (directory / entry["file"]).unlink(missing_ok=True)
        if before is None:
            manifest.unlink(missing_ok=True)
        else:
            manifest.write_bytes(before)
        raise FeedbackError(f"the feedback store ({url}) refused the labels: {error}") from None
    return ImportResult(entry["file"], len(accepted), parsed.unlabelled, directory, entry)


def collect_labels(config: ProjectConfig, environment: str) -> ImportResult | None:
    """The store's labels that no feedback file holds yet, written as the next import file.

    These are the labels the service received on `/feedback` (the store's labels are the model's
    0/1, mapped back to the target's classes). Labels for rows this environment's log does not hold
    are left alone; a row labelled twice in the store keeps its latest label. Returns None when
    there is nothing new.
    """
    log, url = _sources(config, environment)
    answered = _answered(log, environment)
    directory = feedback_directory(config)
    dataset = _training_data(config)
    in_files = feedback.labelled_in_directory(directory)
    latest: dict[feedback.Key, Any] = {}
    if _store_exists(url):
        store = FeedbackStore(url)
        try:
            for item in store.feedback():
                latest[(str(item["request_id"]), int(item["row"]))] = item["label"]
        finally:
            store.close()
    entries = [
        feedback.LabelEntry(
            f"feedback store label {index}", key[0], key[1], feedback.class_name(label, dataset.classes)
        )
        for index, (key, label) in enumerate(latest.items())
        if key in answered and key not in in_files
    ]
    if not entries:
        return None
    parsed = feedback.ParsedLabels(entries, [])
    features = dataset.schema.features
    accepted = feedback.check_labels(
        parsed, answered, dataset.classes, in_files, logged_features(config, dataset)
    )
    frame = feedback.feedback_frame(
        accepted, features, config.data.target, withheld_features(config, dataset)
    )
    entry = feedback.write_feedback(
        directory, frame, {"source": "feedback store", "environment": environment, "format": "store"}
    )
    return ImportResult(entry["file"], len(accepted), 0, directory, entry)


RETRAIN_BRANCH = "retrain/feedback"


@dataclass(frozen=True)
class Proposal:
    branch: str
    commit: str | None
    changed: bool
    files: list[str]
    pull_request: dict | None = None
    created: bool = False


@contextmanager
def _scratch_index():
    """A throw-away git index, so committing the feedback never touches the checkout's own index."""
    with tempfile.TemporaryDirectory(prefix="feedback-index-") as scratch:
        previous = os.environ.get("GIT_INDEX_FILE")
        os.environ["GIT_INDEX_FILE"] = str(Path(scratch) / "index")
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("GIT_INDEX_FILE", None)
            else:
                os.environ["GIT_INDEX_FILE"] = previous


def render_proposal(config: ProjectConfig, entries: list[dict]) -> str:
    """The retraining pull request's description: what feedback it adds."""
    lines = [
        "## Retrain on collected feedback",
        "",
        f"Adds {sum(int(entry['rows']) for entry in entries)} labelled rows under "
        f"`{(config.data.feedback_path or DEFAULT_FEEDBACK_PATH).as_posix()}/`. Training appends them "
        "to the training split only; the held-out rows are unchanged, so the model report on this pull "
        "request compares the new version with the champion on the same rows.",
        "",
        "| file | rows | source | environment | sha256 |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {entry['file']} | {entry['rows']} | {entry.get('source', '')} | {entry.get('environment', '')} "
        f"| `{str(entry['sha256'])[:12]}` |"
        for entry in entries
    ]
    return "\n".join(lines) + "\n"


def propose_retraining(
    config: ProjectConfig, repository, github=None, branch: str = RETRAIN_BRANCH, base: str = "main"
) -> Proposal:
    """Commit the feedback directory as it is now on top of HEAD, as `branch`, and open or update its PR.

    The branch is force-updated on every run (one open retraining PR, never a pile of dated ones);
    nothing is pushed when the feedback directory is what HEAD already holds.
    """
    if config.data.feedback_path is None:
        raise FeedbackError(
            "data.feedback_path is not set in project.yaml: training would not read the feedback, so "
            f"there is nothing to retrain on; set it (e.g. to {DEFAULT_FEEDBACK_PATH.as_posix()})"
        )
    directory = feedback_directory(config)
    if not directory.is_dir():
        return Proposal(branch, None, False, [])
    relative = directory.relative_to(config.root).as_posix()
    repository.require_remote()
    head = repository.git("rev-parse", "HEAD")
    with _scratch_index():
        repository.git("read-tree", head)
        repository.git("add", "--all", "--", relative)
        tree = repository.git("write-tree")
        changed_files = repository.git(
            "diff-index", "--cached", "--name-only", head, "--", relative
        ).splitlines()
    if not changed_files:
        return Proposal(branch, None, False, [])
    known = {entry["file"]: entry for entry in read_feedback_manifest(directory)}
    added = [known[Path(name).name] for name in changed_files if Path(name).name in known]
    remote_head = repository.git("ls-remote", "--heads", repository.remote, branch).split()
    current = remote_head[0] if remote_head else None
    if current is not None:
        repository.git("fetch", "--quiet", repository.remote, branch)
    if (
        current is not None
        and repository.git("rev-parse", current + "^{tree}") == tree
        and repository.git("rev-parse", current + "~1") == head
    ):
        commit, pushed = current, False
    else:
        rows = sum(int(entry["rows"]) for entry in added)
        message = f"Retrain on {rows} collected feedback rows"
        commit = repository.git("commit-tree", tree, "-p", head, "-m", message)
        repository.git("push", "--quiet", "--force", repository.remote, f"{commit}:refs/heads/{branch}")
        pushed = True
    pull_request, created = None, False
    if github is not None:
        title = f"Retrain {config.mlflow.registered_model} on collected feedback"
        pull_request, created = github.upsert_pull_request(
            title, branch, base, render_proposal(config, added)
        )
    return Proposal(branch, commit, pushed, changed_files, pull_request, created)
