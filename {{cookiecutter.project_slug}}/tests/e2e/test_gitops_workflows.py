"""The GitOps loop run as the workflows run it, with real parts.

The commands executed are the `run:` steps of the project's workflow files (see support/workflow_runner),
against a bare git repository as the remote, a real `mlflow server` on 127.0.0.1, and a local HTTP server
standing in for GitHub's REST API, reached through GITHUB_API_URL as on Actions.

The session trains one version by running model-report.yml on main once; the tests that only promote
it start from a copy of that remote (same commits), with their own GitHub stand-in. The tests that move
aliases train under a registered model of their own. Console scripts are forks of a warm interpreter
(support/cli_server), except in the tests on `process_loop`, which prove the console script itself.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import yaml
from fixtures import FIXTURE_CONFIG_FILE, fixture_config, install_fixture_project
from support.cli_server import CliServer
from support.github_api import FakeGitHub
from support.workflow_runner import JobResult, WorkflowRunner, actions_environment

pytestmark = pytest.mark.e2e

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
)
AUTHOR = ("-c", "user.name=dev", "-c", "user.email=dev@example.com")
# These tests exercise the delivery mechanics, whatever pack the project was generated with: a
# purpose-built policy that the demo model passes (the deny test tightens it on purpose).
PERMISSIVE = {
    "min_metrics": {"roc_auc": 0.6},
    "max_fairness_difference": {},
    "min_fairness_ratio": {},
    "max_regression": {"roc_auc": 0.05},
}
_clones = itertools.count(1)


def git(cwd: Path, *arguments: str) -> str:
    completed = subprocess.run(["git", *arguments], cwd=cwd, capture_output=True, text=True, check=True)
    return completed.stdout.strip()


def commit_on_main(remote: Path, message: str, changes: dict[str, str]) -> None:
    """Push a commit to main of `remote` that writes `changes` (path -> text) into the project."""
    clone = remote.parent / f"work-{next(_clones)}"
    git(remote.parent, "clone", "--quiet", str(remote), str(clone))
    for name, text in changes.items():
        (clone / name).write_text(text, encoding="utf-8")
    git(clone, *AUTHOR, "commit", "--quiet", "-am", message)
    git(clone, "push", "--quiet", "origin", "main")
    shutil.rmtree(clone)


def thresholds(**limits: dict) -> str:
    """The project's thresholds.yaml with PERMISSIVE limits (and `limits`) for every environment."""
    document = yaml.safe_load((PROJECT_ROOT / "policies" / "thresholds.yaml").read_text(encoding="utf-8"))
    document.update(default={**PERMISSIVE, **limits}, environments={})
    return yaml.safe_dump(document, sort_keys=False)


def renamed_model(project_yaml: str, old: str, new: str) -> str:
    return project_yaml.replace(f"registered_model: {old}", f"registered_model: {new}")


@pytest.fixture(scope="session")
def config():
    return fixture_config()


@pytest.fixture(scope="session")
def seed_remote(tmp_path_factory: pytest.TempPathFactory, config) -> tuple[Path, str]:
    """A bare remote holding the project on main, with a registered model name of its own."""
    root = tmp_path_factory.mktemp("seed")
    seed = root / "seed"
    shutil.copytree(PROJECT_ROOT, seed, ignore=IGNORED)
    install_fixture_project(seed)
    remote = root / "seed.git"
    git(root, "init", "--quiet", "--bare", "-b", "main", str(remote))
    git(seed, "init", "--quiet", "-b", "main")
    git(seed, "add", "--all")
    git(seed, *AUTHOR, "commit", "--quiet", "-m", "project")
    git(seed, "push", "--quiet", str(remote), "main")
    model = f"{config.mlflow.registered_model}-shared".replace("_", "-")
    project_file = seed / "project.yaml"
    project_file.write_text(renamed_model(project_file.read_text(), config.mlflow.registered_model, model))
    (seed / "policies" / "thresholds.yaml").write_text(thresholds())
    git(seed, *AUTHOR, "commit", "--quiet", "-am", "model name and policy for the tests")
    git(seed, "push", "--quiet", str(remote), "main")
    return remote, model


