"""A git checkout with a bare repository as its `origin`, for tests of the git layer."""

from __future__ import annotations

import subprocess
from pathlib import Path

from {{ cookiecutter.package_name }}.io.git import Repository


def git(cwd: Path, *arguments: str) -> str:
    return subprocess.run(
        ["git", *arguments], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def clone_with_remote(directory: Path) -> Repository:
    """`directory/clone`, one commit on main, pushed to the bare `directory/remote.git`."""
    remote = directory / "remote.git"
    git(directory, "init", "--quiet", "--bare", "-b", "main", str(remote))
    clone = directory / "clone"
    git(directory, "clone", "--quiet", str(remote), str(clone))
    (clone / "README.md").write_text("code\n")
    git(clone, "add", "README.md")
    git(clone, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "code")
    git(clone, "push", "--quiet", "origin", "main")
    return Repository(clone)
