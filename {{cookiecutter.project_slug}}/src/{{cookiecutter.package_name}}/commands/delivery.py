"""Delivery commands: promote, deploy, roll back and release, composed from governance and delivery.

Code lives on main; each environment's desired state lives on its branch `env/<name>`. A model
reaches an environment only through a pull request into that branch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from {{ cookiecutter.package_name }}.commands.evidence import bundle_path, gate, report
from {{ cookiecutter.package_name }}.config import ProjectConfig
from {{ cookiecutter.package_name }}.config.environment import EnvironmentSettings
from {{ cookiecutter.package_name }}.config.environment import settings_path as settings_file
from {{ cookiecutter.package_name }}.config.loading import parse_yaml, validate
from {{ cookiecutter.package_name }}.contracts.release import (
    RELEASE_FILE,
    FlagsReference,
    ImageReference,
    ModelReference,
    Release,
    ReleaseError,
    parse_release,
)
from {{ cookiecutter.package_name }}.delivery import deploy as deployment
from {{ cookiecutter.package_name }}.delivery import promotion
from {{ cookiecutter.package_name }}.delivery.desired_state import (
    CARD_FILE,
    CHALLENGER_DIRECTORY,
    CODEOWNERS,
    DEPLOY_WORKFLOW,
    ENVIRONMENT_FILE,
    EVIDENCE_FILE,
    FLAGS_FILE,
    challenger_files,
    render,
)
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


def model_reference(config: ProjectConfig, version: int) -> ModelReference:
    """What release.yaml records of a registered version: its digest and where it came from."""
    registered = registry.get_version(config, version)
    return ModelReference(
        name=registered.name,
        version=version,
        artifact_digest=deployment.artifact_digest(config, version),
        source_sha=registered.tags.get("git_sha", "unknown"),
        data_digest=registered.tags.get("data_digest", "unknown"),
    )


def initial_weight(settings: EnvironmentSettings, environment: str) -> int:
    """The challenger's share when it arrives: the first canary step, the configured A/B split, or
    none in shadow (it scores every request but answers none)."""
    rollout = settings.rollout
    if rollout.strategy == "canary":
        return rollout.challenger_weight or rollout.steps[0]
    if rollout.strategy == "ab":
        if not rollout.challenger_weight:
            raise ProjectError(
                f"environments/{environment}.yaml: rollout.strategy is ab but rollout.challenger_weight "
                "is 0; set the challenger's share of the split (1-100)"
            )
        return rollout.challenger_weight
    return 0


def next_split(
    settings: EnvironmentSettings, environment: str, running: Release | None, candidate: ModelReference
) -> tuple[ModelReference, ModelReference | None, int]:
    """Champion, challenger and weight after promoting `candidate` into an environment running `running`.

    Under `direct`, and into an environment that runs nothing yet, the candidate becomes the
    champion. Under canary, shadow and ab it becomes the challenger beside the running champion;
    re-promoting what already runs changes nothing.
    """
    if running is None or settings.rollout.strategy == "direct":
        return candidate, None, 0
    if candidate.version in (running.version, running.challenger):
        return running.registered, running.challenger_model, running.challenger_weight
    return running.registered, candidate, initial_weight(settings, environment)


def flag_file(config: ProjectConfig, settings: EnvironmentSettings) -> tuple[str, FlagsReference] | None:
    """The environment's flag file, validated, and its reference for release.yaml (None without one)."""
    if settings.flags is None:
        return None
    from {{ cookiecutter.package_name }}.serving.flags import read_flag_file

    path = settings.flags if settings.flags.is_absolute() else config.root / settings.flags
    text = read_flag_file(path)
    digest = "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    return text, FlagsReference(file=FLAGS_FILE, digest=digest)


def parse_image(reference: str) -> ImageReference:
    """`REPOSITORY@sha256:DIGEST` as recorded in release.yaml; a tag is refused."""
    repository, separator, digest = reference.partition("@")
    if not separator:
        raise ProjectError(
            f"--image {reference!r}: give the image by digest, REPOSITORY@sha256:<64 hex> (a tag can move)"
        )
    try:
        return ImageReference(repository=repository, digest=digest)
    except ValueError as error:
        raise ProjectError(f"--image {reference!r}: not REPOSITORY@sha256:<64 hex> ({error})") from None


def desired_files(
    config: ProjectConfig,
    release: Release,
    champion_files: tuple[str, str],
    challenger_files: tuple[str, str] | None,
) -> dict[str, str]:
    """Every file of the environment branch for `release`, rendered from main's settings."""
    environment = release.environment
    settings = config.environment_settings(environment)
    flags = flag_file(config, settings)
    if (None if flags is None else flags[1]) != release.flags:
        raise ProjectError(
            f"the flag file of {environment} changed while its release was rendered; run the command again"
        )
    workflow = config.root / DEPLOY_WORKFLOW
    owners = config.root / CODEOWNERS
    return render(
        release,
        settings_file(config.root, environment).read_text(encoding="utf-8"),
        *champion_files,
        workflow.read_text(encoding="utf-8") if workflow.is_file() else None,
        owners.read_text(encoding="utf-8") if owners.is_file() else None,
        challenger=challenger_files,
        flags=None if flags is None else flags[0],
        manifests=environment_manifests(config, release, settings, None if flags is None else flags[0]),
    )


