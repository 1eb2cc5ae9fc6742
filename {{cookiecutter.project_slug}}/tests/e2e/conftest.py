"""Helpers for running the command line as a user does, on copies of the project.

Two ways to run a command, both separate processes with their own working directory and environment:
`cli_process` starts a fresh interpreter (`python -m <package>`, as `make run` does): the tests that
prove the entry point, its exit codes and its stderr use it, at least one per command family. `cli`
forks a warm interpreter that has the dependencies imported already (support/cli_server), saving about
five seconds a call; everything else uses it. One MLflow server and one trained workspace serve the
whole session.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fixtures import install_fixture_project

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "{{ cookiecutter.package_name }}"
EXIT_DENY = 1
Cli = Callable[..., subprocess.CompletedProcess[str]]


def copy_project(directory: Path) -> Path:
    """The fixture project (tests/fixtures): config, data and card text, with the installed policy pack."""
    install_fixture_project(directory)
    return directory


def _environment() -> dict[str, str]:
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "src")}
    environment.pop("MLFLOW_TRACKING_URI", None)
    return environment


def run_cli(workspace: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """A new interpreter running the package as `python -m`, in `workspace`."""
    return subprocess.run(
        [sys.executable, "-m", PACKAGE, "--config", str(workspace / "project.yaml"), *arguments],
        capture_output=True,
        text=True,
        env=_environment(),
        cwd=workspace,
        check=False,
    )


@pytest.fixture(scope="session")
def fast_cli(mlops_command: tuple[str, ...]) -> Cli:
    command = mlops_command

    def run(workspace: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, "--config", str(workspace / "project.yaml"), *arguments],
            capture_output=True,
            text=True,
            env=_environment(),
            cwd=workspace,
            check=False,
        )

    return run


@pytest.fixture
def cli(fast_cli: Cli) -> Cli:
    return fast_cli


@pytest.fixture
def cli_process() -> Cli:
    return run_cli


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return copy_project(tmp_path)


@pytest.fixture(scope="session")
def ran_workspace(tmp_path_factory: pytest.TempPathFactory, fast_cli: Cli) -> Path:
    """A workspace in which `run` has completed once: version 1 trained, reported and gated.

    Shared by every test that reads it; a test that changes a file in it puts the file back.
    """
    workspace = copy_project(tmp_path_factory.mktemp("run"))
    result = fast_cli(workspace, "run")
    assert result.returncode in (0, EXIT_DENY), result.stderr
    assert "models:/" in result.stdout and "Policy decision for" in result.stdout
    return workspace


@pytest.fixture
def restore_files() -> Iterator[Callable[[Path], Path]]:
    """`keep(path)` before changing a file of a shared workspace: it is put back after the test."""
    kept: dict[Path, bytes] = {}

    def keep(path: Path) -> Path:
        kept.setdefault(path, path.read_bytes())
        return path

    yield keep
    for path, content in kept.items():
        path.write_bytes(content)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One real MLflow tracking server with proxied artifacts on 127.0.0.1, for the whole session.

    One uvicorn worker, and no job runner (its huey consumers are several more processes that nothing
    here uses).
    """
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    environment = {**_environment(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
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
        env=environment,
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
