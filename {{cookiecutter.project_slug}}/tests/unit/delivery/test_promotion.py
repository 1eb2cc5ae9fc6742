"""Promotion mechanics against real git repositories: a bare repository as the remote."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.git_remote import clone_with_remote, git

from {{ cookiecutter.package_name }}.delivery.promotion import (
    ensure_environment_branch,
    merge_locally,
    publish_desired_state,
)
from {{ cookiecutter.package_name }}.io.git import Repository, push_authentication

pytestmark = pytest.mark.unit


@pytest.fixture
def repository(tmp_path: Path) -> Repository:
    return clone_with_remote(tmp_path)


def remote_file(repository: Repository, branch: str, path: str) -> str:
    return git(repository.path, "show", f"origin/{branch}:{path}")


def test_environment_branch_starts_empty_and_is_created_once(repository: Repository) -> None:
    ensure_environment_branch(repository, "staging")
    first = git(repository.path, "ls-remote", "origin", "env/staging")
    ensure_environment_branch(repository, "staging")
    assert git(repository.path, "ls-remote", "origin", "env/staging") == first
    repository.fetch()
    assert git(repository.path, "ls-tree", "-r", "origin/env/staging") == ""


def test_published_branch_holds_exactly_the_desired_state(repository: Repository) -> None:
    ensure_environment_branch(repository, "staging")
    state = publish_desired_state(
        repository, "staging", {"release.yaml": "version: 1\n", "a/b.md": "x\n"}, "v1"
    )
    assert state.changed and state.pending and state.branch == "promote/staging"
    assert git(repository.path, "ls-tree", "-r", "--name-only", "origin/promote/staging").split() == [
        "a/b.md",
        "release.yaml",
    ]
    assert git(repository.path, "rev-parse", "origin/promote/staging~1") == git(
        repository.path, "rev-parse", "origin/env/staging"
    )


def test_republishing_the_same_state_pushes_nothing(repository: Repository) -> None:
    ensure_environment_branch(repository, "staging")
    files = {"release.yaml": "version: 1\n"}
    first = publish_desired_state(repository, "staging", files, "v1")
    second = publish_desired_state(repository, "staging", files, "v1")
    assert not second.changed and second.commit == first.commit


def test_state_equal_to_the_environment_is_not_pending(repository: Repository) -> None:
    ensure_environment_branch(repository, "staging")
    publish_desired_state(repository, "staging", {"release.yaml": "version: 1\n"}, "v1")
    merge_locally(repository, "staging")
    again = publish_desired_state(repository, "staging", {"release.yaml": "version: 1\n"}, "v1")
    assert not again.pending


def test_racing_promotions_leave_one_consistent_branch(repository: Repository, tmp_path: Path) -> None:
    other_clone = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", git(repository.path, "remote", "get-url", "origin"), str(other_clone))
    other = Repository(other_clone)
    ensure_environment_branch(repository, "staging")
    publish_desired_state(repository, "staging", {"release.yaml": "version: 1\n"}, "v1")
    publish_desired_state(other, "staging", {"release.yaml": "version: 2\n"}, "v2")
    repository.fetch()
    assert remote_file(repository, "promote/staging", "release.yaml") == "version: 2"
    assert git(repository.path, "rev-list", "--count", "origin/env/staging..origin/promote/staging") == "1"


def test_merge_fast_forwards_the_environment(repository: Repository) -> None:
    ensure_environment_branch(repository, "prod")
    publish_desired_state(repository, "prod", {"release.yaml": "version: 7\n"}, "v7")
    merge_locally(repository, "prod")
    assert remote_file(repository, "env/prod", "release.yaml") == "version: 7"


def test_push_token_becomes_a_transient_header_only_when_given() -> None:
    assert push_authentication({}) == {}
    config = push_authentication({"GITOPS_PUSH_TOKEN": "t0k", "GITHUB_SERVER_URL": "https://github.com"})
    assert config["GIT_CONFIG_KEY_0"] == "http.https://github.com/.extraheader"
    assert config["GIT_CONFIG_VALUE_0"].startswith("AUTHORIZATION: basic ")
    assert "t0k" not in config["GIT_CONFIG_VALUE_0"]
