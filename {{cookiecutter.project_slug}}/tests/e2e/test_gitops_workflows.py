"""The GitOps loop run as the workflows run it, with real parts.

The commands executed are the `run:` steps of the project's workflow files (see support/workflow_runner),
against a bare git repository as the remote, a real `mlflow server` on 127.0.0.1, and a local HTTP server
standing in for GitHub's REST API, reached through GITHUB_API_URL as on Actions.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
import yaml
from support.github_api import FakeGitHub
from support.workflow_runner import JobResult, WorkflowRunner

from {{ cookiecutter.package_name }}.config import load_config

pytestmark = pytest.mark.e2e

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "{{ cookiecutter.package_name }}"
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def git(cwd: Path, *arguments: str) -> str:
    completed = subprocess.run(["git", *arguments], cwd=cwd, capture_output=True, text=True, check=True)
    return completed.stdout.strip()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory):
    """A real MLflow tracking server with proxied artifacts, on 127.0.0.1."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'store.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("mlflow server did not become ready in 120 s")
    yield url, root / "artifacts"
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def config():
    return load_config(PROJECT_ROOT / "project.yaml")


@pytest.fixture
def loop(tmp_path: Path, mlflow_server, config):
    """A fresh remote holding the project on main, a fresh GitHub stand-in, and a workflow runner."""
    tracking_uri, artifacts = mlflow_server
    seed = tmp_path / "seed"
    shutil.copytree(PROJECT_ROOT, seed, ignore=IGNORED)
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(remote))
    git(seed, "init", "--quiet", "-b", "main")
    git(seed, "add", "--all")
    git(seed, "-c", "user.name=dev", "-c", "user.email=dev@example.com", "commit", "--quiet", "-m", "project")
    git(seed, "push", "--quiet", str(remote), "main")
    # Each test gets its own registered model, so tests do not see each other's aliases.
    model_name = f"{config.mlflow.registered_model}-{tmp_path.name[-12:]}".replace("_", "-")
    project_file = seed / "project.yaml"
    document = project_file.read_text().replace(
        f"registered_model: {config.mlflow.registered_model}", f"registered_model: {model_name}"
    )
    project_file.write_text(document)
    # These tests exercise the delivery mechanics, whatever pack the project was generated with: a
    # purpose-built policy that the demo model passes (the deny test tightens it on purpose).
    permissive = {
        "default": {
            "min_metrics": {"roc_auc": 0.6},
            "max_fairness_difference": {},
            "min_fairness_ratio": {},
            "max_regression": {"roc_auc": 0.05},
        },
        "environments": {},
    }
    (seed / "policies" / "thresholds.yaml").write_text(yaml.safe_dump(permissive))
    git(
        seed,
        "-c",
        "user.name=dev",
        "-c",
        "user.email=dev@example.com",
        "commit",
        "--quiet",
        "-am",
        "model name",
    )
    git(seed, "push", "--quiet", str(remote), "main")
    github = FakeGitHub(repository=f"example-org/{config.name}").start()
    workspaces = tmp_path / "runs"
    workspaces.mkdir()
    environment = {
        key: value for key, value in os.environ.items() if key in {"PATH", "HOME", "LANG", "TMPDIR", "USER"}
    }
    environment.update(
        GITHUB_API_URL=github.url,
        GITHUB_REPOSITORY=github.repository,
        GITHUB_TOKEN=github.expected_token,
        GITHUB_RETRY_BACKOFF="0.01",
        GITHUB_ACTIONS="true",
        MLFLOW_TRACKING_URI=tracking_uri,
    )
    runner = WorkflowRunner(
        project_root=PROJECT_ROOT,
        remote=remote,
        workspace_root=workspaces,
        environment=environment,
        package=PACKAGE,
        secrets={"MLFLOW_TRACKING_URI": tracking_uri},
        artifacts=tmp_path / "artifacts",
    )
    yield runner, github, model_name, artifacts
    github.stop()


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


