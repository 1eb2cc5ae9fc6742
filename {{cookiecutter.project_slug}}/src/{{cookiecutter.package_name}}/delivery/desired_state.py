"""The desired state of one environment, as rendered onto its branch `env/<name>`.

Rendering is deterministic: the same release and inputs give byte-identical files, so a promotion
pull request's diff is exactly what changes in the environment.
"""

from __future__ import annotations

from {{ cookiecutter.package_name }}.contracts.release import RELEASE_FILE, Release

ENVIRONMENT_FILE = "environment.yaml"
CARD_FILE = "MODEL_CARD.md"
EVIDENCE_FILE = "EVIDENCE.md"
DEPLOY_WORKFLOW = ".github/workflows/deploy.yml"
CODEOWNERS = ".github/CODEOWNERS"
FLAGS_FILE = "flags.flagd.json"
# The challenger's own card and evidence sit beside the champion's while it takes part of the traffic.
CHALLENGER_DIRECTORY = "challenger/"


def challenger_files(files: dict[str, str]) -> dict[str, str]:
    """The challenger's card and evidence, keyed by the paths they take when it becomes the champion."""
    return {
        path.removeprefix(CHALLENGER_DIRECTORY): text
        for path, text in files.items()
        if path.startswith(CHALLENGER_DIRECTORY)
    }


def render(
    release: Release,
    environment_settings: str,
    model_card: str,
    evidence: str,
    deploy_workflow: str | None,
    codeowners: str | None = None,
    challenger: tuple[str, str] | None = None,
    flags: str | None = None,
    manifests: dict[str, str] | None = None,
) -> dict[str, str]:
    """Every file of the environment branch, by path.

    `model_card` and `evidence` describe the champion; `challenger` is the (card, evidence) pair of
    the challenger when release.yaml names one; `flags` is the flag file's text, `manifests` the
    Kubernetes manifests by path under manifests/.
    """
    files = {
        RELEASE_FILE: release.to_yaml(),
        ENVIRONMENT_FILE: environment_settings,
        CARD_FILE: model_card,
        EVIDENCE_FILE: evidence,
    }
    if (challenger is None) != (release.challenger is None):
        raise ValueError("the challenger's card and evidence go with a release that names a challenger")
    if challenger is not None:
        files[CHALLENGER_DIRECTORY + CARD_FILE], files[CHALLENGER_DIRECTORY + EVIDENCE_FILE] = challenger
    if (flags is None) != (release.flags is None):
        raise ValueError("the flag file goes with a release that records its digest")
    if flags is not None:
        files[release.flags.file] = flags
    files.update(manifests or {})
    if deploy_workflow is not None:
        # GitHub runs the workflow file of the pushed commit: the branch must carry deploy.yml itself.
        files[DEPLOY_WORKFLOW] = deploy_workflow
    if codeowners is not None:
        # Code-owner review applies to promotion pull requests only if the base branch has CODEOWNERS.
        files[CODEOWNERS] = codeowners
    return files
