"""The hook and the generated project accept exactly the same environment names.

Hooks run before the project exists and cannot import it, so the rule is written twice; this test
is what keeps the two the same.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import load_hook, tool_environment

NAMES = [
    "staging",
    "production",
    "prod-eu-1",
    "qa",
    "a",
    "a" * 30,
    "a" * 31,
    "Prod",
    "-prod",
    "prod-",
    "pro_d",
    "pro d",
    "env/x",
    "1st",
    "v2",
    "v10",
    "latest",
    "eu-challenger",
    "x..y",
]


@pytest.fixture(scope="module")
def project_verdicts(cookies_session) -> dict[str, bool]:
    result = cookies_session.bake(extra_context={"project_name": "Rule Check"})
    assert result.exit_code == 0, result.exception
    probe = (
        "import json, sys\n"
        "from rule_check.config.environment import environment_name_problem\n"
        "names = json.loads(sys.argv[1])\n"
        "print(json.dumps({name: environment_name_problem(name) is None for name in names}))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(NAMES)],
        capture_output=True,
        text=True,
        check=True,
        env=tool_environment(PYTHONPATH=str(result.project_path / "src")),
    )
    return json.loads(completed.stdout)


@pytest.mark.parametrize("name", NAMES)
def test_hook_and_project_agree_on_each_environment_name(name: str, project_verdicts) -> None:
    hook = load_hook("pre_gen_project")
    try:
        hook.parse_environments(name)
        accepted_by_hook = True
    except hook.AnswerError:
        accepted_by_hook = False
    assert accepted_by_hook == project_verdicts[name], name
