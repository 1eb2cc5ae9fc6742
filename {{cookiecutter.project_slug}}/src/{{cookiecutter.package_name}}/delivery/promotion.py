"""Promotion mechanics: commit an environment's desired state on `promote/<env>` and open its PR.

The branch `promote/<env>` is always cut from `env/<env>`, so the pull request's diff is exactly the
change of the environment. Re-running with the same desired state pushes nothing new and updates the
one open pull request instead of opening another.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from {{ cookiecutter.package_name }}.io.git import GitError, Repository

TREE_SUFFIX = "^" + "{tree}"


def environment_branch(environment: str) -> str:
    return f"env/{environment}"


def promotion_branch(environment: str, purpose: str = "promote") -> str:
    return f"{purpose}/{environment}"


@dataclass(frozen=True)
class PublishedState:
    branch: str
    commit: str
    changed: bool
    pending: bool = True  # the branch differs from the environment: there is something to merge


def ensure_environment_branch(repository: Repository, environment: str) -> None:
    """Create `env/<env>` on the remote as an empty root commit if it does not exist yet."""
    branch = environment_branch(environment)
    if repository.remote_branch_exists(branch):
        return
    empty_tree = repository.git("hash-object", "-t", "tree", "-w", "/dev/null")
    root = repository.git(
        "commit-tree", empty_tree, "-m", f"Create the desired-state branch of {environment}"
    )
    try:
        repository.git("push", "--quiet", repository.remote, f"{root}:refs/heads/{branch}")
    except GitError:
        # A concurrent promotion created it first: that is the outcome wanted.
        if not repository.remote_branch_exists(branch):
            raise


def branch_files(repository: Repository, environment: str) -> dict[str, str]:
    """Every file of `env/<env>` on the remote (after fetch), by path; empty when the branch is new."""
    reference = repository.remote_ref(environment_branch(environment))
    if not repository.git("rev-parse", "--verify", "--quiet", reference, check=False):
        return {}
    paths = repository.git("ls-tree", "-r", "--name-only", reference).splitlines()
    return {path: repository.read_file(environment_branch(environment), path) or "" for path in paths}


def publish_desired_state(
    repository: Repository, environment: str, files: dict[str, str], message: str, purpose: str = "promote"
) -> PublishedState:
    """Commit `files` as the whole content of the environment branch, on `<purpose>/<env>`, and push it."""
    base_branch, head_branch = environment_branch(environment), promotion_branch(environment, purpose)
    repository.fetch()
    base = repository.git("rev-parse", repository.remote_ref(base_branch))
    scratch = Path(tempfile.mkdtemp(prefix="desired-state-"))
    worktree = scratch / "tree"
    repository.git("worktree", "add", "--quiet", "--detach", str(worktree), base)
    try:
        for tracked in repository.git("ls-files", cwd=worktree).splitlines():
            (worktree / tracked).unlink()
        for relative, content in sorted(files.items()):
            target = worktree / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        repository.git("add", "--all", cwd=worktree)
        tree = repository.git("write-tree", cwd=worktree)
        if tree == repository.git("rev-parse", base + TREE_SUFFIX):
            return PublishedState(head_branch, base, changed=False, pending=False)
        current = repository.git(
            "rev-parse", "--verify", "--quiet", repository.remote_ref(head_branch), check=False
        )
        if (
            current
            and repository.git("rev-parse", current + TREE_SUFFIX) == tree
            and repository.git("rev-parse", current + "~1") == base
        ):
            return PublishedState(head_branch, current, changed=False)
        commit = repository.git("commit-tree", tree, "-p", base, "-m", message)
        repository.git("push", "--quiet", "--force", repository.remote, f"{commit}:refs/heads/{head_branch}")
        return PublishedState(head_branch, commit, changed=True)
    finally:
        repository.git("worktree", "remove", "--force", str(worktree), check=False)
        shutil.rmtree(scratch, ignore_errors=True)


def publish_tree(
    repository: Repository, environment: str, source_commit: str, message: str, purpose: str
) -> PublishedState:
    """Commit exactly the tree of `source_commit` on top of `env/<env>` as `<purpose>/<env>` (byte-exact)."""
    base_branch, head_branch = environment_branch(environment), promotion_branch(environment, purpose)
    repository.fetch()
    base = repository.git("rev-parse", repository.remote_ref(base_branch))
    tree = repository.git("rev-parse", source_commit + TREE_SUFFIX)
    if tree == repository.git("rev-parse", base + TREE_SUFFIX):
        return PublishedState(head_branch, base, changed=False, pending=False)
    commit = repository.git("commit-tree", tree, "-p", base, "-m", message)
    repository.git("push", "--quiet", "--force", repository.remote, f"{commit}:refs/heads/{head_branch}")
    return PublishedState(head_branch, commit, changed=True)


def merge_locally(repository: Repository, environment: str, purpose: str = "promote") -> str:
    """Fast-forward `env/<env>` to `<purpose>/<env>` on the remote (what merging the PR does)."""
    repository.fetch()
    head = repository.git("rev-parse", repository.remote_ref(promotion_branch(environment, purpose)))
    repository.git(
        "push", "--quiet", repository.remote, f"{head}:refs/heads/{environment_branch(environment)}"
    )
    repository.fetch()
    return head
