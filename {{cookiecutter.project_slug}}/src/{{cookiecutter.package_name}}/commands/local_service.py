"""The end of the local loop: serve an environment on 127.0.0.1 and check its answers against the registry.

`serve` runs in its own process, exactly as `make serve` or a container starts it; held-out rows go
through real HTTP, and every answer must equal what the registry's copy of the version that answered
predicts for the same row.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from {{ cookiecutter.package_name }}.config import ProjectConfig
from {{ cookiecutter.package_name }}.errors import ProjectError
from {{ cookiecutter.package_name }}.io.registry import session

READY_TIMEOUT_SECONDS = 180
BATCH_ROWS = 100


class ServiceCheckError(ProjectError):
    """The local service did not start, or answered differently from the registry's models."""


@dataclass(frozen=True)
class ServiceCheck:
    url: str
    rows: int
    versions: dict[int, int]  # version -> rows it answered
    example: dict[str, Any]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _call(url: str, document: Any = None, timeout: float = 30) -> tuple[int, Any]:
    data = None if document is None else json.dumps(document).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def start(config_file: Path, root: Path, environment: str, port: int, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "{{ cookiecutter.package_name }}", "--config", str(config_file)]
    command += ["serve", "--env", environment, "--port", str(port)]
    # /feedback always needs a bearer token; the check needs none, so a throwaway one will do.
    environment = {**os.environ}
    environment.setdefault("MLOPS_FEEDBACK_TOKEN", secrets.token_urlsafe(24))
    with log.open("wb") as stream:
        return subprocess.Popen(command, cwd=root, stdout=stream, stderr=subprocess.STDOUT, env=environment)


def wait_until_ready(process: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
            raise ServiceCheckError(f"serve exited with {process.returncode}: {' | '.join(tail)}")
        try:
            status, _ = _call(f"{url}/health/ready", timeout=2)
        except OSError:
            status = None
        if status == 200:
            return
        time.sleep(0.2)
    raise ServiceCheckError(f"{url} was not ready after {READY_TIMEOUT_SECONDS} s (its log: {log})")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def check_answers(config: ProjectConfig, url: str, frame) -> tuple[dict[int, int], dict[str, Any]]:
    """Send `frame`'s rows to /predict and compare every answer with the registry model's prediction."""
    records = json.loads(frame.to_json(orient="records"))
    answers: dict[int, list[tuple[int, str]]] = {}  # version -> (row, label answered)
    for first in range(0, len(records), BATCH_ROWS):
        status, document = _call(f"{url}/predict", {"instances": records[first : first + BATCH_ROWS]})
        if status != 200:
            raise ServiceCheckError(f"POST {url}/predict answered {status}: {document}")
        for offset, prediction in enumerate(document["predictions"]):
            answers.setdefault(int(prediction["model_version"]), []).append(
                (first + offset, str(prediction["label"]))
            )
    registry = session(config)
    for version, rows in answers.items():
        expected = registry.load_model(version).predict(frame.iloc[[row for row, _ in rows]])
        for (row, label), wanted in zip(rows, expected, strict=True):
            if label != str(wanted):
                raise ServiceCheckError(
                    f"row {row}: the service answered {label!r} from version {version}, "
                    f"the registry's version {version} predicts {wanted!r}"
                )
    return {version: len(rows) for version, rows in sorted(answers.items())}, records[0]


def serve_and_check(config: ProjectConfig, config_file: Path, environment: str, frame) -> ServiceCheck:
    """Start `serve` for `environment`, check every answer for `frame`'s rows, stop it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = config.root / "logs" / f"serve-{environment}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    process = start(config_file.resolve(), config.root, environment, port, log)
    try:
        wait_until_ready(process, url, log)
        versions, example = check_answers(config, url, frame)
    finally:
        stop(process)
    return ServiceCheck(url, len(frame), versions, example)


def curl_example(url: str, row: dict[str, Any]) -> str:
    body = json.dumps({"instances": [row]}).replace("'", "'\\''")
    return f"curl -s {url}/predict -H 'Content-Type: application/json' -d '{body}'"
