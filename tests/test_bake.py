"""Bake the template with real cookiecutter (pytest-cookies) and check what comes out."""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import TEMPLATE_ROOT, load_hook
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

CHOICES = json.loads((TEMPLATE_ROOT / "cookiecutter.json").read_text())
# Every choice value appears at least once; free-text answers vary too.
MATRIX = [
    {
        "project_name": "Churn Model",
        "python_version": "3.11",
        "model_family": "hist_gradient_boosting",
        "policy_pack": "standard",
    },
    {
        "project_name": "Credit Risk",
        "python_version": "3.12",
        "model_family": "random_forest",
        "policy_pack": "strict",
        "environments": "dev,qa,prod",
        "init_git": False,
    },
    {
        "project_name": "Fraud Score",
        "python_version": "3.13",
        "model_family": "logistic_regression",
        "policy_pack": "standard",
        "environments": "staging",
        "author_name": 'Ana O\'Neil "AO"',
    },
]
# `{{ .field }}` and `{{ toJson .field }}` are Go templates Argo CD expands (deploy/argocd/).
LEFTOVER_JINJA = re.compile(r"(?<!\$)\{\{(?! (?:toJson )?\.[a-z])|\{%|\{#")
# Set by each leg of the template's CI to its interpreter's version: the slow tests then bake and run
# only the entries generated for that Python, so each baked project runs under its own interpreter once.
PYTHON_VERSION_VARIABLE = "BAKE_PYTHON_VERSION"


def matrix_for_this_interpreter() -> list[dict]:
    """The MATRIX entries whose python_version is $BAKE_PYTHON_VERSION; all of them when it is unset."""
    wanted = os.environ.get(PYTHON_VERSION_VARIABLE, "").strip()
    if not wanted:
        return MATRIX
    if wanted not in CHOICES["python_version"]:
        raise ValueError(f"{PYTHON_VERSION_VARIABLE}={wanted!r}: expected one of {CHOICES['python_version']}")
    return [options for options in MATRIX if options["python_version"] == wanted]


def test_matrix_covers_every_choice() -> None:
    for variable in ("python_version", "model_family", "policy_pack"):
        assert {options[variable] for options in MATRIX} == set(CHOICES[variable]), variable


def test_each_interpreter_bakes_its_own_matrix_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PYTHON_VERSION_VARIABLE, raising=False)
    assert matrix_for_this_interpreter() == MATRIX
    selected = []
    for version in CHOICES["python_version"]:
        monkeypatch.setenv(PYTHON_VERSION_VARIABLE, version)
        entries = matrix_for_this_interpreter()
        assert entries and {options["python_version"] for options in entries} == {version}
        selected += entries
    assert sorted(map(json.dumps, selected)) == sorted(map(json.dumps, MATRIX)), "every entry, once"
    monkeypatch.setenv(PYTHON_VERSION_VARIABLE, "2.7")
    with pytest.raises(ValueError, match=r"BAKE_PYTHON_VERSION='2\.7'"):
        matrix_for_this_interpreter()


@pytest.fixture(scope="module", params=MATRIX, ids=lambda options: options["model_family"])
def baked(request: pytest.FixtureRequest, cookies_session):
    """One bake per matrix entry, shared by every test of this module (they only read it)."""
    result = cookies_session.bake(extra_context=request.param)
    assert result.exit_code == 0, result.exception
    return request.param, result.project_path


def text_files(root: Path):
    """Every text file of the project except its own Jinja templates (the model card's *.j2)."""
    for path in root.rglob("*"):
        if path.is_file() and ".git" not in path.relative_to(root).parts and path.suffix != ".j2":
            try:
                yield path, path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue


def test_no_template_syntax_is_left_in_any_file(baked) -> None:
    _, project = baked
    leftovers = [
        f"{path.relative_to(project)}: {match.group()}"
        for path, text in text_files(project)
        for match in [LEFTOVER_JINJA.search(text)]
        if match
    ]
    assert leftovers == []
    assert not [path for path in project.rglob("*") if "cookiecutter" in path.name]


