"""Bad input to `monitor`: one clear line on stderr, exit 2, and nothing written."""

from __future__ import annotations

import pytest
from monitoring_support import Workspace, write_environment

from {{ cookiecutter.package_name }}.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture
def run(workspace: Workspace, tmp_path, capsys):
    out = tmp_path / "out"

    def invoke(*arguments: str) -> tuple[int, str]:
        code = main(
            [
                "--config",
                str(workspace.config.root / "project.yaml"),
                "monitor",
                "--out",
                str(out),
                *arguments,
            ]
        )
        assert not out.exists(), "monitor wrote a report for a bad input"
        return code, capsys.readouterr().err

    return invoke


def test_a_time_that_is_not_iso_8601_is_refused(run, workspace: Workspace) -> None:
    code, error = run("--env", workspace.config.environments[0], "--since", "yesterday")
    assert code == 2
    assert "--since 'yesterday' is not an ISO 8601 time" in error


def test_a_window_that_ends_before_it_starts_is_refused(run, workspace: Workspace) -> None:
    code, error = run(
        "--env", workspace.config.environments[0], "--since", "2026-01-02T00:00:00Z", "--until", "2026-01-01"
    )
    assert code == 2
    assert "is not before --until" in error


def test_an_unknown_environment_is_refused(run) -> None:
    code, error = run("--env", "nowhere")
    assert code == 2
    assert "'nowhere' is not an environment of this project" in error


def test_an_environment_without_a_log_is_refused(run, workspace: Workspace) -> None:
    environment = workspace.config.environments[0]
    write_environment(workspace.config, environment, "logs/never-served")
    code, error = run("--env", environment)
    assert code == 2
    assert "no prediction log in" in error and "never-served" in error
    assert not (workspace.config.root / "logs" / "never-served" / "feedback.db").exists()


def test_a_window_without_records_is_refused(run, workspace: Workspace) -> None:
    from monitoring_support import adult_test_rows, serve_rows

    environment = workspace.config.environments[0]
    write_environment(workspace.config, environment, "logs/old-window")
    features, _ = adult_test_rows(workspace.config)
    serve_rows(workspace, environment, features.head(10))
    code, error = run("--env", environment, "--since", "2020-01-01", "--until", "2020-01-02")
    assert code == 2
    assert "no prediction of" in error


def test_a_release_file_that_is_missing_or_of_another_environment_is_refused(
    run, workspace: Workspace, tmp_path
) -> None:
    from monitoring_support import adult_test_rows, serve_rows
    from support.in_thread_service import registered_release

    environment = workspace.config.environments[0]
    write_environment(workspace.config, environment, "logs/release-check")
    features, _ = adult_test_rows(workspace.config)
    serve_rows(workspace, environment, features.head(10))
    code, error = run("--env", environment, "--release", str(tmp_path / "nowhere.yaml"))
    assert code == 2
    assert f"--release {tmp_path / 'nowhere.yaml'}: no release file" in error
    other = tmp_path / "other.yaml"
    other.write_text(registered_release(workspace.config, "elsewhere", workspace.champion).to_yaml())
    code, error = run("--env", environment, "--release", str(other))
    assert code == 2
    assert f"release.yaml is for 'elsewhere', not {environment!r}" in error