@dataclass
class Loop:
    runner: WorkflowRunner
    github: FakeGitHub
    model: str
    artifacts: Path

    @property
    def tracking_uri(self) -> str:
        return self.runner.environment["MLFLOW_TRACKING_URI"]


def start_loop(
    root: Path, seed: Path, model: str, mlflow_server, config, cli_server: CliServer | None
) -> Loop:
    """A copy of the seed remote, a fresh GitHub stand-in, and a workflow runner over them."""
    tracking_uri, artifacts = mlflow_server
    remote = root / "remote.git"
    git(root, "clone", "--quiet", "--bare", str(seed), str(remote))
    github = FakeGitHub(repository=f"example-org/{config.name}").start()
    workspaces = root / "runs"
    workspaces.mkdir()
    environment = actions_environment(github, MLFLOW_TRACKING_URI=tracking_uri)
    runner = WorkflowRunner(
        project_root=PROJECT_ROOT,
        remote=remote,
        workspace_root=workspaces,
        environment=environment,
        secrets={"MLFLOW_TRACKING_URI": tracking_uri},
        artifacts=root / "artifacts",
        cli_server=cli_server,
    )
    return Loop(runner, github, model, artifacts)


@pytest.fixture(scope="session")
def shared_report(tmp_path_factory, seed_remote, mlflow_server, config, cli_server) -> dict[str, str]:
    """model-report.yml run once on main of the seed remote: the outputs of its report job."""
    remote, model = seed_remote
    loop = start_loop(tmp_path_factory.mktemp("shared"), remote, model, mlflow_server, config, cli_server)
    try:
        return report_on_main(loop.runner).outputs
    finally:
        loop.github.stop()


@pytest.fixture
def loop(tmp_path: Path, seed_remote, mlflow_server, config, cli_server) -> Loop:
    """The seed remote's copy, its GitHub stand-in and a runner whose console scripts are forks."""
    remote, model = seed_remote
    started = start_loop(tmp_path, remote, model, mlflow_server, config, cli_server)
    yield started
    started.github.stop()


@pytest.fixture
def process_loop(tmp_path: Path, seed_remote, mlflow_server, config) -> Loop:
    """The same, with console scripts that start a fresh interpreter, as the installed ones do."""
    remote, model = seed_remote
    started = start_loop(tmp_path, remote, model, mlflow_server, config, None)
    yield started
    started.github.stop()


@pytest.fixture
def own_model(loop: Loop, config) -> Loop:
    """The loop, with main switched to a registered model no other test uses (its aliases move)."""
    project_file = FIXTURE_CONFIG_FILE
    model = f"{config.mlflow.registered_model}-{loop.runner.remote.parent.name[-12:]}".replace("_", "-")
    text = renamed_model(project_file.read_text(), config.mlflow.registered_model, model)
    commit_on_main(loop.runner.remote, "a model of this test's own", {"project.yaml": text})
    loop.model = model
    return loop


def aliases(tracking_uri: str, model: str) -> dict[str, str]:
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    return dict(client.get_registered_model(model).aliases)


def check(result: JobResult) -> JobResult:
    assert result.success, result.log()
    return result


def merge(runner: WorkflowRunner, github: FakeGitHub, head: str, base: str) -> None:
    """What pressing "Merge" does: the base branch takes the head's commit, the PR is closed."""
    [pull] = github.open_pull_requests(head=head, base=base)
    git(runner.remote, "update-ref", f"refs/heads/{base}", git(runner.remote, "rev-parse", head))
    github.merge_pull_request(pull["number"])


def report_on_main(runner: WorkflowRunner) -> JobResult:
    return check(runner.run_job("model-report.yml", "report", "push", "main"))