def test_project_config_reflects_the_answers(baked) -> None:
    options, project = baked
    config = yaml.safe_load((project / "project.yaml").read_text())
    expected_environments = [
        name.strip() for name in options.get("environments", "staging,production").split(",")
    ]
    assert config["environments"] == expected_environments
    assert config["model"]["family"] == options["model_family"]
    assert config["policy_pack"] == options["policy_pack"]
    assert (project / ".python-version").read_text().strip() == options["python_version"]


def test_production_limits_apply_to_the_last_environment(baked) -> None:
    options, project = baked
    names = [name.strip() for name in options.get("environments", "staging,production").split(",")]
    thresholds = yaml.safe_load((project / "policies" / "thresholds.yaml").read_text())
    pack = yaml.safe_load(
        (TEMPLATE_ROOT / "policies" / options["policy_pack"] / "thresholds.yaml").read_text()
    )
    assert thresholds["environments"][names[-1]] == pack["environments"]["production"]


def test_each_environment_gets_its_settings_file(baked) -> None:
    options, project = baked
    expected = [name.strip() for name in options.get("environments", "staging,production").split(",")]
    settings = sorted(path.stem for path in (project / "environments").glob("*.yaml"))
    assert settings == sorted(expected)
    for name in expected:
        document = yaml.safe_load((project / "environments" / f"{name}.yaml").read_text())
        assert document["rollout"]["strategy"] == "direct"


def test_pyproject_is_valid_and_names_the_package(baked) -> None:
    import tomllib

    options, project = baked
    document = tomllib.loads((project / "pyproject.toml").read_text())
    package = project.name.replace("-", "_")
    assert document["project"]["scripts"] == {package: f"{package}.cli:main", "mlops": f"{package}.cli:main"}
    assert (project / "src" / package / "cli.py").is_file()
    if "author_name" in options:
        assert document["project"]["authors"][0]["name"] == options["author_name"]
    assert all("==" in requirement for requirement in document["project"]["dependencies"])


def test_chosen_policy_pack_is_installed_verbatim(baked) -> None:
    options, project = baked
    names = [name.strip() for name in options.get("environments", "staging,production").split(",")]
    policies, installed = TEMPLATE_ROOT / "policies", project / "policies"
    # One promotion policy for every pack (a pack of the older layout may still carry its own).
    rules = policies / "promotion.rego"
    rules = rules if rules.is_file() else policies / options["policy_pack"] / "promotion.rego"
    assert sorted(path.name for path in installed.iterdir()) == [
        "monitoring.rego",
        "monitoring.yaml",
        "promotion.rego",
        "thresholds.yaml",
    ]
    assert filecmp.cmp(rules, installed / "promotion.rego", shallow=False)
    assert filecmp.cmp(policies / "monitoring.rego", installed / "monitoring.rego", shallow=False)
    # Each pack's limits change only when its production section moves to another last environment.
    for name in ("thresholds.yaml", "monitoring.yaml"):
        unchanged = filecmp.cmp(policies / options["policy_pack"] / name, installed / name, shallow=False)
        assert unchanged == ("production" in names), name


def test_framework_fixtures_keep_the_shipped_card_text_and_the_demo_data_shape(baked) -> None:
    """The framework tests read tests/fixtures/, which the team never edits: it starts as the demo."""
    _, project = baked
    fixtures = project / "tests" / "fixtures"
    assert (fixtures / "model_card.yaml").read_bytes() == (project / "model_card.yaml").read_bytes()
    demo_header = (project / "data" / "adult_sample.csv").read_text(encoding="utf-8").splitlines()[0]
    fixture_lines = (fixtures / "data" / "adult_fixture.csv").read_text(encoding="utf-8").splitlines()
    assert fixture_lines[0] == demo_header and len(fixture_lines) == 1 + 1500
    demo_rows = set((project / "data" / "adult_sample.csv").read_text(encoding="utf-8").splitlines()[1:])
    assert set(fixture_lines[1:]) <= demo_rows


