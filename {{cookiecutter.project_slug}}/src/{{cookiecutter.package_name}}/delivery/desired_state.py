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


def render(
    release: Release,
    environment_settings: str,
    model_card: str,
    evidence: str,
    deploy_workflow: str | None,
    codeowners: str | None = None,
) -> dict[str, str]:
    """Every file of the environment branch, by path."""
    files = {
        RELEASE_FILE: release.to_yaml(),
        ENVIRONMENT_FILE: environment_settings,
        CARD_FILE: model_card,
        EVIDENCE_FILE: evidence,
    }
    if deploy_workflow is not None:
        # GitHub runs the workflow file of the pushed commit: the branch must carry deploy.yml itself.
        files[DEPLOY_WORKFLOW] = deploy_workflow
    if codeowners is not None:
        # Code-owner review applies to promotion pull requests only if the base branch has CODEOWNERS.
        files[CODEOWNERS] = codeowners
    return files
