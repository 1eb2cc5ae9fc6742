"""The service's real application under a real uvicorn on 127.0.0.1, in a thread of the test process.

For the tests that control what the models do (a stand-in pipeline, or a registered one made to fail
on purpose): everything else is the service as `serve` runs it, reached over real HTTP.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from unittest import mock

import uvicorn

from {{ cookiecutter.package_name }}.config import ProjectConfig
from {{ cookiecutter.package_name }}.contracts.release import ModelReference, Release
from {{ cookiecutter.package_name }}.io.registry import Registry
from {{ cookiecutter.package_name }}.serving.app import PredictionService, create_app
from {{ cookiecutter.package_name }}.serving.loading import load_release
from {{ cookiecutter.package_name }}.serving.model import ServedModel
from {{ cookiecutter.package_name }}.serving.server import service_options

READY_TIMEOUT_SECONDS = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_app_in_thread(app, is_ready: Callable[[int], bool]) -> tuple[int, Callable[[], None]]:
    """Start `app` on a free port; wait until `is_ready(port)`; returns (port, stop). `stop` returns
    once uvicorn has shut down, the application's lifespan included."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join(20)

    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not _ready(is_ready, port):
        if not thread.is_alive() or time.monotonic() > deadline:
            stop()
            raise AssertionError(f"the service on port {port} did not become ready")
        time.sleep(0.05)
    return port, stop


def _ready(is_ready: Callable[[int], bool], port: int) -> bool:
    try:
        return is_ready(port)
    except OSError:
        return False


def registered_release(
    config: ProjectConfig,
    environment: str,
    champion: int,
    challenger: int | None = None,
    strategy: str = "direct",
    weight: int = 0,
) -> Release:
    """A release of registered versions, their artifact digests read from the registry."""
    with Registry(config) as registry:
        digests = {version: registry.artifact_digest(version) for version in {champion, challenger} - {None}}
    facts = {"source_sha": "0" * 40, "data_digest": "fixture"}
    return Release.create(
        environment=environment,
        model=config.mlflow.registered_model,
        version=champion,
        artifact_digest=digests[champion],
        promoted_from="main",
        policy_pack=config.policy_pack,
        strategy=strategy,
        challenger=None
        if challenger is None
        else ModelReference(
            name=config.mlflow.registered_model,
            version=challenger,
            artifact_digest=digests[challenger],
            **facts,
        ),
        challenger_weight=weight,
        **facts,
    )


@contextmanager
def running_service(
    config: ProjectConfig,
    release: Release,
    environ: dict[str, str] | None = None,
    adjust: Callable[[dict[str, ServedModel]], dict[str, ServedModel]] | None = None,
) -> Iterator[int]:
    """The service of `release` as `serve` builds it (options from environments/<env>.yaml and
    `environ`, the models loaded and verified from the registry, then `adjust`ed when given), on
    127.0.0.1 until the block ends; yields its port. On exit the service has shut down: its log is
    flushed and closed."""
    settings = config.environment_settings(release.environment)
    with mock.patch.dict(os.environ, environ or {}):
        options = service_options(config, settings, release)
    with Registry(config) as registry:
        models = load_release(registry, release)
    if adjust is not None:
        models = adjust(models)
    service = PredictionService(options, lambda: models)
    port, stop = serve_app_in_thread(create_app(service), lambda port: service.ready)
    try:
        yield port
    finally:
        stop()
