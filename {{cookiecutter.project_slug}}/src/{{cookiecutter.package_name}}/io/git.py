"""The git operations promotion needs, run with the git command line against a checkout."""

from __future__ import annotations

import base64
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from {{ cookiecutter.package_name }}.errors import ProjectError

BOT_IDENTITY = {
    "GIT_AUTHOR_NAME": "ml-gitops",
    "GIT_AUTHOR_EMAIL": "ml-gitops@users.noreply.github.com",
    "GIT_COMMITTER_NAME": "ml-gitops",
    "GIT_COMMITTER_EMAIL": "ml-gitops@users.noreply.github.com",
}


class GitError(ProjectError):
    """A git command failed; the message carries git's own last line."""


def push_authentication(environment: dict[str, str]) -> dict[str, str]:
    """Git config, passed through the environment, that authenticates to GitHub with GITOPS_PUSH_TOKEN.

    Nothing is written to .git/config (the checkout keeps no credentials); the header is only seen by
    the git process that needs it.
    """
    token = environment.get("GITOPS_PUSH_TOKEN")
    if not token:
        return {}
    server = environment.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    credential = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{server}/.extraheader",
        "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {credential}",
    }


@dataclass(frozen=True)
class Repository:
    """A git checkout and the name of the remote that holds the branches."""

    path: Path
    remote: str = "origin"

    def git(self, *arguments: str, check: bool = True, cwd: Path | None = None) -> str:
        environment = {**os.environ}
        for key, value in BOT_IDENTITY.items():
            environment.setdefault(key, value)
        environment.update(push_authentication(environment))
        result = subprocess.run(
            ["git", *arguments],
            cwd=cwd or self.path,
            capture_output=True,
            text=True,
            env=environment,
            check=False,
        )
        if check and result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise GitError(
                f"git {' '.join(arguments[:2])} failed: {detail[-1] if detail else result.returncode}"
            )
        return result.stdout.strip()

    def fetch(self) -> None:
        self.require_remote()
        self.git("fetch", "--quiet", "--prune", self.remote)

    def require_remote(self) -> None:
        """Fail with what to do when the checkout has no remote of that name."""
        if self.remote not in self.git("remote").split():
            raise GitError(
                f"this checkout has no git remote named {self.remote!r}: promote, deploy, rollback and "
                "release read and push the env/<name> branches there; add the repository with "
                f"`git remote add {self.remote} <URL of the GitHub repository>` (or run `run` for the "
                "local loop, which uses a local remote)"
            )

    def remote_branch_exists(self, branch: str) -> bool:
        return bool(self.git("ls-remote", "--heads", self.remote, branch))

    def remote_ref(self, branch: str) -> str:
        return f"refs/remotes/{self.remote}/{branch}"

    def read_file(self, branch: str, path: str) -> str | None:
        """A file's content on the remote branch (after fetch), or None when absent."""
        result = subprocess.run(
            ["git", "show", f"{self.remote_ref(branch)}:{path}"],
            cwd=self.path,
            capture_output=True,
            text=True,
        )
        return result.stdout if result.returncode == 0 else None

    def file_history(self, branch: str, path: str) -> list[str]:
        """Commits of the remote branch that changed `path`, newest first."""
        output = self.git("log", "--format=%H", self.remote_ref(branch), "--", path)
        return output.splitlines()

    def show(self, commit: str, path: str) -> str:
        return self.git("show", f"{commit}:{path}")

    def head_commit(self) -> str:
        return self.git("rev-parse", "HEAD")


LOCAL_REMOTE = ".gitops-remote.git"
LOCAL_REMOTE_NAME = "gitops-local"


def local_remote(root: Path) -> Repository | None:
    """The checkout at `root` with a bare repository inside the project as its GitOps remote.

    The local loop never touches `origin`: a clone of the hosted repository stays as it is, and its
    environments change only through pull requests.
    """
    repository = Repository(root, remote=LOCAL_REMOTE_NAME)
    if subprocess.run(["git", "rev-parse", "--git-dir"], cwd=root, capture_output=True).returncode != 0:
        return None
    bare = root / LOCAL_REMOTE
    if not bare.exists():
        subprocess.run(["git", "init", "--quiet", "--bare", "-b", "main", str(bare)], check=True)
    if LOCAL_REMOTE_NAME not in repository.git("remote").split():
        repository.git("remote", "add", LOCAL_REMOTE_NAME, str(bare))
    if repository.git("rev-parse", "--verify", "--quiet", "HEAD", check=False):
        repository.git("push", "--quiet", "--force", LOCAL_REMOTE_NAME, "HEAD:refs/heads/main", check=False)
    return repository
