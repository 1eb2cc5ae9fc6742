"""Delivery commands: promote, deploy, roll back and release, composed from governance and delivery.

Code lives on main; each environment's desired state lives on its branch `env/<name>`. A model
reaches an environment only through a pull request into that branch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from {{ cookiecutter.package_name }}.commands.evidence import bundle_path, gate, report
from {{ cookiecutter.package_name }}.config import ProjectConfig
from {{ cookiecutter.package_name }}.config.environment import settings_path as settings_file
from {{ cookiecutter.package_name }}.contracts.release import RELEASE_FILE, Release, ReleaseError, parse_release
from {{ cookiecutter.package_name }}.delivery import deploy as deployment
from {{ cookiecutter.package_name }}.delivery import promotion
from {{ cookiecutter.package_name }}.delivery.desired_state import CODEOWNERS, DEPLOY_WORKFLOW, render
from {{ cookiecutter.package_name }}.errors import ProjectError
from {{ cookiecutter.package_name }}.governance import evidence
from {{ cookiecutter.package_name }}.governance.summary import render_evidence_summary, summarise_bundle
from {{ cookiecutter.package_name }}.io import registry
from {{ cookiecutter.package_name }}.io.git import GitError, Repository
from {{ cookiecutter.package_name }}.io.github import GitHubClient

COMMENT_MARKER = "<!-- ml-gitops:model-report -->"


class PromotionDenied(ProjectError):
    """The policy denied the promotion: no branch was pushed and no pull request opened."""


@dataclass(frozen=True)
class PromotionResult:
    environment: str
    version: int
    branch: str
    changed: bool
    pull_request: dict | None
    created: bool


def neighbour(config: ProjectConfig, environment: str, step: int) -> str | None:
    names = config.environments
    if environment not in names:
        raise ProjectError(f"{environment!r} is not an environment of this project ({', '.join(names)})")
    index = names.index(environment) + step
    return names[index] if 0 <= index < len(names) else None


def current_release(repository: Repository, environment: str) -> Release | None:
    text = repository.read_file(promotion.environment_branch(environment), RELEASE_FILE)
    return None if text is None else parse_release(text, f"env/{environment}:{RELEASE_FILE}")


def choose_version(
    config: ProjectConfig, repository: Repository, environment: str, version: int | None, commit: str | None
) -> tuple[int, str]:
    """The version to promote and where it comes from.

    The first environment takes a version given by number or by the commit it was trained from; every
    later environment takes only what the previous one runs now (a `--version` there must name it).
    """
    previous = neighbour(config, environment, -1)
    if previous is None:
        if version is not None:
            return version, "manual"
        if commit is None:
            raise ProjectError(f"promote to {environment}: give --version N or --commit SHA")
        return registry.version_for_commit(config, commit), "main"
    running = current_release(repository, previous)
    if running is None:
        raise ProjectError(
            f"promote to {environment}: env/{previous} has no release yet; promote to {previous} first"
        )
    if version is not None and version != running.version:
        raise ProjectError(
            f"promote to {environment}: version {version} is not what {previous} runs now "
            f"(version {running.version}); an environment only receives what the one before it runs"
        )
    return running.version, f"env/{previous}"


class DirtyVersionError(ProjectError):
    """The version was trained from uncommitted changes: its source commit cannot reproduce it."""


def refuse_dirty(registered: registry.RegisteredVersion) -> None:
    if registered.dirty:
        raise DirtyVersionError(
            f"version {registered.version} was trained from a work tree with uncommitted changes "
            f"(git_dirty=true on commit {registered.tags.get('git_sha', 'unknown')[:12]}): commit your "
            "changes, train again, and promote the new version"
        )


def ensure_bundle(config: ProjectConfig, version: int) -> Path:
    """The version's evidence bundle: local, else the one logged to its MLflow run, else built now.

    On a fresh runner the bundle that the model report built and logged is fetched, so the gate judges
    that evidence (and its manifest), not a rebuild from whatever the checkout holds today.
    """
    directory = bundle_path(config, version)
    if not (directory / evidence.MANIFEST).is_file():
        registered = registry.get_version(config, version)
        if not registry.download_evidence(config, registered.run_id, directory):
            report(config, version)
    return directory


def promote(
    config: ProjectConfig,
    repository: Repository,
    environment: str | None = None,
    version: int | None = None,
    commit: str | None = None,
    github: GitHubClient | None = None,
    merge: bool = False,
) -> PromotionResult:
    """Gate, render and publish the desired state of `environment`, then open or update its PR."""
    environment = environment or config.environments[0]
    neighbour(config, environment, 0)
    repository.fetch()
    version, source = choose_version(config, repository, environment, version, commit)
    running = current_release(repository, environment)
    if source.startswith("env/") and running is not None and running.version >= version:
        # After a rollback of the previous environment: never propose a downgrade downstream.
        return PromotionResult(
            environment, running.version, promotion.promotion_branch(environment), False, None, False
        )
    refuse_dirty(registry.get_version(config, version))
    directory = ensure_bundle(config, version)
    decision = gate(config, version, environment)
    if not decision.integrity.intact:
        raise evidence.EvidenceError(f"the evidence bundle of version {version} does not match its manifest")
    if not decision.decision.allow:
        reasons = "; ".join(decision.decision.reasons)
        raise PromotionDenied(f"promotion of version {version} to {environment} denied: {reasons}")
    registered = registry.get_version(config, version)
    settings = config.environment_settings(environment)
    settings_path = settings_file(config.root, environment)
    release = Release.create(
        environment=environment,
        model=registered.name,
        version=version,
        artifact_digest=deployment.artifact_digest(config, version),
        source_sha=registered.tags.get("git_sha", "unknown"),
        data_digest=registered.tags.get("data_digest", "unknown"),
        promoted_from=source,
        policy_pack=decision.decision.policy_pack,
        strategy=settings.rollout.strategy,
    )
    settings_text = settings_path.read_text(encoding="utf-8")
    summary = render_evidence_summary(summarise_bundle(directory, decision.decision))
    workflow = config.root / DEPLOY_WORKFLOW
    owners = config.root / CODEOWNERS
    files = render(
        release,
        settings_text,
        (directory / "MODEL_CARD.md").read_text(encoding="utf-8"),
        summary,
        workflow.read_text(encoding="utf-8") if workflow.is_file() else None,
        owners.read_text(encoding="utf-8") if owners.is_file() else None,
    )
    promotion.ensure_environment_branch(repository, environment)
    title = f"Promote {registered.name} v{version} to {environment}"
    published = promotion.publish_desired_state(repository, environment, files, title)
    pull_request, created = None, False
    if github is not None and published.pending:
        pull_request, created = github.upsert_pull_request(
            title, published.branch, promotion.environment_branch(environment), summary
        )
    if merge and published.pending:
        promotion.merge_locally(repository, environment)
    return PromotionResult(environment, version, published.branch, published.changed, pull_request, created)


def read_release_of(repository: Repository, environment: str, path: Path | None) -> Release:
    if path is not None:
        return (
            parse_release(path.read_text(encoding="utf-8"), str(path)) if path.is_file() else _missing(path)
        )
    repository.fetch()
    release = current_release(repository, environment)
    if release is None:
        raise ReleaseError(f"env/{environment} holds no {RELEASE_FILE}: nothing to deploy")
    return release


def _missing(path: Path) -> Release:
    raise ReleaseError(f"{path}: no release file")


def deploy(config: ProjectConfig, repository: Repository, environment: str, path: Path | None = None):
    release = read_release_of(repository, environment, path)
    if release.environment != environment:
        raise ReleaseError(f"release.yaml is for {release.environment!r}, not {environment!r}")
    return deployment.deploy(config, release)


def rollback(
    config: ProjectConfig,
    repository: Repository,
    environment: str,
    github: GitHubClient | None,
    merge: bool = False,
) -> tuple[Release, PromotionResult]:
    """Open the pull request restoring the environment's previous desired state."""
    neighbour(config, environment, 0)
    repository.fetch()
    branch = promotion.environment_branch(environment)
    history = repository.file_history(branch, RELEASE_FILE) if repository.remote_branch_exists(branch) else []
    if not history:
        raise ReleaseError(f"env/{environment} has no release to roll back from")
    running = parse_release(repository.show(history[0], RELEASE_FILE), f"env/{environment}:{RELEASE_FILE}")
    earlier = [
        (commit, parse_release(repository.show(commit, RELEASE_FILE), f"{commit}:{RELEASE_FILE}"))
        for commit in history[1:]
    ]
    candidates = [(commit, found) for commit, found in earlier if found.version != running.version]
    if not candidates:
        raise ReleaseError(f"env/{environment} has no earlier release of another version to roll back to")
    previous_commit, previous = candidates[0]
    title = f"Roll back {environment} to {previous.model} v{previous.version}"
    published = promotion.publish_tree(repository, environment, previous_commit, title, purpose="rollback")
    pull_request, created = None, False
    if github is not None:
        body = f"Restores the desired state of {environment} from {previous_commit[:12]}.\n"
        pull_request, created = github.upsert_pull_request(title, published.branch, branch, body)
    if merge:
        promotion.merge_locally(repository, environment, purpose="rollback")
    return previous, PromotionResult(
        environment, previous.version, published.branch, published.changed, pull_request, created
    )


