"""The run's trained workspace for the monitoring tests (support/trained_pair): a champion and a
challenger with evidence bundles (and so reference profiles), trained on the fixture data with
different splits; each session works in its own copy."""

from __future__ import annotations

import pytest
from monitoring_support import Workspace
from support.trained_pair import copy_of_trained_pair

from {{ cookiecutter.package_name }}.config import load_config
from {{ cookiecutter.package_name }}.io.registry import Registry


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    pair = copy_of_trained_pair(tmp_path_factory, "monitoring")
    config = load_config(pair.root / "project.yaml")
    with Registry(config) as registry:
        # The pipelines as the registry holds them: what the service loads.
        champion_model = registry.load_model(pair.champion)
        challenger_model = registry.load_model(pair.challenger)
    return Workspace(
        root=pair.root,
        config=config,
        champion=pair.champion,
        challenger=pair.challenger,
        champion_model=champion_model,
        challenger_model=challenger_model,
    )
