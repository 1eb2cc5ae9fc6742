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
# A step's action: owner/repo[/path]@<full commit SHA>, then the release it is, as a comment.
PINNED_STEP_LINE = re.compile(
    r"^\s*(?:-\s+)?uses:\s*(?P<action>[\w.-]+/[\w.-]+(?:/[\w./-]+)?)@(?P<sha>[0-9a-f]{40})"
    r"\s+#\s*v\d+(?:\.\d+)*\s*$"
)
# A job that calls a reusable workflow of the same repository (GitHub's documented form).
LOCAL_REUSABLE = re.compile(r"^\./\.github/workflows/(?P<file>[\w.-]+\.ya?ml)$")


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


# Reusable workflows and pinned actions, checked on a baked project as GitHub would read it. actionlint
# alone is not enough: the build installed here accepts `uses: $/...`, which GitHub does not document.


def triggers(workflow: dict) -> dict:
    """The `on:` mapping (PyYAML reads the bare key `on` as the boolean True)."""
    found = workflow.get("on", workflow.get(True)) or {}
    if isinstance(found, str):
        return {found: {}}
    if isinstance(found, list):
        return {key: {} for key in found}
    return found


def step_action_problems(text: str) -> list[str]:
    """Every step-level `uses:` must be pinned by commit SHA with a version comment on its line."""
    problems = []
    workflow = yaml.safe_load(text)
    lines = text.splitlines()
    for step in steps(workflow):
        if "uses" not in step:
            continue
        action = step["uses"]
        matching = [line for line in lines if re.search(rf"uses:\s*{re.escape(action)}(\s|$)", line)]
        if not matching:
            problems.append(f"step action {action!r} not found on a line of its own")
        for line in matching:
            if not PINNED_STEP_LINE.match(line):
                problems.append(f"step action not pinned as owner/repo@<sha> # vX: {line.strip()!r}")
    return problems


def reusable_call_problems(workflows: dict[str, dict]) -> list[str]:
    """Each job-level `uses:` names a local workflow that exists, declares workflow_call, and gets
    only declared inputs and secrets, every required one included (or `secrets: inherit`)."""
    problems = []
    for caller, workflow in workflows.items():
        for job_name, job in workflow["jobs"].items():
            if "uses" not in job:
                continue
            where = f"{caller} job {job_name}"
            match = LOCAL_REUSABLE.match(str(job["uses"]))
            if not match:
                problems.append(f"{where}: uses {job['uses']!r}, expected ./.github/workflows/<file>")
                continue
            callee = workflows.get(match["file"])
            if callee is None:
                problems.append(f"{where}: calls {match['file']}, which does not exist")
                continue
            if "workflow_call" not in triggers(callee):
                problems.append(f"{where}: {match['file']} does not declare on.workflow_call")
                continue
            declared = triggers(callee)["workflow_call"] or {}
            for section in ("inputs", "secrets"):
                given = job.get("with" if section == "inputs" else "secrets") or {}
                if section == "secrets" and given == "inherit":
                    continue
                accepted = declared.get(section) or {}
                for key in given:
                    if key not in accepted:
                        problems.append(f"{where}: {section[:-1]} {key!r} is not declared by {match['file']}")
                for key, spec in accepted.items():
                    if (spec or {}).get("required") and key not in given:
                        problems.append(f"{where}: required {section[:-1]} {key!r} is not supplied")
    return problems


@pytest.fixture(scope="module")
def baked_workflows(cookies_session) -> dict[str, str]:
    result = cookies_session.bake()
    assert result.exit_code == 0, result.exception
    directory = result.project_path / ".github" / "workflows"
    return {path.name: path.read_text() for path in sorted(directory.glob("*.y*ml"))}


def test_every_step_action_is_pinned_by_sha_with_a_version_comment(baked_workflows) -> None:
    assert baked_workflows
    problems = [
        f"{name}: {problem}"
        for name, text in baked_workflows.items()
        for problem in step_action_problems(text)
    ]
    assert problems == []


def test_reusable_workflow_calls_name_a_callee_that_accepts_them(baked_workflows) -> None:
    workflows = {name: yaml.safe_load(text) for name, text in baked_workflows.items()}
    assert any("uses" in job for workflow in workflows.values() for job in workflow["jobs"].values())
    assert reusable_call_problems(workflows) == []


CALLEE = {
    "on": {
        "workflow_call": {
            "inputs": {"environment": {"required": True, "type": "string"}, "version": {"type": "string"}},
            "secrets": {"TOKEN": {"required": True}},
        }
    },
    "jobs": {"work": {"runs-on": "ubuntu-24.04", "steps": [{"run": "true"}]}},
}


