"""One trained workspace for the monitoring tests: a champion and a challenger with evidence bundles
(and so reference profiles), trained on the fixture data with different splits."""

from __future__ import annotations

import pytest
from fixtures import install_fixture_project
from monitoring_support import Workspace

from {{ cookiecutter.package_name }}.commands.evidence import report
from {{ cookiecutter.package_name }}.commands.training import train
from {{ cookiecutter.package_name }}.config import load_config


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("monitoring")
    config_file = install_fixture_project(root)
    config = load_config(config_file)
    champion = train(config)
    report(config, champion.registered.version)
    original = config_file.read_text()
    config_file.write_text(original.replace("random_state: 42", "random_state: 7"))
    challenger = train(load_config(config_file), force=True)
    config_file.write_text(original)
    config = load_config(config_file)
    report(config, challenger.registered.version)
    return Workspace(
        root=root,
        config=config,
        champion=champion.registered.version,
        challenger=challenger.registered.version,
        champion_model=champion.model,
        challenger_model=challenger.model,
    )