def test_the_demo_data_digest_known_to_the_model_card_is_the_shipped_file() -> None:
    """Checked here, not in the generated suite: the team replaces data/adult_sample.csv."""
    project = TEMPLATE_ROOT / "{{cookiecutter.project_slug}}"
    source = (project / "src" / "{{cookiecutter.package_name}}" / "governance" / "model_card.py").read_text()
    [digest] = re.findall(r'DEMO_DATA_SHA256 = "([0-9a-f]{64})"', source)
    assert hashlib.sha256((project / "data" / "adult_sample.csv").read_bytes()).hexdigest() == digest


def test_git_repository_is_initialised_only_when_asked(baked) -> None:
    options, project = baked
    if options.get("init_git", True) is False:
        assert not (project / ".git").exists()
        return
    log = subprocess.run(
        ["git", "log", "--format=%s", "main"], cwd=project, capture_output=True, text=True, check=True
    )
    assert len(log.stdout.strip().splitlines()) == 1
    status = subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True)
    assert status.stdout == "", "the first commit must hold every generated file"


def test_post_generation_hook_is_safe_to_run_twice(cookies) -> None:
    result = cookies.bake(extra_context={"policy_pack": "strict"})
    project = result.project_path
    post_gen = load_hook("post_gen_project")
    answers = {"project_name": "x", "author_name": "x", "author_email": "x@example.com"}
    before = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True).stdout
    post_gen.install_policy_pack(TEMPLATE_ROOT, "strict", project)
    post_gen.init_git_repository(project, answers)
    after = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True).stdout
    assert before == after
    assert (
        subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True).stdout
        == ""
    )


def test_missing_git_is_skipped_with_a_message(
    cookies, monkeypatch: pytest.MonkeyPatch, capsys, tmp_path
) -> None:
    post_gen = load_hook("post_gen_project")
    monkeypatch.setattr(post_gen.shutil, "which", lambda name: None)
    post_gen.init_git_repository(tmp_path, {"project_name": "x"})
    assert "git was not found" in capsys.readouterr().out
    assert not (tmp_path / ".git").exists()


BAD_ANSWERS = [
    ({"package_name": "class"}, "package_name = 'class' is invalid"),
    ({"package_name": "1model"}, "package_name = '1model' is invalid"),
    ({"package_name": "my-model"}, "package_name = 'my-model' is invalid"),
    ({"environments": "staging,staging"}, "'staging' appears twice"),
    ({"environments": "prod uction"}, "'prod uction' is not a valid environment name"),
    ({"environments": "a..b"}, "'a..b' is not a valid environment name"),
    ({"environments": "env/x"}, "'env/x' is not a valid environment name"),
    ({"environments": ""}, "environments = '' is invalid"),
    ({"author_email": "nobody"}, "author_email = 'nobody' is invalid"),
]


@pytest.mark.parametrize(("answers", "message"), BAD_ANSWERS, ids=[str(a) for a, _ in BAD_ANSWERS])
def test_bad_answer_is_rejected_and_leaves_nothing(
    answers: dict, message: str, tmp_path: Path, capfd
) -> None:
    with pytest.raises(FailedHookException):
        cookiecutter(str(TEMPLATE_ROOT), no_input=True, extra_context=answers, output_dir=str(tmp_path))
    assert message in capfd.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_unknown_policy_pack_is_rejected_by_the_command_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            "-o",
            str(tmp_path),
            str(TEMPLATE_ROOT),
            "policy_pack=lenient",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "lenient" in result.stderr and "policy_pack" in result.stderr
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_hook_failure_through_the_command_line_exits_1_with_the_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            "-o",
            str(tmp_path),
            str(TEMPLATE_ROOT),
            "package_name=class",
            "environments=staging,staging",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "package_name = 'class' is invalid" in result.stderr
    assert "'staging' appears twice" in result.stderr
    assert list(tmp_path.iterdir()) == []
