"""Promotion order, dirty versions and a missing remote: refused before anything is pushed."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.git_remote import clone_with_remote, git

from {{ cookiecutter.package_name }}.commands import delivery as promotion_commands
from {{ cookiecutter.package_name }}.contracts.release import RELEASE_FILE, Release
from {{ cookiecutter.package_name }}.delivery.promotion import (
    ensure_environment_branch,
    merge_locally,
    publish_desired_state,
)
from {{ cookiecutter.package_name }}.errors import ProjectError
from {{ cookiecutter.package_name }}.io.git import GitError, Repository
from {{ cookiecutter.package_name }}.io.registry import RegisteredVersion

pytestmark = pytest.mark.unit


@pytest.fixture
def repository(tmp_path: Path) -> Repository:
    return clone_with_remote(tmp_path)


@pytest.fixture
def two_environments(project_config):
    return project_config.model_copy(update={"environments": ["staging", "production"]})


def release_of(version: int) -> Release:
    return Release.create(
        environment="staging",
        model="m",
        version=version,
        artifact_digest="sha256:" + "0" * 64,
        source_sha="f" * 40,
        data_digest="d" * 64,
        promoted_from="main",
        policy_pack="standard",
    )


def deploy_to_staging(repository: Repository, version: int) -> None:
    ensure_environment_branch(repository, "staging")
    publish_desired_state(repository, "staging", {RELEASE_FILE: release_of(version).to_yaml()}, "v")
    merge_locally(repository, "staging")


def test_a_later_environment_refuses_a_version_when_the_earlier_one_runs_nothing(
    two_environments, repository: Repository
) -> None:
    repository.fetch()
    with pytest.raises(ProjectError, match="env/staging has no release yet; promote to staging first"):
        promotion_commands.choose_version(two_environments, repository, "production", 1, None)


def test_a_later_environment_refuses_a_version_the_earlier_one_does_not_run(
    two_environments, repository: Repository
) -> None:
    deploy_to_staging(repository, 2)
    with pytest.raises(ProjectError, match=r"version 1 is not what staging runs now \(version 2\)"):
        promotion_commands.choose_version(two_environments, repository, "production", 1, None)
    assert promotion_commands.choose_version(two_environments, repository, "production", 2, None) == (
        2,
        "env/staging",
    )
    assert promotion_commands.choose_version(two_environments, repository, "production", None, None) == (
        2,
        "env/staging",
    )


def test_the_first_environment_takes_a_version_by_number(two_environments, repository) -> None:
    chosen = promotion_commands.choose_version(two_environments, repository, "staging", 5, None)
    assert chosen == (5, "manual")


def test_a_version_trained_from_uncommitted_changes_is_refused() -> None:
    dirty = RegisteredVersion("m", 4, "run", "models:/m/4", {"git_dirty": "true", "git_sha": "a" * 40})
    with pytest.raises(
        promotion_commands.DirtyVersionError, match=r"uncommitted changes.*commit your changes"
    ):
        promotion_commands.refuse_dirty(dirty)
    promotion_commands.refuse_dirty(RegisteredVersion("m", 5, "run", "models:/m/5", {"git_dirty": "false"}))


def test_a_checkout_without_the_remote_says_how_to_add_it(tmp_path: Path) -> None:
    git(tmp_path, "init", "--quiet", "-b", "main")
    with pytest.raises(GitError) as caught:
        Repository(tmp_path).fetch()
    message = str(caught.value)
    assert "no git remote named 'origin'" in message and "git remote add origin" in message
