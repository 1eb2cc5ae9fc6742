"""The desired state of one environment, as rendered onto its branch `env/<name>`.

Rendering is deterministic: the same release and inputs give byte-identical files, so a promotion
pull request's diff is exactly what changes in the environment.
"""

from __future__ import annotations

from {{ cookiecutter.package_name }}.contracts.release import (  # noqa: F401 - the names delivery uses
    RELEASE_FILE,
    Release,
    ReleaseError,
    parse_release,
    read_release,
)

ENVIRONMENT_FILE = "environment.yaml"
CARD_FILE = "MODEL_CARD.md"
EVIDENCE_FILE = "EVIDENCE.md"
DEPLOY_WORKFLOW = ".github/workflows/deploy.yml"
CODEOWNERS = ".github/CODEOWNERS"


def evidence_summary(release: Release, metrics: dict, fairness: dict, decision: dict) -> str:
    lines = [
        f"# Evidence for {release.model} version {release.version} in {release.environment}",
        "",
        f"Policy decision ({release.policy_pack}): **{'ALLOW' if decision.get('allow') else 'DENY'}**",
        "",
        "| metric | value |",
        "| --- | ---: |",
        *(f"| {name} | {value:.4f} |" for name, value in metrics.items()),
        "",
        "| sensitive feature | parity difference | equalized odds difference |",
        "| --- | ---: | ---: |",
    ]
    for feature in fairness.get("features", []):
        parity, odds = feature.get("demographic_parity_difference"), feature.get("equalized_odds_difference")
        lines.append(
            f"| {feature['feature']} | {'n/a' if parity is None else f'{parity:.3f}'} "
            f"| {'n/a' if odds is None else f'{odds:.3f}'} |"
        )
    notes = [*decision.get("reasons", []), *decision.get("notes", [])]
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


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