def promote(runner: WorkflowRunner, environment: str, version: str = "") -> JobResult:
    inputs = {"environment": environment, "version": version}
    return runner.run_job("promote.yml", "promote", "workflow_call", "main", inputs=inputs)


def deploy(runner: WorkflowRunner, environment: str) -> tuple[JobResult, JobResult]:
    branch = f"env/{environment}"
    resolved = check(runner.run_job("deploy.yml", "resolve", "push", branch))
    deployed = runner.run_job("deploy.yml", "deploy", "push", branch, needs={"resolve": resolved.outputs})
    return resolved, deployed


def test_main_to_staging_to_production(own_model: Loop, config) -> None:
    runner, github, model = own_model.runner, own_model.github, own_model.model
    first, *later = config.environments
    reported = report_on_main(runner)
    version = reported.outputs["version"]
    assert reported.outputs["first_environment"] == first
    check(runner.run_job("model-report.yml", "promote", "push", "main", needs={"report": reported.outputs}))
    merge(runner, github, f"promote/{first}", f"env/{first}")
    resolved, deployed = deploy(runner, first)
    assert resolved.outputs["environment"] == first
    check(deployed)
    assert aliases(own_model.tracking_uri, model) == {first: version}
    previous = first
    for environment in later:
        check(
            runner.run_job(
                "deploy.yml",
                "promote-next",
                "push",
                f"env/{previous}",
                needs={"resolve": resolved.outputs, "deploy": {}},
            )
        )
        [pull] = github.open_pull_requests(head=f"promote/{environment}", base=f"env/{environment}")
        assert f"v{version}" in pull["title"]
        merge(runner, github, f"promote/{environment}", f"env/{environment}")
        resolved, deployed = deploy(runner, environment)
        check(deployed)
        previous = environment
    assert aliases(own_model.tracking_uri, model) == dict.fromkeys(config.environments, version)
    release = yaml.safe_load(git(runner.remote, "show", f"env/{config.environments[-1]}:release.yaml"))
    assert release["promotion"]["from"] == (f"env/{config.environments[-2]}" if later else "manual")
    posts = github.requests_to("POST", r"/pulls$")
    assert len(posts) == len(config.environments)
    for request in posts:
        assert set(request.json) >= {"title", "head", "base", "body"}
    last = config.environments[-1]
    again = check(deploy(runner, last)[1])
    assert "nothing to change" in again.log(), "re-running a deploy must be a no-op"
    inputs = {"environment": last}
    check(runner.run_job("release.yml", "release", "workflow_dispatch", "main", inputs=inputs))
    tag = f"model-{model}-v{version}"
    assert git(runner.remote, "rev-parse", f"refs/tags/{tag}") == release["model"]["source_sha"]
    [published] = github.releases.values()
    assert published["tag_name"] == tag and "Model card" in published["body"]


def test_branch_that_names_no_environment_deploys_nothing(process_loop: Loop, config) -> None:
    runner = process_loop.runner
    git(runner.remote, "update-ref", "refs/heads/env/nowhere", git(runner.remote, "rev-parse", "main"))
    resolved = runner.run_job("deploy.yml", "resolve", "push", "env/nowhere")
    assert not resolved.success
    checked = resolved.step("names an environment")
    assert checked.returncode == 2
    message = checked.stderr.strip().splitlines()[-1]
    assert "'nowhere'" in message
    assert all(environment in message for environment in config.environments)
    assert resolved.outputs["environment"] == ""
    assert "Traceback" not in resolved.log()


def test_gate_deny_opens_no_pull_request(process_loop: Loop, shared_report, config) -> None:
    runner, github = process_loop.runner, process_loop.github
    strict = thresholds(min_metrics={"roc_auc": 0.999})
    commit_on_main(runner.remote, "strict", {"policies/thresholds.yaml": strict})
    denied = promote(runner, config.environments[0], shared_report["version"])
    assert not denied.success
    assert "minimum 0.999" in denied.log()
    assert github.requests_to("POST", r"/pulls$") == []
    assert not git(runner.remote, "branch", "--list", f"promote/{config.environments[0]}")


