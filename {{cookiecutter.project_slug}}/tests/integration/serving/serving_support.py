"""Helpers of the serving tests: the trained workspace, a `serve` process and an HTTP client for it."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from support.http_client import Answer, post_many

from {{ cookiecutter.package_name }}.config import ProjectConfig
from {{ cookiecutter.package_name }}.contracts.release import ModelReference, Release

SOURCE_DIRECTORY = Path(__file__).resolve().parents[3] / "src"
READY_TIMEOUT_SECONDS = 90
# /feedback always needs a bearer token: every service these tests start accepts this one.
FEEDBACK_TOKEN = "serving-tests-feedback-token"
FEEDBACK_AUTH = {"Authorization": f"Bearer {FEEDBACK_TOKEN}"}


@dataclass(frozen=True)
class Workspace:
    """A project with two registered versions and the held-out rows to send them."""

    root: Path
    config: ProjectConfig
    environment: str
    champion: int
    challenger: int
    champion_digest: str
    rows: list[dict[str, Any]]
    champion_model: Any = field(repr=False)
    challenger_model: Any = field(repr=False)
    challenger_digest: str = ""
    # How `serve` is started: this argument vector (a fork of the warm CLI server, support/cli_server)
    # when given, else a fresh interpreter, `python -m <package>`.
    serve_command: tuple[str, ...] = ()

    def release(self, strategy: str = "direct", weight: int = 0, challenger: bool = True) -> Release:
        return Release.create(
            environment=self.environment,
            model=self.config.mlflow.registered_model,
            version=self.champion,
            artifact_digest=self.champion_digest,
            source_sha="0" * 40,
            data_digest="fixture",
            promoted_from="main",
            policy_pack="standard",
            strategy=strategy,
            challenger=ModelReference(
                name=self.config.mlflow.registered_model,
                version=self.challenger,
                artifact_digest=self.challenger_digest,
                source_sha="0" * 40,
                data_digest="fixture",
            )
            if challenger and strategy != "direct"
            else None,
            challenger_weight=weight,
        )


def json_rows(frame) -> list[dict[str, Any]]:
    """Rows as a client sends them: JSON values, missing values as null."""
    return orjson.loads(frame.to_json(orient="records"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Service:
    """A `serve` process on 127.0.0.1 and a small HTTP client for it (one connection per call)."""

    def __init__(self, process: subprocess.Popen, port: int, directory: Path) -> None:
        self.process = process
        self.port = port
        self.directory = directory
        self.answered_not_ready = False  # /health/ready said 503 before it said 200

    @property
    def log_directory(self) -> Path:
        return self.directory / "predictions"

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def post(self, path: str, document: Any, headers: dict[str, str] | None = None) -> Answer:
        return self.request(
            "POST", path, orjson.dumps(document), {"Content-Type": "application/json", **(headers or {})}
        )

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def metrics(self) -> dict[str, float]:
        """Every sample of /metrics as 'name{labels}' -> value."""
        samples = {}
        for line in self.get("/metrics").body.decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def send_many(
        self, requests: list[tuple[str, Any, dict[str, str]]], concurrency: int = 8
    ) -> list[Answer | None]:
        """POST each (path, document, headers) over `concurrency` keep-alive connections, in order.

        A request that fails at the connection level (the server went away) answers None.
        """
        return post_many(self.port, requests, concurrency)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_service(
    workspace: Workspace,
    directory: Path,
    release: Release | None,
    settings: dict[str, Any] | None = None,
    fresh: bool = False,
) -> Service:
    """Write the environment's settings and the release, start `serve`, wait until ready.

    Without a release, `serve` reads it from the env/<name> branch of the workspace's git remote.
    `serve` runs as the workspace's `serve_command` says, or in a fresh interpreter when `fresh` (for
    the tests on what the process itself has loaded).
    """
    directory.mkdir(parents=True, exist_ok=True)
    environment_file = workspace.root / "environments" / f"{workspace.environment}.yaml"
    environment_file.parent.mkdir(exist_ok=True)
    settings = dict(settings or {})
    serving = {
        "prediction_log": {"directory": str(directory / "predictions")},
        "feedback_database_url": f"sqlite:///{directory / 'feedback.db'}",
        **settings.pop("serving", {}),
    }
    document = {"serving": serving, **settings}
    environment_file.write_text(yaml.safe_dump(document))
    release_arguments = []
    if release is not None:
        release_file = directory / "release.yaml"
        release_file.write_text(release.to_yaml())
        release_arguments = ["--release", str(release_file)]
    port = free_port()
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SOURCE_DIRECTORY), os.environ.get("PYTHONPATH")])),
    }
    environment.pop("MLFLOW_TRACKING_URI", None)
    environment.setdefault("MLOPS_FEEDBACK_TOKEN", FEEDBACK_TOKEN)
    package = "{{ cookiecutter.package_name }}"
    launcher = (
        workspace.serve_command if workspace.serve_command and not fresh else (sys.executable, "-m", package)
    )
    command = [*launcher, "--config", str(workspace.root / "project.yaml"), "serve"]
    command += ["--env", workspace.environment, *release_arguments, "--port", str(port)]
    stderr = (directory / "stderr.txt").open("wb")
    process = subprocess.Popen(
        command, cwd=workspace.root, env=environment, stdout=subprocess.DEVNULL, stderr=stderr
    )
    service = Service(process, port, directory)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}: {read_stderr(directory)}")
        try:
            status = service.get("/health/ready").status
        except OSError:
            status = None
        if status == 200:
            return service
        service.answered_not_ready = service.answered_not_ready or status == 503
        time.sleep(0.1)
    service.stop(signal.SIGKILL)
    raise AssertionError(f"serve was not ready within {READY_TIMEOUT_SECONDS} s: {read_stderr(directory)}")


def read_stderr(directory: Path) -> str:
    return (directory / "stderr.txt").read_text(errors="replace")[-3000:]
