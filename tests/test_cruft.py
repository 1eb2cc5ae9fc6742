"""cruft creates a project from the template (as a git repository), sees it up to date, and updates it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEMPLATE_ROOT, tool_environment

IGNORED = shutil.ignore_patterns(".git", ".venv", "build", "__pycache__", ".pytest_cache", ".ruff_cache")
IDENTITY = ["-c", "user.name=Template", "-c", "user.email=template@example.com"]
PROJECT_TEMPLATE = "{{cookiecutter.project_slug}}"


def git(*arguments: str, cwd: Path) -> str:
    result = subprocess.run(["git", *IDENTITY, *arguments], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"git {' '.join(arguments)}: {result.stdout}{result.stderr}"
    return result.stdout


def make_template_repository(parent: Path) -> Path:
    """The working tree of the template committed to a fresh git repository, as cruft expects."""
    repository = parent / "template"
    shutil.copytree(TEMPLATE_ROOT, repository, ignore=IGNORED)
    git("init", "-q", "-b", "main", cwd=repository)
    git("add", "--all", cwd=repository)
    git("commit", "-qm", "template", cwd=repository)
    return repository


@pytest.fixture(scope="module")
def template_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template_repository(tmp_path_factory.mktemp("template"))


def cruft(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cruft", *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=tool_environment(),
        check=False,
    )


def cruft_create(template: Path, output: Path) -> Path:
    created = cruft("create", str(template), "--no-input", "--output-dir", str(output), cwd=output)
    assert created.returncode == 0, created.stdout + created.stderr
    [project] = [path for path in output.iterdir() if path.is_dir()]
    return project


def test_cruft_create_then_check_passes(template_repository: Path, tmp_path: Path) -> None:
    project = cruft_create(template_repository, tmp_path)
    assert (project / ".cruft.json").is_file()
    assert (project / "policies" / "thresholds.yaml").is_file()
    checked = cruft("check", cwd=project)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "up to date" in checked.stdout.lower()


def test_cruft_create_commits_its_state_first(template_repository: Path, tmp_path: Path) -> None:
    project = cruft_create(template_repository, tmp_path)
    assert git("log", "--format=%H", cwd=project).split() == [git("rev-parse", "HEAD", cwd=project).strip()]
    assert ".cruft.json" in git("ls-tree", "--name-only", "HEAD", cwd=project).split()
    assert git("status", "--porcelain", "--untracked-files=all", cwd=project) == ""
    state = json.loads((project / ".cruft.json").read_text())
    assert state["commit"] == git("rev-parse", "HEAD", cwd=template_repository).strip()


def test_cruft_update_brings_template_changes_and_keeps_the_users_edits(tmp_path: Path) -> None:
    template = make_template_repository(tmp_path)
    output = tmp_path / "projects"
    output.mkdir()
    project = cruft_create(template, output)

    # The team edits its project: the top of project.yaml and its README.
    project_yaml = project / "project.yaml"
    project_yaml.write_text("# Tuned by the churn team.\n" + project_yaml.read_text())
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\nOur own notes.\n")
    git("commit", "-qam", "Our edits", cwd=project)

    # The template moves on: a generated file and the end of project.yaml change.
    template_gitignore = template / PROJECT_TEMPLATE / ".gitignore"
    template_gitignore.write_text(template_gitignore.read_text() + "reports-cache/\n")
    template_project_yaml = template / PROJECT_TEMPLATE / "project.yaml"
    template_project_yaml.write_text(template_project_yaml.read_text() + "# Template note: second release.\n")
    git("commit", "-qam", "Template: second release", cwd=template)
    second_commit = git("rev-parse", "HEAD", cwd=template).strip()

    stale = cruft("check", cwd=project)
    assert stale.returncode != 0, stale.stdout + stale.stderr

    updated = cruft("update", "-y", cwd=project)
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "good work" in updated.stdout.lower(), updated.stdout + updated.stderr

    assert (project / ".gitignore").read_text().endswith("reports-cache/\n")
    text = project_yaml.read_text()
    assert text.startswith("# Tuned by the churn team.\n")
    assert text.endswith("# Template note: second release.\n")
    assert readme.read_text().endswith("\nOur own notes.\n")
    assert not list(project.rglob("*.rej"))
    changed = {line[3:] for line in git("status", "--porcelain", cwd=project).splitlines()}
    assert changed == {".cruft.json", ".gitignore", "project.yaml"}
    assert json.loads((project / ".cruft.json").read_text())["commit"] == second_commit

    git("commit", "-qam", "Update from the template", cwd=project)
    checked = cruft("check", cwd=project)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "up to date" in checked.stdout.lower()
