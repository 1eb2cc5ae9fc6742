"""Bring your own data: a baked project configured for another data set through project.yaml alone.

The project is baked with the default answers (for this interpreter's Python), the demo sample is
replaced by tests/data/arrests.csv (another target, other columns, a sensitive attribute that is not
a model input; see tests/data/README.md), project.yaml's `data` section is the only edit, and the
generated suite must pass: the project tests on the team's data, and every framework test the edit
can reach (FRAMEWORK_TESTS_THAT_SEE_THE_PROJECT_ROOT), on their own fixture data.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
import yaml
from conftest import TEMPLATE_ROOT, tool_environment

pytestmark = pytest.mark.slow

ARRESTS = TEMPLATE_ROOT / "tests" / "data" / "arrests.csv"
ARRESTS_DATA = {
    "name": "toronto-arrests",
    "path": "data/arrests.csv",
    "target": "released",
    "positive_label": "Yes",
    "numeric_features": ["year", "age", "checks"],
    "categorical_features": ["sex", "employed", "citizen"],
    "sensitive_features": ["colour", "sex"],
    "ignore_columns": ["colour"],
}
DEMO_COLUMNS = {"income", "education-num", "hours-per-week", "race", "native-country"}
PYTHON_CHOICES = json.loads((TEMPLATE_ROOT / "cookiecutter.json").read_text())["python_version"]
# The team's edit (project.yaml and data/ only, asserted below) reaches a framework test only through the
# project root: unit tests may read the project's files (the exit-code tests load its project.yaml) and
# the GitOps loop copies the whole tree into its remote. The integration and other end-to-end tests build
# their projects from tests/fixtures alone (install_fixture_project), so here they would repeat what the
# default bake of test_generated_projects (the same answers) already runs. The permutation-explainer
# test fits a model of its own on a table of its own.
FRAMEWORK_TESTS_THAT_SEE_THE_PROJECT_ROOT = (
    "tests/unit",
    "tests/e2e/test_gitops_workflows.py::test_main_to_staging_to_production",
    "--deselect=tests/unit/governance/test_explainability.py"
    "::test_unknown_estimator_falls_back_to_permutation_explainer",
)


def git(project: Path, *arguments: str) -> str:
    completed = subprocess.run(["git", *arguments], cwd=project, capture_output=True, text=True, check=True)
    return completed.stdout


@pytest.fixture(scope="module")
def own_data_project(cookies_session) -> tuple[Path, str]:
    """The default project, its data replaced as a team would: copy the CSV, edit project.yaml, commit.

    Returns the project and the path of the demo file it no longer has.
    """
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    python = python if python in PYTHON_CHOICES else PYTHON_CHOICES[0]
    result = cookies_session.bake(extra_context={"project_name": "Arrest Outcomes", "python_version": python})
    assert result.exit_code == 0, result.exception
    project = result.project_path
    demo = yaml.safe_load((project / "project.yaml").read_text(encoding="utf-8"))["data"]["path"]
    (project / demo).unlink()
    shutil.copy(ARRESTS, project / ARRESTS_DATA["path"])
    config_file = project / "project.yaml"
    document = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    document["data"] = ARRESTS_DATA
    config_file.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    git(project, "add", "--all")
    git(
        project, "-c", "user.name=team", "-c", "user.email=team@example.com", "commit", "-q", "-m", "Our data"
    )
    return project, demo


def test_the_data_set_shares_nothing_with_the_demo_but_the_format() -> None:
    header = ARRESTS.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert not DEMO_COLUMNS & set(header)
    declared = {
        ARRESTS_DATA["target"],
        *ARRESTS_DATA["numeric_features"],
        *ARRESTS_DATA["categorical_features"],
    }
    assert declared | set(ARRESTS_DATA["ignore_columns"]) == set(header)
    assert set(ARRESTS_DATA["sensitive_features"]) <= set(header)


def test_generated_suite_passes_on_another_data_set(
    own_data_project: tuple[Path, str], tmp_path: Path
) -> None:
    project, demo = own_data_project
    changed = git(project, "diff", "--name-only", "--no-renames", "HEAD~1", "HEAD").split()
    assert sorted(changed) == sorted(["project.yaml", demo, ARRESTS_DATA["path"]]), (
        "project.yaml and data only"
    )
    results = tmp_path / "results.xml"
    environment = tool_environment(REQUIRE_BROWSER="1", PYTHONPATH=str(project / "src"))
    tests = subprocess.run(
        [
            *[sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={results}"],
            *["tests/project", *FRAMEWORK_TESTS_THAT_SEE_THE_PROJECT_ROOT],
        ],
        cwd=project,
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=1800,
    )
    assert tests.returncode == 0, tests.stdout[-5000:] + tests.stderr[-3000:]
    cases = ElementTree.parse(results).getroot().iter("testcase")
    outcomes: dict[str, list[str]] = {}
    for case in cases:
        outcome = next(
            (child.tag for child in case if child.tag in {"failure", "error", "skipped"}), "passed"
        )
        outcomes.setdefault(outcome, []).append(f"{case.get('classname')}.{case.get('name')}")
    assert set(outcomes) == {"passed"}, {key: value for key, value in outcomes.items() if key != "passed"}
    project_checks = [name for name in outcomes["passed"] if name.startswith("tests.project.")]
    assert len(project_checks) >= 5, "the project tests on the team's data must have run"
    assert any("beats_the_majority_baseline" in name for name in project_checks)
    assert any(name.startswith("tests.unit.") for name in outcomes["passed"]), "the unit tests must have run"
    assert any("test_main_to_staging_to_production" in name for name in outcomes["passed"])
