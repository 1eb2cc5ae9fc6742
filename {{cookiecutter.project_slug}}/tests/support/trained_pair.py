"""One trained project per test run: the fixture project with a champion and a challenger, each with
its evidence bundle, shared by the serving and the monitoring tests.

The two versions are trained on the fixture data with different splits (random_state 42 and 7), so
they disagree on some rows. They are trained once for the whole run, whatever the number of
pytest-xdist workers (`built_once`); each session works in its own copy of that project, whose MLflow
store names the one set of artifacts by their absolute location. Nothing writes to those artifacts.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from fixtures import install_fixture_project

from {{ cookiecutter.package_name }}.commands.evidence import report
from {{ cookiecutter.package_name }}.commands.training import train
from {{ cookiecutter.package_name }}.config import load_config

VERSIONS_FILE = "versions.json"


def shared_directory(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A directory that every pytest-xdist worker of this run sees (their base temps share a parent);
    without xdist, one in the session's own base temp."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name


def built_once(directory: Path, build: Callable[[Path], None]) -> Path:
    """`directory`, filled by `build(directory)` once for the whole run: the first worker to get here
    builds it under an exclusive lock, the others wait for the lock and find it built. A build that
    failed is started again by the next worker."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with (directory.parent / f".{directory.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        built = directory / ".built"
        if not built.exists():
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            build(directory)
            built.touch()
    return directory


def train_and_report_champion_and_challenger(root: Path) -> None:
    """The fixture project in `root` with two reported versions; their numbers in versions.json."""
    config_file = install_fixture_project(root)
    champion = train(load_config(config_file))
    report(load_config(config_file), champion.registered.version)
    original = config_file.read_text()
    config_file.write_text(original.replace("random_state: 42", "random_state: 7"))
    challenger = train(load_config(config_file), force=True)
    config_file.write_text(original)
    report(load_config(config_file), challenger.registered.version)
    versions = {"champion": champion.registered.version, "challenger": challenger.registered.version}
    (root / VERSIONS_FILE).write_text(json.dumps(versions))


@dataclass(frozen=True)
class TrainedPair:
    root: Path  # this session's copy of the project
    champion: int
    challenger: int


def copy_of_trained_pair(tmp_path_factory: pytest.TempPathFactory, name: str) -> TrainedPair:
    """A copy, for this session, of the run's trained project (trained first if no worker has yet)."""
    trained = built_once(
        shared_directory(tmp_path_factory, "trained-pair"), train_and_report_champion_and_challenger
    )
    root = tmp_path_factory.mktemp(name)
    # Everything but the artifacts, which the copied store names by their absolute location.
    shutil.copytree(trained, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("mlartifacts", ".built"))
    versions = json.loads((root / VERSIONS_FILE).read_text())
    return TrainedPair(root, versions["champion"], versions["challenger"])
