"""The run's trained champion and challenger (support/trained_pair), and real services on 127.0.0.1.

Each worker's session works in its own copy of the trained project. Each test module starts the
service it needs (`serve` in a separate process, real uvicorn, real HTTP) and shares it between its
tests. That process is a fork of the warm CLI server (support/cli_server), which passes on the signals
it is sent, except where a test looks at what the process itself loaded: those start a fresh
interpreter.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from serving_support import Service, Workspace, json_rows, start_service
from support.trained_pair import copy_of_trained_pair

from {{ cookiecutter.package_name }}.config import load_config
from {{ cookiecutter.package_name }}.contracts.release import Release
from {{ cookiecutter.package_name }}.io.registry import Registry
from {{ cookiecutter.package_name }}.pipeline.data import load_dataset
from {{ cookiecutter.package_name }}.pipeline.training import split_dataset


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory, mlops_command: tuple[str, ...]) -> Workspace:
    pair = copy_of_trained_pair(tmp_path_factory, "serving")
    config = load_config(pair.root / "project.yaml")
    dataset = load_dataset(config.data, config.data_path)
    held_out = split_dataset(dataset, config.model).test_features
    with Registry(config) as registry:
        digest = registry.artifact_digest(pair.champion)
        challenger_digest = registry.artifact_digest(pair.challenger)
        # The pipelines as the registry holds them: what `serve` loads.
        champion_model = registry.load_model(pair.champion)
        challenger_model = registry.load_model(pair.challenger)
    return Workspace(
        root=pair.root,
        config=config,
        environment=config.environments[0],
        champion=pair.champion,
        challenger=pair.challenger,
        champion_digest=digest,
        rows=json_rows(held_out),
        champion_model=champion_model,
        challenger_model=challenger_model,
        challenger_digest=challenger_digest,
        serve_command=mlops_command,
    )


@pytest.fixture(scope="module")
def service_factory(workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Start services for one module; every one still running is stopped when the module ends."""
    started: list[Service] = []

    def start(release: Release, settings: dict[str, Any] | None = None, fresh: bool = False) -> Service:
        service = start_service(workspace, tmp_path_factory.mktemp("service"), release, settings, fresh)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()
