"""Run the service under uvicorn (uvloop and httptools when installed), one worker process."""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
from pathlib import Path

from {{ cookiecutter.package_name }}.config import ProjectConfig
from {{ cookiecutter.package_name }}.config.environment import EnvironmentSettings
from {{ cookiecutter.package_name }}.contracts.release import Release
from {{ cookiecutter.package_name }}.serving.routing import RoutingPolicy


def default_experiment_id(release: Release) -> str:
    return f"{release.environment}-v{release.version}-vs-v{release.challenger}"


def service_options(config: ProjectConfig, settings: EnvironmentSettings, release: Release):
    """The service's options: the split from release.yaml, limits and destinations from the environment."""
    from {{ cookiecutter.package_name }}.io.feedback import resolve_database_url
    from {{ cookiecutter.package_name }}.serving.app import ServiceOptions

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
        feedback_url=resolve_database_url(settings.serving.feedback_database_url, Path(config.root)),
        flags={},
    )


def run(service, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM; a failed model load stops the server."""
    import uvicorn

    from {{ cookiecutter.package_name }}.serving.app import create_app

    config = uvicorn.Config(
        create_app(service),
        host=host,
        port=port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        access_log=False,
        log_level=os.environ.get("SERVING_LOG_LEVEL", "warning"),
        timeout_graceful_shutdown=30,
    )
    server = uvicorn.Server(config)

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
