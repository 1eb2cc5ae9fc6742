"""One registry session per command: each lookup once, writes kept current; identical training reused."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from fixtures import install_fixture_project

from {{ cookiecutter.package_name }}.commands.training import reusable_version, train
from {{ cookiecutter.package_name }}.config import load_config
from {{ cookiecutter.package_name }}.io import registry
from {{ cookiecutter.package_name }}.io.registry import Registry, training_digest
from {{ cookiecutter.package_name }}.pipeline.data import load_dataset

pytestmark = pytest.mark.integration


def git(cwd: Path, *arguments: str) -> str:
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    return subprocess.run(
        ["git", *identity, *arguments], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def committed_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture project in a git repository of its own, everything committed."""
    root = tmp_path_factory.mktemp("project")
    install_fixture_project(root)
    (root / ".gitignore").write_text("mlflow.db\nmlartifacts/\nreports/\n")
    git(root, "init", "--quiet", "-b", "main")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "-m", "project")
    return root


def test_training_the_same_clean_commit_data_and_configuration_reuses_the_version(
    committed_project: Path,
) -> None:
    config = load_config(committed_project / "project.yaml")
    first = train(config)
    again = train(load_config(committed_project / "project.yaml"))
    assert not first.reused and again.reused
    assert again.registered.version == first.registered.version
    assert again.metrics == pytest.approx(first.metrics)

    forced = train(load_config(committed_project / "project.yaml"), force=True)
    assert not forced.reused and forced.registered.version == first.registered.version + 1

    # Uncommitted changes: nothing is reused, and what trains there is tagged dirty (promotion refuses it).
    path = committed_project / "project.yaml"
    original = path.read_text()
    path.write_text(original.replace("random_state: 42", "random_state: 7"))
    try:
        changed = load_config(path)
        assert reusable_version(changed, load_dataset(changed.data, changed.data_path)) is None
    finally:
        path.write_text(original)


def test_the_training_digest_follows_what_changes_the_model(project_config) -> None:
    reseeded = project_config.model_copy(
        update={"model": project_config.model.model_copy(update={"random_state": 7})}
    )
    renamed = project_config.model_copy(
        update={"data": project_config.data.model_copy(update={"name": "another-name"})}
    )
    assert training_digest(reseeded) != training_digest(project_config)
    assert training_digest(renamed) == training_digest(project_config)


def test_one_session_looks_each_version_alias_and_run_up_once(committed_project: Path) -> None:
    config = load_config(committed_project / "project.yaml")
    with Registry(config) as registry:
        calls: list[str] = []
        client = registry.client
        for name in ("get_model_version", "get_model_version_by_alias", "get_run"):
            original = getattr(client, name)

            def counted(*arguments, _original=original, _name=name):
                calls.append(_name)
                return _original(*arguments)

            setattr(client, name, counted)
        version = registry.version(1)
        assert registry.version(1) is version
        registry.run(version.run_id)
        registry.run(version.run_id)
        assert registry.alias("staging") is None
        assert registry.alias("staging") is None
        assert sorted(calls) == ["get_model_version", "get_model_version_by_alias", "get_run"]

        # Its own writes keep the cache current.
        registry.set_aliases({"staging": 1})
        assert registry.alias("staging").version == 1
        registry.tag_version(1, {"checked": "yes"})
        assert registry.version(1).tags["checked"] == "yes"
        registry.set_aliases({"staging": None})
        assert registry.alias("staging") is None


def test_sessions_on_two_stores_never_write_to_each_other(project_config, tmp_path: Path) -> None:
    def store(name: str):
        settings = project_config.mlflow.model_copy(
            update={"tracking_uri": f"sqlite:///{tmp_path / name}.db", "artifact_root": tmp_path / name}
        )
        return project_config.model_copy(update={"mlflow": settings})

    first, second = store("first"), store("second")
    registry.session(first).client  # noqa: B018 - the first session connects
    registry.session(second)._ensure_experiment()  # then another points MLflow's globals elsewhere
    trained = train(first, force=True)
    assert registry.session(first).version(trained.registered.version).run_id == trained.registered.run_id
    assert Registry(second).find_versions() == []
    assert "MLFLOW_TRACKING_URI" not in os.environ, "a later command would read this session's store"
    registry.close_sessions()