MANIFESTS_DIRECTORY = "manifests/"


def environment_manifests(
    config: ProjectConfig, release: Release, settings: EnvironmentSettings, flags: str | None
) -> dict[str, str]:
    """The Kubernetes manifests of the environment (under manifests/), when the release has an image."""
    if release.image is None:
        return {}
    from {{ cookiecutter.package_name }}.delivery.manifests import read_base, render_manifests

    return render_manifests(
        config.name,
        release.environment,
        settings,
        release,
        release.image.reference,
        flags,
        base=read_base(config.root),
    )


def promote(
    config: ProjectConfig,
    repository: Repository,
    environment: str | None = None,
    version: int | None = None,
    commit: str | None = None,
    github: GitHubClient | None = None,
    merge: bool = False,
    image: str | None = None,
) -> PromotionResult:
    """Gate, render and publish the desired state of `environment`, then open or update its PR.

    Under canary, shadow or ab the promoted version becomes the environment's challenger and the
    champion stays; `rollout` then moves the split. `image` (REPOSITORY@sha256:...) is the serving
    image to record; without it, the environment before this one passes its image on.
    """
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
    settings = config.environment_settings(environment)
    candidate = model_reference(config, version)
    champion, challenger, weight = next_split(settings, environment, running, candidate)
    flags = flag_file(config, settings)
    if image is not None:
        image_reference = parse_image(image)
    else:
        previous = neighbour(config, environment, -1)
        upstream = None if previous is None else current_release(repository, previous)
        image_reference = upstream.image if upstream is not None else (running.image if running else None)
    release = Release.create(
        environment=environment,
        model=champion.name,
        version=champion.version,
        artifact_digest=champion.artifact_digest,
        source_sha=champion.source_sha,
        data_digest=champion.data_digest,
        promoted_from=source,
        policy_pack=decision.decision.policy_pack,
        strategy=settings.rollout.strategy,
        challenger=challenger,
        challenger_weight=weight,
        image=image_reference,
        flags=None if flags is None else flags[1],
    )
    summary = render_evidence_summary(summarise_bundle(directory, decision.decision))
    candidate_files = ((directory / CARD_FILE).read_text(encoding="utf-8"), summary)
    current = promotion.branch_files(repository, environment)
    if challenger is None:
        champion_files, challenger_pair = candidate_files, None
    else:
        champion_files = (current.get(CARD_FILE, ""), current.get(EVIDENCE_FILE, ""))
        kept = challenger_files(current)
        challenger_pair = (
            candidate_files
            if challenger.version == candidate.version and challenger != running.challenger_model
            else (kept.get(CARD_FILE, candidate_files[0]), kept.get(EVIDENCE_FILE, candidate_files[1]))
        )
    files = desired_files(config, release, champion_files, challenger_pair)
    promotion.ensure_environment_branch(repository, environment)
    arriving = challenger is not None and challenger.version == version
    role = f" as challenger ({_split(release)})" if arriving else ""
    title = f"Promote {champion.name} v{version} to {environment}{role}"
    published = promotion.publish_desired_state(repository, environment, files, title)
    pull_request, created = None, False
    if github is not None and published.pending:
        pull_request, created = github.upsert_pull_request(
            title, published.branch, promotion.environment_branch(environment), summary
        )
    if merge and published.pending:
        promotion.merge_locally(repository, environment)
    return PromotionResult(environment, version, published.branch, published.changed, pull_request, created)


def _split(release: Release) -> str:
    if release.strategy == "shadow":
        return "shadow: scores every request, answers none"
    return f"{release.strategy} {release.challenger_weight}%"


class RolloutDenied(PromotionDenied):
    """The policy denied traffic to the challenger: no branch was pushed and no pull request opened."""


@dataclass(frozen=True)
class RolloutResult:
    before: Release
    after: Release
    branch: str
    changed: bool
    pull_request: dict | None
    created: bool


