"""A canary judged by the whole loop, each part real.

Two versions trained and reported against a real `mlflow server`, promoted into the first environment
under canary (the second beside the first, at the first step of rollout.steps) through a bare remote.
The service's own application, loaded from release.yaml and the registry, answers rows of the Adult
test split over HTTP under a real uvicorn; its prediction log is shipped to the tracking server as the
log-shipper sidecar ships it. Then monitor.yml runs as Actions runs it (support/workflow_runner):
`records fetch`, `monitor`, the report as an artifact, and its rollout job turns the decision into a
pull request through the GitHub API stand-in.

The one thing made up is the broken challenger: its registered pipeline, loaded and verified as
`serve` loads it, is wrapped so that some of its calls raise.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pandas as pd
import pytest
import yaml
from fixtures import FIXTURES, install_fixture_project
from sklearn.metrics import accuracy_score
from support.cli_server import CliServer
from support.github_api import FakeGitHub
from support.http_client import Answer, post_feedback, post_many
from support.in_thread_service import running_service
from support.workflow_runner import JobResult, WorkflowRunner, actions_environment

from {{ cookiecutter.package_name }}.commands import delivery
from {{ cookiecutter.package_name }}.commands.evidence import report
from {{ cookiecutter.package_name }}.commands.training import train
from {{ cookiecutter.package_name }}.config import ProjectConfig, load_config
from {{ cookiecutter.package_name }}.contracts.release import Release
from {{ cookiecutter.package_name }}.io import log_shipping
from {{ cookiecutter.package_name }}.io.git import LOCAL_REMOTE, Repository, local_remote
from {{ cookiecutter.package_name }}.serving.model import CHALLENGER, CHAMPION

pytestmark = pytest.mark.e2e

PROJECT_ROOT = Path(__file__).resolve().parents[2]
IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "*.db", "mlartifacts", "reports", "logs", LOCAL_REMOTE, "__pycache__", ".pytest_cache"
)
FEEDBACK_TOKEN = "canary-loop-feedback-token"
STEPS = [50, 100]
# Latency is not what these tests judge (a loaded test machine is slow): its limit is out of reach.
ANALYSIS = {"min_requests": 100, "max_error_rate": 0.01, "max_p99_latency_ms": 60000}
REQUESTS = 400
# The loop's mechanics are under test, not the pack: limits both versions pass (measured on splits
# of their own, their held-out figures differ by more than a pack's regression tolerance).
PERMISSIVE = {
    "min_metrics": {"roc_auc": 0.6},
    "max_fairness_difference": {},
    "min_fairness_ratio": {},
    "max_regression": {"roc_auc": 0.5},
}


@dataclass
class Canary:
    config: ProjectConfig
    environment: str
    repository: Repository
    champion: int
    challenger: int
    tracking_uri: str
    root: Path


def git(cwd: Path, *arguments: str) -> str:
    identity = ["-c", "user.name=dev", "-c", "user.email=dev@example.com"]
    completed = subprocess.run(
        ["git", *identity, *arguments], cwd=cwd, capture_output=True, text=True, check=True
    )
    return completed.stdout.strip()


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory, mlflow_server) -> Canary:
    tracking_uri, _ = mlflow_server
    root = tmp_path_factory.mktemp("canary")
    project = root / "project"
    shutil.copytree(PROJECT_ROOT, project, ignore=IGNORED)
    config_file = install_fixture_project(project)
    original = load_config(config_file)
    model = f"{original.mlflow.registered_model}-canary".replace("_", "-")
    text = config_file.read_text().replace(
        f"registered_model: {original.mlflow.registered_model}", f"registered_model: {model}"
    )
    config_file.write_text(text)
    thresholds_file = project / "policies" / "thresholds.yaml"
    thresholds = yaml.safe_load(thresholds_file.read_text())
    thresholds.update(default=PERMISSIVE, environments={})
    thresholds_file.write_text(yaml.safe_dump(thresholds, sort_keys=False))
    environment = original.environments[0]
    settings_file = project / "environments" / f"{environment}.yaml"
    settings = yaml.safe_load(settings_file.read_text())
    settings["rollout"].update(strategy="canary", challenger_weight=0, steps=STEPS, analysis=ANALYSIS)
    # The feedback store is a database the service and the monitoring job both reach; the prediction
    # log is the replica's own directory (relative: the monitoring job fetches it into its checkout).
    settings["serving"]["feedback_database_url"] = f"sqlite:///{root / 'shared' / 'feedback.db'}"
    (root / "shared").mkdir()
    settings_file.write_text(yaml.safe_dump(settings, sort_keys=False))
    (project / ".gitignore").write_text(
        "mlruns/\nmlartifacts/\n*.db\nevidence/\nlogs/\n" + LOCAL_REMOTE + "/\n"
    )
    git(project, "init", "--quiet", "-b", "main")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "-m", "project")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        config = load_config(config_file)
        champion = train(config).registered.version
        # The challenger: the same data split another way (a commit of its own), so the two disagree.
        config_file.write_text(text.replace("random_state: 42", "random_state: 7"))
        git(project, "commit", "--quiet", "-am", "another split")
        challenger = train(load_config(config_file)).registered.version
        config_file.write_text(text)
        git(project, "commit", "--quiet", "-am", "the first split again")
        config = load_config(config_file)
        for version in (champion, challenger):
            report(config, version)
        repository = local_remote(project)
        assert repository is not None
        for version in (champion, challenger):
            delivery.promote(config, repository, environment, version=version, merge=True)
            delivery.deploy(config, repository, environment)
    release = delivery.current_release(repository, environment)
    assert (release.version, release.challenger, release.challenger_weight) == (
        champion,
        challenger,
        STEPS[0],
    )
    return Canary(config, environment, repository, champion, challenger, tracking_uri, root)


class FailingSometimes:
    """A scorer that raises on every `every`-th call, as a broken release would, and otherwise
    answers what the registered one answers."""

    def __init__(self, scorer, every: int) -> None:
        self.scorer = scorer
        self.every = every
        self.calls = itertools.count(1)

    def predict_proba(self, rows):
        if next(self.calls) % self.every == 0:
            raise RuntimeError("injected failure of the challenger")
        return self.scorer.predict_proba(rows)

    def __getattr__(self, name: str):
        return getattr(self.scorer, name)


def adult_requests(config: ProjectConfig, count: int, offset: int) -> tuple[list[dict], list[int]]:
    """`count` rows of the Adult test split as a client sends them, and their 0/1 labels."""
    frame = pd.read_csv(FIXTURES / "data" / "adult_test_sample.csv").iloc[offset : offset + count]
    columns = [*config.data.numeric_features, *config.data.categorical_features]
    rows = orjson.loads(frame[columns].to_json(orient="records"))
    labels = (frame[config.data.target] == config.data.positive_label).astype(int).tolist()
    return rows, labels


def serve_and_send(
    canary: Canary,
    release: Release,
    rows: list[dict],
    fail_every: int | None,
    labels: list[int] | None = None,
) -> list[Answer]:
    """Serve `release` as `serve` does, one request per row (each with a routing key of its own); then
    post every request's label to /feedback, as a labelling system would, when `labels` are given;
    stop the service, which flushes its log, and ship the log as the log-shipper sidecar does."""

    def failing(models: dict) -> dict:
        served = models[CHALLENGER]
        return {
            **models,
            CHALLENGER: dataclasses.replace(
                served,
                pipeline=FailingSometimes(served.pipeline, fail_every),
                compiled=None if served.compiled is None else FailingSometimes(served.compiled, fail_every),
            ),
        }

    environ = {"MLFLOW_TRACKING_URI": canary.tracking_uri, "MLOPS_FEEDBACK_TOKEN": FEEDBACK_TOKEN}
    adjust = None if fail_every is None else failing
    with running_service(canary.config, release, environ, adjust) as port:
        requests = [
            ("/predict", {"instances": [row]}, {"X-Routing-Key": f"subject-{index}"})
            for index, row in enumerate(rows)
        ]
        answers = post_many(port, requests)
        assert all(answer is not None for answer in answers)
        if labels is not None:
            feedback = [
                {"request_id": answer.json()["request_id"], "label": label}
                for answer, label in zip(answers, labels, strict=True)
            ]
            post_feedback(port, feedback, FEEDBACK_TOKEN)
    settings = canary.config.environment_settings(canary.environment)
    log_directory = canary.config.resolve(settings.serving.prediction_log.directory)
    log_shipping.ship(canary.config, canary.environment, log_directory, replica="pod-a")
    return answers


def runner_for(canary: Canary, github: FakeGitHub, cli_server: CliServer, name: str) -> WorkflowRunner:
    """The monitoring workflow's runner: the tracking server only through the secrets the workflow
    passes on, as on Actions."""
    return WorkflowRunner(
        project_root=PROJECT_ROOT,
        remote=canary.repository.path / LOCAL_REMOTE,
        workspace_root=canary.root / name / "runs",
        environment=actions_environment(github),
        secrets={"MLFLOW_TRACKING_URI": canary.tracking_uri},
        artifacts=canary.root / name / "artifacts",
        cli_server=cli_server,
    )


def check(result: JobResult) -> JobResult:
    assert result.success, result.log()
    return result


def run_monitor_workflow(runner: WorkflowRunner, environment: str, since: datetime) -> tuple[dict, JobResult]:
    """monitor.yml dispatched for one environment and one window: its three jobs in their order.
    Returns the report and the rollout job."""
    inputs = {"environment": environment, "since": since.isoformat(), "until": ""}
    listed = check(runner.run_job("monitor.yml", "environments", "workflow_dispatch", "main", inputs=inputs))
    assert json.loads(listed.outputs["names"]) == [environment]
    matrix = {"environment": environment}
    needs = {"environments": listed.outputs}
    monitored = check(
        runner.run_job(
            "monitor.yml", "monitor", "workflow_dispatch", "main", inputs, needs=needs, matrix=matrix
        )
    )
    [artifact] = runner.artifacts.iterdir()
    assert artifact.name == f"monitoring-{environment}"
    document = json.loads((artifact / "report.json").read_text())
    assert (artifact / "summary.md").read_text() in monitored.summary, "the summary is the job's"
    needs = {**needs, "monitor": {}}
    acted = check(
        runner.run_job(
            "monitor.yml", "rollout", "workflow_dispatch", "main", inputs, needs=needs, matrix=matrix
        )
    )
    return document, acted


def branch_release(runner: WorkflowRunner, branch: str) -> dict:
    return yaml.safe_load(git(runner.remote, "show", f"{branch}:release.yaml"))


def variants(answers: list[Answer]) -> Counter:
    """What the client saw: answered rows per variant, and failed requests."""
    return Counter(
        answer.json()["predictions"][0]["variant"] if answer.status == 200 else answer.status
        for answer in answers
    )


def test_a_challenger_that_fails_is_rolled_back_through_a_pull_request(
    canary: Canary, cli_server: CliServer
) -> None:
    environment = canary.environment
    release = delivery.current_release(canary.repository, environment)
    rows, _ = adult_requests(canary.config, REQUESTS, offset=0)
    since = datetime.now(UTC) - timedelta(seconds=1)
    answers = serve_and_send(canary, release, rows, fail_every=4)
    seen = variants(answers)
    assert set(seen) == {CHAMPION, CHALLENGER, 500}, seen
    assert all(
        answer.json()["error"]["kind"] == "model_failure" for answer in answers if answer.status == 500
    )

    with FakeGitHub(repository=f"example-org/{canary.config.name}", branches=None) as github:
        runner = runner_for(canary, github, cli_server, "failing")
        document, acted = run_monitor_workflow(runner, environment, since)
        # The report counts what the client saw: the champion never failed, every 500 was the challenger's.
        traffic = document["traffic"]
        assert traffic[CHAMPION]["requests"] == seen[CHAMPION] and traffic[CHAMPION]["errors"] == 0
        assert traffic[CHALLENGER]["errors"] == seen[500]
        assert traffic[CHALLENGER]["requests"] == seen[CHALLENGER] + seen[500]
        rate = seen[500] / (seen[CHALLENGER] + seen[500])
        assert traffic[CHALLENGER]["error_rate"] == pytest.approx(rate, abs=1e-6)
        decision = document["decision"]
        assert decision["canary"] == "rollback"
        assert any(
            reason.startswith(f"error rate of the challenger is {rate:.3f}") for reason in decision["reasons"]
        )

        # Its consequence: one pull request into env/<env> that removes the challenger, nothing more.
        assert acted.step("Roll the challenger back").returncode == 0
        assert acted.step("Advance the canary").kind == "skipped"
        [pull] = github.open_pull_requests(base=f"env/{environment}")
        assert pull["head"]["ref"] == f"rollout/{environment}"
        # The report that decided it is in the PR's body.
        assert f"## Monitoring of {environment}: **" in pull["body"]
        assert all(f"- {reason}" in pull["body"] for reason in decision["reasons"])
        after = branch_release(runner, f"rollout/{environment}")
        before = branch_release(runner, f"env/{environment}")
        assert before["rollout"]["challenger"] == canary.challenger
        assert after["rollout"] == {**before["rollout"], "challenger": None, "challenger_weight": 0}
        assert after["model"] == before["model"]
        changed = git(
            runner.remote, "diff", "--name-only", f"env/{environment}", f"rollout/{environment}"
        ).split()
        assert "release.yaml" in changed and all(
            path == "release.yaml" or path.startswith("challenger/") for path in changed
        ), changed


def test_a_healthy_challenger_advances_to_the_next_step_and_labels_come_back(
    canary: Canary, cli_server: CliServer
) -> None:
    environment = canary.environment
    release = delivery.current_release(canary.repository, environment)
    rows, labels = adult_requests(canary.config, REQUESTS, offset=REQUESTS)
    since = datetime.now(UTC) - timedelta(seconds=1)
    answers = serve_and_send(canary, release, rows, fail_every=None, labels=labels)
    assert {answer.status for answer in answers} == {200}
    seen = variants(answers)
    with FakeGitHub(repository=f"example-org/{canary.config.name}", branches=None) as github:
        runner = runner_for(canary, github, cli_server, "healthy")
        document, acted = run_monitor_workflow(runner, environment, since)
        assert (
            document["traffic"][CHALLENGER] | {"requests": seen[CHALLENGER], "errors": 0}
            == document["traffic"][CHALLENGER]
        )
        # Live accuracy per variant, recomputed from what the client was answered and the true labels.
        for variant in (CHAMPION, CHALLENGER):
            mine = [
                (answer.json()["predictions"][0]["label"], label)
                for answer, label in zip(answers, labels, strict=True)
                if answer.json()["predictions"][0]["variant"] == variant
            ]
            figures = document["performance"][variant]
            assert figures["labels"] == len(mine) == seen[variant]
            expected = accuracy_score([truth for _, truth in mine], [given for given, _ in mine])
            assert figures["accuracy"] == pytest.approx(expected, abs=1e-6)
        decision = document["decision"]
        assert decision["canary"] == "advance" and decision["next_weight"] == STEPS[1]

        assert acted.step("Advance the canary").returncode == 0
        assert acted.step("Roll the challenger back").kind == "skipped"
        [pull] = github.open_pull_requests(base=f"env/{environment}")
        assert pull["head"]["ref"] == f"rollout/{environment}"
        assert f"Next canary weight: **{STEPS[1]}%**" in pull["body"]
        after = branch_release(runner, f"rollout/{environment}")
        before = branch_release(runner, f"env/{environment}")
        assert after["rollout"] == {**before["rollout"], "challenger_weight": STEPS[1]}
        changed = git(
            runner.remote, "diff", "--name-only", f"env/{environment}", f"rollout/{environment}"
        ).split()
        assert changed == ["release.yaml"]
