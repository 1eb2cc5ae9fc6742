"""Run the service under uvicorn (uvloop and httptools when installed): one worker process by
default, or `serving.workers` processes sharing one socket.

Each worker is a process of its own that builds its own service: it loads and verifies the models
itself, batches its own requests and writes its own prediction log files (their names carry the
process id, so two workers never write one file). The workers find what to serve in a small JSON
file named by an environment variable, and share their metrics through prometheus-client's
multiprocess files (see serving/metrics.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import importlib.util
import json
import logging
import os
import signal
import tempfile
from pathlib import Path

from {{ cookiecutter.package_name }}.config import ProjectConfig
from {{ cookiecutter.package_name }}.config.environment import EnvironmentSettings
from {{ cookiecutter.package_name }}.contracts.release import Release
from {{ cookiecutter.package_name }}.serving.routing import RoutingPolicy


def default_experiment_id(release: Release) -> str:
    return f"{release.environment}-v{release.version}-vs-v{release.challenger}"


def service_options(config: ProjectConfig, settings: EnvironmentSettings, release: Release):
    """The service's options: the split from release.yaml, limits and destinations from the environment."""
    from {{ cookiecutter.package_name }}.io.feedback import store_url
    from {{ cookiecutter.package_name }}.io.prediction_log import record_privacy
    from {{ cookiecutter.package_name }}.serving.app import ServiceOptions
    from {{ cookiecutter.package_name }}.serving.auth import access_rules

    policy = RoutingPolicy(
        strategy=release.strategy,
        challenger_weight=release.challenger_weight,
        has_challenger=release.challenger is not None,
        shadow_fraction=settings.rollout.shadow_fraction,
        experiment_id=(settings.rollout.experiment_id or default_experiment_id(release))
        if release.strategy == "ab"
        else None,
    )
    log_directory = settings.serving.prediction_log.directory
    return ServiceOptions(
        environment=release.environment,
        policy=policy,
        max_request_rows=settings.serving.max_batch_rows,
        max_body_bytes=settings.serving.max_body_bytes,
        batch_window_seconds=settings.serving.batch_window_ms / 1000,
        predict_batch_rows=settings.serving.predict_batch_rows,
        max_queued_rows=settings.serving.max_queued_rows,
        prediction_log_dir=log_directory if log_directory.is_absolute() else config.root / log_directory,
        prediction_log_max_bytes=settings.serving.prediction_log.max_file_bytes,
        feedback_url=store_url(settings.serving.feedback_database_url, Path(config.root), os.environ),
        flags={},
        access=access_rules(settings.serving.auth, os.environ),
        record_privacy=record_privacy(config.data, settings.serving.prediction_log, os.environ),
        request_timeout_seconds=settings.serving.request_timeout_seconds,
    )


def _uvicorn_options(host: str, port: int) -> dict:
    return {
        "host": host,
        "port": port,
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "http": "httptools" if importlib.util.find_spec("httptools") else "h11",
        "access_log": False,
        "log_level": os.environ.get("SERVING_LOG_LEVEL", "warning"),
        "timeout_graceful_shutdown": 30,
    }