def rollout(
    config: ProjectConfig,
    repository: Repository,
    environment: str,
    *,
    weight: int | None = None,
    promote_challenger: bool = False,
    abort: bool = False,
    github: GitHubClient | None = None,
    merge: bool = False,
    report: str | None = None,
) -> RolloutResult:
    """Open (or update) the pull request into `env/<env>` that changes only its split.

    `report` (Markdown: the monitoring summary that decided the change) goes into the PR body.

    Exactly one of: `weight` (the challenger's new share under canary or ab), `promote_challenger`
    (the challenger becomes the champion, with its card and evidence), `abort` (the challenger is
    removed; the champion takes all traffic). Before the challenger gets more traffic or becomes the
    champion, the policy gate judges it again for this environment.
    """
    if [weight is not None, promote_challenger, abort].count(True) != 1:
        raise ProjectError("rollout: give exactly one of --weight W, --promote-challenger, --abort")
    neighbour(config, environment, 0)
    repository.fetch()
    running = current_release(repository, environment)
    if running is None:
        raise ReleaseError(f"env/{environment} holds no {RELEASE_FILE}: promote a version first")
    if running.challenger_model is None:
        raise ProjectError(
            f"env/{environment} runs version {running.version} alone: there is no challenger to roll out "
            "(promote a new version into an environment whose strategy is canary, shadow or ab)"
        )
    challenger = running.challenger_model
    current = promotion.branch_files(repository, environment)
    if weight is not None:
        if running.strategy not in ("canary", "ab"):
            raise ProjectError(
                f"rollout --weight: env/{environment} runs strategy {running.strategy!r}, where the "
                "challenger takes no share of the answers; use --promote-challenger or --abort"
            )
        if not 0 <= weight <= 100:
            raise ProjectError(f"rollout --weight {weight}: expected a percentage in 0..100")
        if weight > running.challenger_weight:
            _gate_challenger(config, challenger.version, environment)
        after = running.with_rollout(challenger=challenger, weight=weight)
        title = f"Roll out {challenger.name} v{challenger.version} in {environment}: {_split(after)}"
    elif promote_challenger:
        _gate_challenger(config, challenger.version, environment)
        after = running.with_rollout(champion=challenger)
        title = f"Promote challenger {challenger.name} v{challenger.version} to champion of {environment}"
    else:
        after = running.with_rollout()
        title = f"Abort the rollout of {challenger.name} v{challenger.version} in {environment}"
    files = rolled_out_files(current, after, promote_challenger, config)
    published = promotion.publish_desired_state(repository, environment, files, title, purpose="rollout")
    pull_request, created = None, False
    if github is not None and published.pending:
        pull_request, created = github.upsert_pull_request(
            title,
            published.branch,
            promotion.environment_branch(environment),
            rollout_body(running, after, report),
        )
    if merge and published.pending:
        promotion.merge_locally(repository, environment, purpose="rollout")
    return RolloutResult(running, after, published.branch, published.changed, pull_request, created)


def rolled_out_files(
    current: dict[str, str], after: Release, promote_challenger: bool, config: ProjectConfig
) -> dict[str, str]:
    """The branch's files with the new split: everything else stays as the branch has it (settings,
    flags, workflow), so the pull request changes the rollout only. The manifests follow release.yaml."""
    files = {path: text for path, text in current.items() if not path.startswith(CHALLENGER_DIRECTORY)}
    if promote_challenger:
        kept = challenger_files(current)
        files[CARD_FILE], files[EVIDENCE_FILE] = kept.get(CARD_FILE, ""), kept.get(EVIDENCE_FILE, "")
    elif after.challenger is not None:
        files.update({path: text for path, text in current.items() if path.startswith(CHALLENGER_DIRECTORY)})
    files[RELEASE_FILE] = after.to_yaml()
    if after.image is not None:
        settings = validate(
            EnvironmentSettings,
            parse_yaml(current.get(ENVIRONMENT_FILE, ""), f"env/{after.environment}:{ENVIRONMENT_FILE}"),
            f"env/{after.environment}:{ENVIRONMENT_FILE}",
        )
        flags = None if after.flags is None else current.get(after.flags.file)
        files = {path: text for path, text in files.items() if not path.startswith(MANIFESTS_DIRECTORY)}
        files.update(environment_manifests(config, after, settings, flags))
    return files


def _gate_challenger(config: ProjectConfig, version: int, environment: str) -> None:
    ensure_bundle(config, version)
    decision = gate(config, version, environment)
    if not decision.integrity.intact:
        raise evidence.EvidenceError(f"the evidence bundle of version {version} does not match its manifest")
    if not decision.decision.allow:
        reasons = "; ".join(decision.decision.reasons)
        raise RolloutDenied(f"more traffic for version {version} in {environment} denied: {reasons}")


def rollout_body(before: Release, after: Release, report: str | None = None) -> str:
    """The pull request's body: the split before and after, what merging does, and the report that
    decided it when there is one."""

    def row(name: str, release: Release) -> str:
        challenger = "none" if release.challenger is None else f"v{release.challenger}"
        return (
            f"| {name} | v{release.version} | {challenger} | {release.strategy} | "
            f"{release.challenger_weight}% |"
        )

    return (
        f"Changes the rollout of **{after.environment}** only.\n\n"
        "| | champion | challenger | strategy | challenger weight |\n|---|---|---|---|---|\n"
        f"{row('before', before)}\n{row('after', after)}\n\n"
        f"Merging deploys it (the aliases `{after.environment}` and `{after.environment}-challenger` "
        "follow); reverting the merge rolls it back.\n"
        + ("" if report is None else f"\n---\n\n{_bounded(report.strip())}\n")
    )


# GitHub refuses a pull request body over 65,536 characters.
REPORT_LIMIT = 60_000


def _bounded(report: str) -> str:
    if len(report) <= REPORT_LIMIT:
        return report
    return report[:REPORT_LIMIT].rsplit("\n", 1)[0] + "\n\n(cut here: the whole report is the run's artifact)"


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
