"""The answer checks of hooks/pre_gen_project.py, called directly."""

from __future__ import annotations

import pytest
from conftest import TEMPLATE_ROOT, load_hook

pre_gen = load_hook("pre_gen_project")

VALID = {
    "project_name": "Churn Model",
    "project_slug": "churn-model",
    "package_name": "churn_model",
    "author_name": "Data Team",
    "author_email": "data@example.com",
    "github_owner": "acme-corp",
    "python_version": "3.12",
    "model_family": "random_forest",
    "environments": "staging,production",
    "policy_pack": "standard",
    "init_git": True,
}


def problems_for(**changes: object) -> list[str]:
    return pre_gen.validate_answers({**VALID, **changes}, TEMPLATE_ROOT)


def test_valid_answers_have_no_problem() -> None:
    assert problems_for() == []


@pytest.mark.parametrize("name", ["class", "1model", "my-model", "Model", "match", ""])
def test_package_name_must_be_a_lowercase_identifier_and_not_a_keyword(name: str) -> None:
    [problem] = problems_for(package_name=name)
    assert problem.startswith(f"package_name = {name!r} is invalid")


@pytest.mark.parametrize(
    ("environments", "reason"),
    [
        ("", "comma-separated list"),
        ("staging,", "comma-separated list"),
        ("staging,staging", "'staging' appears twice"),
        ("prod uction", "'prod uction' is not a valid environment name"),
        ("a..b", "'a..b' is not a valid environment name"),
        ("env/x", "'env/x' is not a valid environment name"),
        ("Staging", "'Staging' is not a valid environment name"),
        ("v2", "reserves"),
        ("latest", "collides with an MLflow alias"),
        ("staging,staging-challenger", "collides with an MLflow alias"),
    ],
)
def test_environment_list_must_be_distinct_git_ref_safe_names(environments: str, reason: str) -> None:
    [problem] = problems_for(environments=environments)
    assert problem.startswith("environments = ")
    assert reason in problem


def test_environment_names_are_trimmed() -> None:
    assert pre_gen.parse_environments(" dev , qa,prod ") == ["dev", "qa", "prod"]


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "a b@example.com", "@example.com"])
def test_author_email_must_be_an_address(email: str) -> None:
    [problem] = problems_for(author_email=email)
    assert problem.startswith("author_email = ")


def test_policy_pack_must_exist_in_policies_directory() -> None:
    [problem] = problems_for(policy_pack="lenient")
    assert "policy_pack = 'lenient'" in problem
    for pack in pre_gen.available_policy_packs(TEMPLATE_ROOT):
        assert pack in problem


def test_every_policy_pack_directory_is_offered_as_a_choice() -> None:
    import json

    choices = json.loads((TEMPLATE_ROOT / "cookiecutter.json").read_text())["policy_pack"]
    assert sorted(choices) == pre_gen.available_policy_packs(TEMPLATE_ROOT)


@pytest.mark.parametrize(("field", "value"), [("github_owner", "-acme"), ("project_slug", "My Project")])
def test_other_fields_are_checked(field: str, value: str) -> None:
    [problem] = problems_for(**{field: value})
    assert problem.startswith(f"{field} = ")


def test_several_problems_are_all_reported() -> None:
    assert len(problems_for(package_name="class", author_email="x", environments="a,a")) == 3


@pytest.mark.parametrize(("value", "expected"), [(True, True), ("no", False), ("yes", True), (False, False)])
def test_init_git_accepts_booleans_and_words(value: object, expected: bool) -> None:
    assert pre_gen.parse_boolean("init_git", value) is expected


def test_init_git_rejects_other_words() -> None:
    [problem] = problems_for(init_git="maybe")
    assert problem.startswith("init_git = 'maybe'")