def test_rerun_updates_the_same_pull_request(loop: Loop, shared_report, config) -> None:
    runner, github = loop.runner, loop.github
    first = config.environments[0]
    version = shared_report["version"]
    check(promote(runner, first, version))
    check(promote(runner, first, version))
    assert len(github.open_pull_requests(head=f"promote/{first}", base=f"env/{first}")) == 1
    assert len(github.requests_to("POST", r"/pulls$")) == 1
    assert len(github.requests_to("PATCH", r"/pulls/\d+$")) == 1


def test_api_answering_500_then_201_succeeds_after_a_retry(loop: Loop, shared_report, config) -> None:
    runner, github = loop.runner, loop.github
    first = config.environments[0]
    github.fail_next("POST", r"/pulls$", 500)
    check(promote(runner, first, shared_report["version"]))
    assert [request.method for request in github.requests_to("POST", r"/pulls$")] == ["POST", "POST"]
    assert len(github.open_pull_requests(head=f"promote/{first}")) == 1


def test_tampered_artifact_is_refused_and_rollback_restores_the_champion(own_model: Loop, config) -> None:
    runner, github, model = own_model.runner, own_model.github, own_model.model
    first = config.environments[0]
    tracking_uri = own_model.tracking_uri
    champion = report_on_main(runner).outputs["version"]
    check(promote(runner, first, champion))
    merge(runner, github, f"promote/{first}", f"env/{first}")
    check(deploy(runner, first)[1])
    # A new commit on main, so the next report trains a new version rather than finding this one.
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    commit_on_main(runner.remote, "a change on main", {"README.md": readme + "\nA change.\n"})
    challenger = report_on_main(runner).outputs["version"]
    assert challenger != champion
    check(promote(runner, first, challenger))
    merge(runner, github, f"promote/{first}", f"env/{first}")
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    source = client.get_model_version(model, challenger).source
    logged_model = client.get_logged_model(source.removeprefix("models:/"))
    stored = next(
        path
        for path in own_model.artifacts.rglob("*")
        if path.is_file() and logged_model.model_id in str(path) and path.suffix in {".skops", ".pkl"}
    )
    original = stored.read_bytes()
    stored.write_bytes(original + b"tampered")
    refused = deploy(runner, first)[1]
    assert not refused.success
    assert "refusing to deploy" in refused.log()
    assert aliases(tracking_uri, model) == {first: champion}
    stored.write_bytes(original)
    check(deploy(runner, first)[1])
    assert aliases(tracking_uri, model) == {first: challenger}
    check(
        runner.run_job("rollback.yml", "rollback", "workflow_dispatch", "main", inputs={"environment": first})
    )
    [pull] = github.open_pull_requests(head=f"rollback/{first}", base=f"env/{first}")
    assert f"v{champion}" in pull["title"]
    merge(runner, github, f"rollback/{first}", f"env/{first}")
    check(deploy(runner, first)[1])
    assert aliases(tracking_uri, model) == {first: champion}


def test_racing_promotions_end_with_one_pull_request(loop: Loop, shared_report, config) -> None:
    runner, github = loop.runner, loop.github
    first = config.environments[0]
    version = shared_report["version"]
    results: list[JobResult] = []
    racers = [
        threading.Thread(target=lambda: results.append(promote(runner, first, version))) for _ in range(2)
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert len(results) == 2, "both promotions ran to the end"
    assert any(result.success for result in results), results[0].log()
    assert len(github.open_pull_requests(head=f"promote/{first}", base=f"env/{first}")) == 1
    release = yaml.safe_load(git(runner.remote, "show", f"promote/{first}:release.yaml"))
    assert release["model"]["version"] == int(version)
    base = git(runner.remote, "rev-parse", f"env/{first}")
    assert git(runner.remote, "rev-parse", f"promote/{first}~1") == base