def release(
    config: ProjectConfig, repository: Repository, environment: str, github: GitHubClient | None
) -> dict:
    """Tag the source commit of what `environment` runs and publish a GitHub release with its card."""
    repository.fetch()
    running = current_release(repository, environment)
    if running is None:
        raise ReleaseError(f"env/{environment} holds no release to publish")
    tag = f"model-{running.model}-v{running.version}"
    card = repository.read_file(promotion.environment_branch(environment), "MODEL_CARD.md") or ""
    summary = repository.read_file(promotion.environment_branch(environment), "EVIDENCE.md") or ""
    try:
        repository.git("push", "--quiet", repository.remote, f"{running.source_sha}:refs/tags/{tag}")
    except GitError as error:
        raise ReleaseError(f"cannot tag {running.source_sha[:12]} as {tag}: {error}") from None
    document = {"tag": tag, "version": running.version}
    if github is not None:
        document["release"] = github.create_release(tag, running.source_sha, tag, summary + "\n" + card)
    return document


def pull_request_summary(config: ProjectConfig, version: int, environment: str) -> str:
    """Markdown for the sticky PR comment and the job summary: the gate's decision, the candidate
    beside the champion scored on the same held-out rows, fairness gaps, SHAP (governance/templates)."""
    from {{ cookiecutter.package_name }}.governance.summary import render_pull_request_comment, summarise_bundle

    result = gate(config, version, environment)
    summary = summarise_bundle(bundle_path(config, version), result.decision)
    return render_pull_request_comment(summary, COMMENT_MARKER)
