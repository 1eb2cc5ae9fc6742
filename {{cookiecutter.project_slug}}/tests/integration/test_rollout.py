"""A challenger's life through git: promoted beside the champion, its share moved, promoted or aborted.

Real registry (two versions trained on the fixture data), real git with a bare repository as the
remote, the GitHub API stand-in for the pull requests.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from fixtures import PROJECT_ROOT, fixture_config, install_fixture_project
from support.github_api import FakeGitHub

from {{ cookiecutter.package_name }}.commands import delivery
from {{ cookiecutter.package_name }}.commands.evidence import bundle_path, report
from {{ cookiecutter.package_name }}.commands.training import train
from {{ cookiecutter.package_name }}.config import ProjectConfig, load_config
from {{ cookiecutter.package_name }}.delivery import deploy as deployment
from {{ cookiecutter.package_name }}.errors import ProjectError
from {{ cookiecutter.package_name }}.io.git import Repository, local_remote
from {{ cookiecutter.package_name }}.io.github import GitHubClient
from {{ cookiecutter.package_name }}.io.registry import Registry

pytestmark = pytest.mark.integration
ENVIRONMENT = fixture_config().environments[0]
# These tests exercise the rollout mechanics whatever pack the project was generated with: limits the
# fixture model passes (the gate itself is tested with the project's own pack elsewhere).
PERMISSIVE = {
    "min_metrics": {"roc_auc": 0.6},
    "max_fairness_difference": {},
    "min_fairness_ratio": {},
    "max_regression": {"roc_auc": 0.05},
}


@dataclass
class Loop:
    root: Path
    config: ProjectConfig
    repository: Repository
    first: int
    second: int


def git(root: Path, *arguments: str) -> str:
    environment = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    environment.update(GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
    result = subprocess.run(["git", *arguments], cwd=root, capture_output=True, text=True, env=environment)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def set_strategy(root: Path, strategy: str) -> None:
    path = root / "environments" / f"{ENVIRONMENT}.yaml"
    settings = yaml.safe_load(path.read_text())
    settings["rollout"]["strategy"] = strategy
    settings["rollout"]["steps"] = [10, 50, 100]
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    git(root, "commit", "--quiet", "-am", f"{ENVIRONMENT} under {strategy}")


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Loop:
    root = tmp_path_factory.mktemp("rollout")
    config_file = install_fixture_project(root)
    # On 375 held-out rows only sex has two groups large enough to measure; the gate needs every gap.
    text = config_file.read_text().replace("sensitive_features: [sex, race]", "sensitive_features: [sex]")
    config_file.write_text(text)
    thresholds = root / "policies" / "thresholds.yaml"
    document = yaml.safe_load(thresholds.read_text())
    document.update(default=PERMISSIVE, environments={})
    thresholds.write_text(yaml.safe_dump(document, sort_keys=False))
    shutil.copytree(PROJECT_ROOT / "environments", root / "environments")
    shutil.copytree(PROJECT_ROOT / "flags", root / "flags")
    (root / ".gitignore").write_text("mlruns/\nmlartifacts/\n*.db\nbuild/\nevidence/\n.gitops-remote.git/\n")
    git(root, "init", "--quiet", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "project")
    config = load_config(config_file)
    first = train(config).registered.version
    # A second version of the same commit, data and settings, whatever the model family: the gate
    # finds no regression against the first.
    second = train(config, force=True).registered.version
    for version in (first, second):
        report(config, version)
    set_strategy(root, "canary")
    repository = local_remote(root)
    assert repository is not None
    return Loop(root, load_config(config_file), repository, first, second)


def branch_tree(loop: Loop) -> dict[str, str]:
    loop.repository.fetch()
    return delivery.promotion.branch_files(loop.repository, ENVIRONMENT)


def aliases(loop: Loop) -> dict[str, int | None]:
    with Registry(loop.config) as registry:
        return {
            alias: getattr(registry.alias(alias), "version", None)
            for alias in (ENVIRONMENT, deployment.challenger_alias(ENVIRONMENT))
        }


def test_a_challenger_arrives_beside_the_champion_and_leaves_as_the_champion(loop: Loop) -> None:
    delivery.promote(loop.config, loop.repository, ENVIRONMENT, version=loop.first, merge=True)
    delivery.deploy(loop.config, loop.repository, ENVIRONMENT)
    alone = branch_tree(loop)
    assert yaml.safe_load(alone["release.yaml"])["rollout"] == {
        "strategy": "canary",
        "champion": loop.first,
        "challenger": None,
        "challenger_weight": 0,
    }, "into an environment that runs nothing, the first version is the champion"
    flags = (loop.root / "flags" / f"{ENVIRONMENT}.flagd.json").read_bytes()
    assert alone["flags.flagd.json"].encode() == flags, "the branch carries main's flag file as it is"
    recorded = yaml.safe_load(alone["release.yaml"])["flags"]
    assert recorded == {"file": "flags.flagd.json", "digest": "sha256:" + hashlib.sha256(flags).hexdigest()}

    # A new version promoted under canary becomes the challenger at the first step; the champion stays.
    delivery.promote(loop.config, loop.repository, ENVIRONMENT, version=loop.second, merge=True)
    beside = branch_tree(loop)
    release = delivery.current_release(loop.repository, ENVIRONMENT)
    assert (release.version, release.challenger, release.challenger_weight) == (loop.first, loop.second, 10)
    with Registry(loop.config) as registry:
        assert release.challenger_digest == registry.artifact_digest(loop.second)
    assert beside["MODEL_CARD.md"] == alone["MODEL_CARD.md"], "the champion's card is untouched"
    card = (bundle_path(loop.config, loop.second) / "MODEL_CARD.md").read_text()
    assert beside["challenger/MODEL_CARD.md"] == card
    delivery.deploy(loop.config, loop.repository, ENVIRONMENT)
    assert aliases(loop) == {ENVIRONMENT: loop.first, f"{ENVIRONMENT}-challenger": loop.second}

    # The rollout PR changes release.yaml's split and nothing else, even after main's settings and flags
    # moved on (they reach the environment by the next promotion, not by a rollout).
    flag_path = loop.root / "flags" / f"{ENVIRONMENT}.flagd.json"
    flag_text = flag_path.read_text()
    flag_path.write_text(flag_text.replace('"defaultVariant": "off"', '"defaultVariant": "on"'))
    git(loop.root, "commit", "--quiet", "-am", "explain every prediction")
    with FakeGitHub(branches=None) as github:
        client = GitHubClient.from_environment(
            {
                "GITHUB_API_URL": github.url,
                "GITHUB_REPOSITORY": github.repository,
                "GITHUB_TOKEN": "test-token",
            }
        )
        before = loop.repository.git("rev-parse", loop.repository.remote_ref(f"env/{ENVIRONMENT}"))
        result = delivery.rollout(loop.config, loop.repository, ENVIRONMENT, weight=50, github=client)
        (pull_request,) = github.open_pull_requests(base=f"env/{ENVIRONMENT}")
        assert pull_request["head"]["ref"] == f"rollout/{ENVIRONMENT}" == result.branch
        assert f"| before | v{loop.first} | v{loop.second} | canary | 10% |" in pull_request["body"]
        assert f"| after | v{loop.first} | v{loop.second} | canary | 50% |" in pull_request["body"]
        changed = loop.repository.git(
            "diff", "--name-only", before, loop.repository.remote_ref(f"rollout/{ENVIRONMENT}")
        ).split()
        assert changed == ["release.yaml"]
        again = delivery.rollout(loop.config, loop.repository, ENVIRONMENT, weight=50, github=client)
        assert not again.changed and len(github.open_pull_requests(base=f"env/{ENVIRONMENT}")) == 1
    delivery.promotion.merge_locally(loop.repository, ENVIRONMENT, purpose="rollout")
    assert delivery.current_release(loop.repository, ENVIRONMENT).challenger_weight == 50
    assert branch_tree(loop)["flags.flagd.json"] == flag_text, "the branch keeps its promoted flags"
    flag_path.write_text(flag_text)
    git(loop.root, "commit", "--quiet", "-am", "explain on demand again")

    # Promoting the challenger makes it the champion, with its own card; the challenger alias goes.
    delivery.rollout(loop.config, loop.repository, ENVIRONMENT, promote_challenger=True, merge=True)
    promoted = branch_tree(loop)
    release = delivery.current_release(loop.repository, ENVIRONMENT)
    assert (release.version, release.challenger, release.challenger_weight) == (loop.second, None, 0)
    assert promoted["MODEL_CARD.md"] == card
    assert not [path for path in promoted if path.startswith("challenger/")]
    delivery.deploy(loop.config, loop.repository, ENVIRONMENT)
    assert aliases(loop) == {ENVIRONMENT: loop.second, f"{ENVIRONMENT}-challenger": None}


def test_aborting_removes_the_challenger_and_its_alias(loop: Loop) -> None:
    running = delivery.current_release(loop.repository, ENVIRONMENT)
    other = loop.first if running.version == loop.second else loop.second
    delivery.promote(loop.config, loop.repository, ENVIRONMENT, version=other, merge=True)
    delivery.deploy(loop.config, loop.repository, ENVIRONMENT)
    assert aliases(loop)[f"{ENVIRONMENT}-challenger"] == other
    delivery.rollout(loop.config, loop.repository, ENVIRONMENT, abort=True, merge=True)
    release = delivery.current_release(loop.repository, ENVIRONMENT)
    assert (release.version, release.challenger) == (running.version, None)
    assert not [path for path in branch_tree(loop) if path.startswith("challenger/")]
    delivery.deploy(loop.config, loop.repository, ENVIRONMENT)
    assert aliases(loop) == {ENVIRONMENT: running.version, f"{ENVIRONMENT}-challenger": None}


def remote_heads(loop: Loop) -> str:
    return loop.repository.git("ls-remote", "--heads", loop.repository.remote)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"weight": 30}, "there is no challenger to roll out"),
        ({"weight": 10, "abort": True}, "exactly one of"),
        ({}, "exactly one of"),
    ],
)
def test_a_rollout_that_cannot_apply_pushes_nothing(loop: Loop, change: dict, message: str) -> None:
    if delivery.current_release(loop.repository, ENVIRONMENT) is None:
        delivery.promote(loop.config, loop.repository, ENVIRONMENT, version=loop.first, merge=True)
    heads = remote_heads(loop)
    with pytest.raises(ProjectError, match=message):
        delivery.rollout(loop.config, loop.repository, ENVIRONMENT, **change)
    assert remote_heads(loop) == heads


def test_a_share_out_of_range_or_under_shadow_is_refused(loop: Loop) -> None:
    running = delivery.current_release(loop.repository, ENVIRONMENT)
    if running is None or running.challenger is None:
        other = loop.first if running is None or running.version == loop.second else loop.second
        delivery.promote(loop.config, loop.repository, ENVIRONMENT, version=other, merge=True)
    heads = remote_heads(loop)
    with pytest.raises(ProjectError, match=r"expected a percentage in 0\.\.100"):
        delivery.rollout(loop.config, loop.repository, ENVIRONMENT, weight=140)
    release = delivery.current_release(loop.repository, ENVIRONMENT)
    shadow = release.with_rollout(challenger=release.challenger_model, strategy="shadow")
    files = delivery.promotion.branch_files(loop.repository, ENVIRONMENT)
    files["release.yaml"] = shadow.to_yaml()
    delivery.promotion.publish_desired_state(loop.repository, ENVIRONMENT, files, "shadow", purpose="manual")
    delivery.promotion.merge_locally(loop.repository, ENVIRONMENT, purpose="manual")
    heads = remote_heads(loop)
    with pytest.raises(ProjectError, match="takes no share of the answers"):
        delivery.rollout(loop.config, loop.repository, ENVIRONMENT, weight=20)
    assert remote_heads(loop) == heads


def test_deploy_refuses_a_challenger_whose_artifact_is_not_the_recorded_one(loop: Loop) -> None:
    release = delivery.current_release(loop.repository, ENVIRONMENT)
    if release is None or release.challenger is None:
        other = loop.first if release is None or release.version == loop.second else loop.second
        delivery.promote(loop.config, loop.repository, ENVIRONMENT, version=other, merge=True)
        release = delivery.current_release(loop.repository, ENVIRONMENT)
    before = aliases(loop)
    forged = release.with_rollout(
        challenger=release.challenger_model.model_copy(update={"artifact_digest": "sha256:" + "0" * 64}),
        weight=release.challenger_weight,
    )
    with pytest.raises(deployment.DeployError, match=f"version {release.challenger} has digest"):
        deployment.deploy(loop.config, forged)
    assert aliases(loop) == before


def test_deploy_refuses_a_release_without_an_image_where_one_is_required(loop: Loop) -> None:
    release = delivery.current_release(loop.repository, ENVIRONMENT)
    before = aliases(loop)
    path = loop.root / "environments" / f"{ENVIRONMENT}.yaml"
    original = path.read_text()
    path.write_text(original + "image:\n  required: true\n")
    try:
        with pytest.raises(deployment.DeployError, match="names no serving image"):
            deployment.deploy(load_config(loop.root / "project.yaml"), release)
    finally:
        path.write_text(original)
    assert aliases(loop) == before
