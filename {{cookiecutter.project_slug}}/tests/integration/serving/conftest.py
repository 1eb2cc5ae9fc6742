"""One trained workspace per session (champion and challenger), and real services on 127.0.0.1.

The champion and the challenger are trained on the fixture data with different splits, so they
disagree on some rows. Each test module starts the service it needs (`serve` in a separate process,
real uvicorn, real HTTP) and shares it between its tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fixtures import install_fixture_project
from serving_support import Service, Workspace, json_rows, start_service

from {{ cookiecutter.package_name }}.commands.training import train
from {{ cookiecutter.package_name }}.config import load_config
from {{ cookiecutter.package_name }}.contracts.release import Release
from {{ cookiecutter.package_name }}.io.registry import Registry
from {{ cookiecutter.package_name }}.pipeline.data import load_dataset
from {{ cookiecutter.package_name }}.pipeline.training import split_dataset


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("serving")
    config_file = install_fixture_project(root)
    config = load_config(config_file)
    champion = train(config)
    original = config_file.read_text()
    config_file.write_text(original.replace("random_state: 42", "random_state: 7"))
    challenger = train(load_config(config_file), force=True)
    config_file.write_text(original)
    config = load_config(config_file)
    dataset = load_dataset(config.data, config.data_path)
    held_out = split_dataset(dataset, config.model).test_features
    with Registry(config) as registry:
        digest = registry.artifact_digest(champion.registered.version)
        challenger_digest = registry.artifact_digest(challenger.registered.version)
    return Workspace(
        root=root,
        config=config,
        environment=config.environments[0],
        champion=champion.registered.version,
        challenger=challenger.registered.version,
        champion_digest=digest,
        rows=json_rows(held_out),
        champion_model=champion.model,
        challenger_model=challenger.model,
        challenger_digest=challenger_digest,
    )


@pytest.fixture(scope="module")
def service_factory(workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Start services for one module; every one still running is stopped when the module ends."""
    started: list[Service] = []

    def start(release: Release, settings: dict[str, Any] | None = None) -> Service:
        service = start_service(workspace, tmp_path_factory.mktemp("service"), release, settings)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()
