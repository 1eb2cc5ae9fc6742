"""Every workflow the template ships, its own and the generated project's, is secure by default."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import TEMPLATE_ROOT, tool_environment

TEMPLATE_WORKFLOWS = sorted((TEMPLATE_ROOT / ".github" / "workflows").glob("*.yml"))
PROJECT_WORKFLOWS = sorted(
    (TEMPLATE_ROOT / "{{cookiecutter.project_slug}}" / ".github" / "workflows").glob("*.yml")
)
ALL_WORKFLOWS = TEMPLATE_WORKFLOWS + PROJECT_WORKFLOWS
PINNED_ACTION = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def workflow_id(path: Path) -> str:
    return f"{'project' if path in PROJECT_WORKFLOWS else 'template'}/{path.name}"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def steps(workflow: dict):
    for job in workflow["jobs"].values():
        yield from job.get("steps", [])


def tool(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, env=tool_environment(), check=False)


def test_both_sets_of_workflows_exist() -> None:
    assert {path.name for path in TEMPLATE_WORKFLOWS} >= {"test.yml", "release.yml"}
    assert {path.name for path in PROJECT_WORKFLOWS} >= {"ci.yml"}


def test_zizmor_offline_reports_no_finding() -> None:
    result = tool("zizmor", "--offline", "--format", "json", *map(str, ALL_WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []


def test_actionlint_with_shellcheck_reports_no_finding(cookies) -> None:
    assert tool("shellcheck", "--version").returncode == 0, "shellcheck must be on PATH for actionlint"
    template = tool("actionlint", *map(str, TEMPLATE_WORKFLOWS))
    assert template.returncode == 0, template.stdout + template.stderr
    # The project's workflows call each other (reusable workflows), which actionlint resolves from the
    # repository they live in: a baked project, where they are byte-identical to the template's.
    project = cookies.bake().project_path
    baked = subprocess.run(
        ["actionlint"], cwd=project, capture_output=True, text=True, env=tool_environment(), check=False
    )
    assert baked.returncode == 0, baked.stdout + baked.stderr


def test_workflows_match_the_github_schema() -> None:
    result = tool("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, ALL_WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", ALL_WORKFLOWS, ids=workflow_id)
def test_permissions_are_empty_at_the_top_and_granted_per_job(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"] == {}
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"job {name} must declare its permissions"


@pytest.mark.parametrize("path", ALL_WORKFLOWS, ids=workflow_id)
def test_actions_are_pinned_by_commit_sha(path: Path) -> None:
    for step in steps(load(path)):
        if "uses" in step and not step["uses"].startswith("./"):
            assert PINNED_ACTION.match(step["uses"]), step["uses"]


@pytest.mark.parametrize("path", ALL_WORKFLOWS, ids=workflow_id)
def test_checkout_never_persists_credentials(path: Path) -> None:
    for step in steps(load(path)):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False


@pytest.mark.parametrize("path", ALL_WORKFLOWS, ids=workflow_id)
def test_shell_steps_take_values_only_through_env(path: Path) -> None:
    for step in steps(load(path)):
        assert "${{" not in step.get("run", ""), f"expression inside run: in {step.get('name', step)}"


def test_generated_workflows_are_copied_without_rendering(cookies) -> None:
    result = cookies.bake()
    for path in PROJECT_WORKFLOWS:
        baked = result.project_path / ".github" / "workflows" / path.name
        assert baked.read_bytes() == path.read_bytes()
