"""cruft can create a project from the template (as a git repository) and then sees it up to date."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEMPLATE_ROOT, tool_environment

IGNORED = shutil.ignore_patterns(".git", ".venv", "build", "__pycache__", ".pytest_cache", ".ruff_cache")


@pytest.fixture(scope="module")
def template_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree of the template committed to a fresh git repository, as cruft expects."""
    repository = tmp_path_factory.mktemp("template") / "template"
    shutil.copytree(TEMPLATE_ROOT, repository, ignore=IGNORED)
    commands = [
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "--all"],
        [
            "git",
            "-c",
            "user.name=Template",
            "-c",
            "user.email=template@example.com",
            "commit",
            "-qm",
            "template",
        ],
    ]
    for command in commands:
        subprocess.run(command, cwd=repository, check=True)
    return repository


def cruft(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cruft", *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=tool_environment(),
        check=False,
    )


def test_cruft_create_then_check_passes(template_repository: Path, tmp_path: Path) -> None:
    created = cruft(
        "create", str(template_repository), "--no-input", "--output-dir", str(tmp_path), cwd=tmp_path
    )
    assert created.returncode == 0, created.stdout + created.stderr
    [project] = [path for path in tmp_path.iterdir() if path.is_dir()]
    assert (project / ".cruft.json").is_file()
    assert (project / "policies" / "thresholds.yaml").is_file()
    checked = cruft("check", cwd=project)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "up to date" in checked.stdout.lower()