def caller(**job: object) -> dict:
    return {"on": {"push": {}}, "jobs": {"call": {"uses": "./.github/workflows/callee.yml", **job}}}


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        ({"uses": "$/.github/workflows/callee.yml"}, "expected ./.github/workflows/<file>"),
        ({"uses": "./.github/workflows/missing.yml"}, "missing.yml, which does not exist"),
        (
            {"with": {"environment": "a", "colour": "b"}, "secrets": "inherit"},
            "input 'colour' is not declared",
        ),
        ({"with": {"version": "1"}, "secrets": "inherit"}, "required input 'environment' is not supplied"),
        ({"with": {"environment": "a"}, "secrets": {"OTHER": "x"}}, "secret 'OTHER' is not declared"),
        ({"with": {"environment": "a"}}, "required secret 'TOKEN' is not supplied"),
    ],
)
def test_reusable_call_check_catches_each_kind_of_mistake(job: dict, expected: str) -> None:
    problems = reusable_call_problems({"caller.yml": caller(**job), "callee.yml": CALLEE})
    assert any(expected in problem for problem in problems), problems
    valid = {"with": {"environment": "a"}, "secrets": {"TOKEN": "x"}}
    assert reusable_call_problems({"caller.yml": caller(**valid), "callee.yml": CALLEE}) == []


def test_reusable_call_check_needs_workflow_call_on_the_callee() -> None:
    push_only = {**CALLEE, "on": {"push": {}}}
    problems = reusable_call_problems({"caller.yml": caller(), "callee.yml": push_only})
    assert problems == ["caller.yml job call: callee.yml does not declare on.workflow_call"]


@pytest.mark.parametrize(
    ("line", "pinned"),
    [
        ("      - uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8 # v5.0.0", True),
        ("      - uses: github/codeql-action/init@" + "a" * 40 + "  # v3", True),
        ("      - uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8", False),
        ("      - uses: actions/checkout@v5 # v5", False),
        ("      - uses: actions/checkout@08c6903cd8c0 # v5.0.0", False),
        ("      - uses: ./.github/actions/setup", False),
    ],
)
def test_step_action_check_reads_the_line_as_written(line: str, pinned: bool) -> None:
    text = "on: push\njobs:\n  j:\n    runs-on: ubuntu-24.04\n    steps:\n" + line + "\n"
    assert (step_action_problems(text) == []) is pinned


SETUP_UV = "astral-sh/setup-uv@"


def installs_the_project(job: dict) -> bool:
    return any(
        "uv sync" in step.get("run", "") or "install" in step.get("run", "") for step in job.get("steps", [])
    )


@pytest.mark.parametrize("path", PROJECT_WORKFLOWS, ids=workflow_id)
def test_project_installs_with_uv_from_the_lock(path: Path) -> None:
    """setup-uv with its cache keyed on uv.lock, then a frozen sync whose .venv/bin is on the PATH."""
    for name, job in load(path)["jobs"].items():
        job_steps = job.get("steps", [])
        runs = [step.get("run", "") for step in job_steps]
        assert not any(re.search(r"\bpip\b|make install", run) for run in runs), f"{name}: pip-based install"
        assert not any(step.get("uses", "").startswith("actions/setup-python@") for step in job_steps), name
        if not any("mlops" in run for run in runs) and not installs_the_project(job):
            continue
        [setup] = [step for step in job_steps if step.get("uses", "").startswith(SETUP_UV)]
        assert setup["with"]["enable-cache"] is True and setup["with"]["cache-dependency-glob"] == "uv.lock"
        [install] = [index for index, run in enumerate(runs) if "uv sync" in run]
        assert "uv sync --frozen --all-extras" in runs[install]
        assert '/.venv/bin" >> "$GITHUB_PATH"' in runs[install]
        assert job_steps.index(setup) < install
        first_use = min(
            index
            for index, run in enumerate(runs)
            if "mlops" in run or "pytest" in run or "pre-commit" in run
        )
        assert install < first_use, f"{name}: a command runs before the install"


def test_dependabot_updates_the_uv_lock_and_the_actions() -> None:
    config = load(TEMPLATE_ROOT / "{{cookiecutter.project_slug}}" / ".github" / "dependabot.yml")
    assert {update["package-ecosystem"] for update in config["updates"]} == {"github-actions", "uv"}


def test_deploy_asks_the_cli_which_environments_exist() -> None:
    """The environment-name rule lives in the project config: no workflow repeats it as a pattern."""
    deploy = load(TEMPLATE_ROOT / "{{cookiecutter.project_slug}}" / ".github" / "workflows" / "deploy.yml")
    for path in PROJECT_WORKFLOWS:
        for step in steps(load(path)):
            assert not re.search(r"=~|grep -E|\[\[:", step.get("run", "")), f"{path.name}: {step.get('name')}"
    resolve = deploy["jobs"]["resolve"]
    runs = [step.get("run", "") for step in resolve["steps"]]
    [check] = [index for index, run in enumerate(runs) if "mlops environments --check" in run]
    checked = resolve["steps"][check]
    assert '"$BRANCH_ENVIRONMENT"' in checked["run"] and "BRANCH_ENVIRONMENT" in checked["env"]
    assert resolve["outputs"]["environment"] == f"${{{{ steps.{checked['id']}.outputs.name }}}}"
    checkout = next(
        i for i, s in enumerate(resolve["steps"]) if s.get("uses", "").startswith("actions/checkout@")
    )
    install = next(i for i, run in enumerate(runs) if "uv sync" in run)
    assert checkout < install < check
    # everything that changes an environment waits for the check
    assert deploy["jobs"]["deploy"]["needs"] == "resolve"
    assert "resolve" in deploy["jobs"]["promote-next"]["needs"]