def test_main_to_staging_to_production(loop, config) -> None:
    runner, github, model, _ = loop
    first, *later = config.environments
    reported = report_on_main(runner)
    version = reported.outputs["version"]
    assert reported.outputs["first_environment"] == first
    check(runner.run_job("model-report.yml", "promote", "push", "main", needs={"report": reported.outputs}))
    merge(runner, github, f"promote/{first}", f"env/{first}")
    resolved, deployed = deploy(runner, first)
    check(deployed)
    assert aliases(runner.environment["MLFLOW_TRACKING_URI"], model) == {first: version}
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
    assert aliases(runner.environment["MLFLOW_TRACKING_URI"], model) == dict.fromkeys(
        config.environments, version
    )
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


def test_gate_deny_opens_no_pull_request(loop, config) -> None:
    runner, github, _, _ = loop
    reported = report_on_main(runner)
    thresholds = runner.remote.parent / "seed" / "policies" / "thresholds.yaml"
    document = yaml.safe_load(thresholds.read_text())
    document["default"]["min_metrics"] = {"roc_auc": 0.999}
    document["environments"] = {}
    thresholds.write_text(yaml.safe_dump(document))
    seed = thresholds.parents[1]
    git(seed, "-c", "user.name=dev", "-c", "user.email=dev@example.com", "commit", "--quiet", "-am", "strict")
    git(seed, "push", "--quiet", str(runner.remote), "main")
    denied = promote(runner, config.environments[0], reported.outputs["version"])
    assert not denied.success
    assert "minimum 0.999" in denied.log()
    assert github.requests_to("POST", r"/pulls$") == []
    assert not git(runner.remote, "branch", "--list", f"promote/{config.environments[0]}")


def test_rerun_updates_the_same_pull_request(loop, config) -> None:
    runner, github, _, _ = loop
    first = config.environments[0]
    version = report_on_main(runner).outputs["version"]
    check(promote(runner, first, version))
    check(promote(runner, first, version))
    assert len(github.open_pull_requests(head=f"promote/{first}", base=f"env/{first}")) == 1
    assert len(github.requests_to("POST", r"/pulls$")) == 1
    assert len(github.requests_to("PATCH", r"/pulls/\d+$")) == 1


def test_api_answering_500_then_201_succeeds_after_a_retry(loop, config) -> None:
    runner, github, _, _ = loop
    first = config.environments[0]
    version = report_on_main(runner).outputs["version"]
    github.fail_next("POST", r"/pulls$", 500)
    check(promote(runner, first, version))
    assert [request.method for request in github.requests_to("POST", r"/pulls$")] == ["POST", "POST"]
    assert len(github.open_pull_requests(head=f"promote/{first}")) == 1


def test_tampered_artifact_is_refused_and_rollback_restores_the_champion(loop, config) -> None:
    runner, github, model, artifact_root = loop
    first = config.environments[0]
    tracking_uri = runner.environment["MLFLOW_TRACKING_URI"]
    champion = report_on_main(runner).outputs["version"]
    check(promote(runner, first, champion))
    merge(runner, github, f"promote/{first}", f"env/{first}")
    check(deploy(runner, first)[1])
    challenger = report_on_main(runner).outputs["version"]
    check(promote(runner, first, challenger))
    merge(runner, github, f"promote/{first}", f"env/{first}")
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    source = client.get_model_version(model, challenger).source
    logged_model = client.get_logged_model(source.removeprefix("models:/"))
    stored = next(
        path
        for path in artifact_root.rglob("*")
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


def test_racing_promotions_end_with_one_pull_request(loop, config) -> None:
    runner, github, _, _ = loop
    first = config.environments[0]
    version = report_on_main(runner).outputs["version"]
    results: list[JobResult] = []
    racers = [
        threading.Thread(target=lambda: results.append(promote(runner, first, version))) for _ in range(2)
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert any(result.success for result in results), results[0].log()
    assert len(github.open_pull_requests(head=f"promote/{first}", base=f"env/{first}")) == 1
    release = yaml.safe_load(git(runner.remote, "show", f"promote/{first}:release.yaml"))
    assert release["model"]["version"] == int(version)
    base = git(runner.remote, "rev-parse", f"env/{first}")
    assert git(runner.remote, "rev-parse", f"promote/{first}~1") == base