def run(service, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM; a failed model load stops the server."""
    import uvicorn

    from {{ cookiecutter.package_name }}.serving.app import create_app

    app = ServiceLifespan(create_app(service), service)
    server = uvicorn.Server(uvicorn.Config(app, **_uvicorn_options(host, port)))

    def stop(reason: str) -> None:
        logging.getLogger(__name__).error("stopping: %s", reason)
        server.should_exit = True

    service.on_failure = stop
    # uvicorn drains in-flight requests on SIGTERM/SIGINT, then re-raises the signal to the handler that
    # was installed before it; a drained shutdown is a normal end here, so that handler does nothing.
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore(signum: int, frame: object) -> None:
    """A signal that arrives after the graceful shutdown has nothing left to stop."""


WORKER_SPEC = "SERVING_WORKER_SPEC"
WORKER_APP = "{{ cookiecutter.package_name }}.serving.server:worker_app"


def run_workers(
    config_file: Path, release: Release, flag_file: Path | None, workers: int, host: str, port: int
) -> str | None:
    """Serve with `workers` processes until SIGINT or SIGTERM; returns why a worker could not load
    its models (every worker is then stopped), or None after a normal shutdown."""
    import uvicorn

    from {{ cookiecutter.package_name }}.serving.metrics import MULTIPROCESS_DIRECTORY

    with tempfile.TemporaryDirectory(prefix="serving-") as scratch:
        directory = Path(scratch)
        (directory / "metrics").mkdir()
        failure_file = directory / "failure.txt"
        spec = {
            "config": str(Path(config_file).resolve()),
            "release": release.to_yaml(),
            "flag_file": None if flag_file is None else str(Path(flag_file).resolve()),
            "failure_file": str(failure_file),
        }
        (directory / "worker.json").write_text(json.dumps(spec), encoding="utf-8")
        saved = {name: os.environ.get(name) for name in (MULTIPROCESS_DIRECTORY, WORKER_SPEC)}
        # Set before the workers start: prometheus-client picks its value store at import time.
        os.environ[MULTIPROCESS_DIRECTORY] = str(directory / "metrics")
        os.environ[WORKER_SPEC] = str(directory / "worker.json")
        try:
            uvicorn.run(WORKER_APP, factory=True, workers=workers, **_uvicorn_options(host, port))
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        failure = failure_file.read_text(encoding="utf-8").strip() if failure_file.exists() else ""
        return failure or None


def worker_app():
    """The application of one worker process (uvicorn's factory): its own service, from the spec."""
    from {{ cookiecutter.package_name }}.config import load_config
    from {{ cookiecutter.package_name }}.contracts.release import parse_release
    from {{ cookiecutter.package_name }}.io.registry import session
    from {{ cookiecutter.package_name }}.serving.app import PredictionService, create_app
    from {{ cookiecutter.package_name }}.serving.loading import load_release

    spec = json.loads(Path(os.environ[WORKER_SPEC]).read_text(encoding="utf-8"))
    config = load_config(spec["config"])
    release = parse_release(spec["release"], "release.yaml")
    settings = config.environment_settings(release.environment)
    options = service_options(config, settings, release)
    if spec["flag_file"] is not None:
        options = dataclasses.replace(options, flag_file=Path(spec["flag_file"]))
    registry = session(config)
    service = PredictionService(options, lambda: load_release(registry, release))
    return ServiceLifespan(create_app(service), service, True, Path(spec["failure_file"]))


class ServiceLifespan:
    """ASGI wrapper of the service's application, for its lifespan only.

    - Once the models are loaded, the objects alive then (modules and models: about 350,000 with
      MLflow's imports) are frozen out of the garbage collector's reach (`gc.freeze()`): a full
      collection scanned them all, a pause of 150-400 ms on these cores in the middle of requests;
      it now scans only what came after. They live as long as the process anyway.
    - With `hold_start_until_ready` (one worker of several), start-up completes only once the
      worker's models are loaded: uvicorn opens the worker's share of the socket only then, so a
      client never reaches a loading worker beside a ready one (it would answer 503). A failed load
      fails the start-up: the reason goes to `failure_file`, and uvicorn stops every worker instead of
      restarting this one forever.
    - Shutdown marks the worker dead for the multiprocess metrics.
    """

    def __init__(
        self, app, service, hold_start_until_ready: bool = False, failure_file: Path | None = None
    ) -> None:
        self.app = app
        self.service = service
        self.hold_start_until_ready = hold_start_until_ready
        self.failure_file = failure_file
        self._freezing: asyncio.Task | None = None

    async def _until_loaded(self) -> None:
        while not self.service.ready and self.service.failure is None:
            await asyncio.sleep(0.02)
        if self.service.ready:
            gc.freeze()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def relay(message) -> None:
            kind = message["type"]
            if kind == "lifespan.startup.complete" and self.hold_start_until_ready:
                await self._until_loaded()
                if self.service.failure is not None:
                    if self.failure_file is not None:
                        with self.failure_file.open("a", encoding="utf-8") as handle:
                            handle.write(self.service.failure + "\n")
                    await self.service.stop()  # uvicorn sends no shutdown after a failed start-up
                    message = {"type": "lifespan.startup.failed", "message": self.service.failure}
            elif kind == "lifespan.startup.complete":
                self._freezing = asyncio.get_running_loop().create_task(self._until_loaded())
            elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                if self._freezing is not None:
                    self._freezing.cancel()
                from {{ cookiecutter.package_name }}.serving.metrics import mark_worker_dead

                mark_worker_dead()
            await send(message)

        await self.app(scope, receive, relay)
