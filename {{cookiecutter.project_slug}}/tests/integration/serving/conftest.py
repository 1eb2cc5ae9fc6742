"""One trained registry per run (champion and challenger), and real services on 127.0.0.1.

The champion and the challenger are trained on the fixture data with different splits, so they
disagree on some rows. They are trained once for the whole run, whatever the number of xdist workers
(`built_once`); each worker's session works in a copy of that project whose MLflow store points at the
one set of artifacts, which nothing here writes to. Each test module starts the service it needs
(`serve` in a separate process, real uvicorn, real HTTP) and shares it between its tests.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures import install_fixture_project
from serving_support import Service, Workspace, built_once, json_rows, shared_directory, start_service

from {{ cookiecutter.package_name }}.commands.training import train
from {{ cookiecutter.package_name }}.config import load_config
from {{ cookiecutter.package_name }}.contracts.release import Release
from {{ cookiecutter.package_name }}.io.registry import Registry
from {{ cookiecutter.package_name }}.pipeline.data import load_dataset
from {{ cookiecutter.package_name }}.pipeline.training import split_dataset

VERSIONS_FILE = "versions.json"


def train_champion_and_challenger(root: Path) -> None:
    """The fixture project in `root` with two registered versions; their numbers in versions.json."""
    config_file = install_fixture_project(root)
    champion = train(load_config(config_file))
    original = config_file.read_text()
    config_file.write_text(original.replace("random_state: 42", "random_state: 7"))
    challenger = train(load_config(config_file), force=True)
    config_file.write_text(original)
    versions = {"champion": champion.registered.version, "challenger": challenger.registered.version}
    (root / VERSIONS_FILE).write_text(json.dumps(versions))


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    trained = built_once(
        shared_directory(tmp_path_factory, "serving-registry"), train_champion_and_challenger
    )
    root = tmp_path_factory.mktemp("serving")
    # Everything but the artifacts, which the copied store names by their absolute location.
    shutil.copytree(trained, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("mlartifacts", ".built"))
    versions = json.loads((root / VERSIONS_FILE).read_text())
    config = load_config(root / "project.yaml")
    dataset = load_dataset(config.data, config.data_path)
    held_out = split_dataset(dataset, config.model).test_features
    with Registry(config) as registry:
        digest = registry.artifact_digest(versions["champion"])
        challenger_digest = registry.artifact_digest(versions["challenger"])
        # The pipelines as the registry holds them: what `serve` loads.
        champion_model = registry.load_model(versions["champion"])
        challenger_model = registry.load_model(versions["challenger"])
    return Workspace(
        root=root,
        config=config,
        environment=config.environments[0],
        champion=versions["champion"],
        challenger=versions["challenger"],
        champion_digest=digest,
        rows=json_rows(held_out),
        champion_model=champion_model,
        challenger_model=challenger_model,
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
