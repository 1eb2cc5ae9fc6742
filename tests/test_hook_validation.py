"""The answer checks of hooks/pre_gen_project.py, called directly."""

from __future__ import annotations

from pathlib import Path

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


@pytest.mark.parametrize("email", ["jürgen@example.com", "ml-équipe@example.com", "数据@example.com"])
def test_author_email_with_a_non_ascii_local_part_is_refused(email: str) -> None:
    [problem] = problems_for(author_email=email)
    assert problem.startswith(f"author_email = {email!r} is invalid")
    assert "ASCII" in problem


@pytest.mark.parametrize("email", ["a(comment)@example.com", "a..b@example.com", "a,b@example.com"])
def test_author_email_that_package_metadata_cannot_hold_is_refused(email: str) -> None:
    from email.headerregistry import Address

    # the parser that writes the package's Author-email refuses or rewrites these addresses
    try:
        parsed = Address(addr_spec=email).addr_spec
    except (ValueError, IndexError):
        parsed = None
    assert parsed != email
    [problem] = problems_for(author_email=email)
    assert problem.startswith("author_email = ")


@pytest.mark.parametrize("email", ["ml.team+models@example.co.uk", "o'brien@example.com", "ml@exämple.com"])
def test_author_email_that_package_metadata_can_hold_is_accepted(email: str) -> None:
    assert problems_for(author_email=email) == []


def default_answers(**given: str) -> dict:
    """The answers cookiecutter derives from cookiecutter.json when only `given` is answered."""
    from cookiecutter.generate import generate_context
    from cookiecutter.prompt import prompt_for_config

    context = generate_context(context_file=str(TEMPLATE_ROOT / "cookiecutter.json"), extra_context=given)
    return dict(prompt_for_config(context, no_input=True))


@pytest.mark.parametrize(
    ("project_name", "slug"),
    [
        ("Acme's Risk Model", "acmes-risk-model"),
        ("Income Classifier", "income-classifier"),
        ("R&D: Churn (v2)", "rd-churn-v2"),
        ("Café Model", "cafe-model"),
        ("my_model", "my-model"),
        ("  Fraud   Detector  ", "fraud-detector"),
        ("Model v1.2!", "model-v12"),
    ],
)
def test_slug_and_package_defaults_drop_punctuation(project_name: str, slug: str) -> None:
    answers = default_answers(project_name=project_name)
    assert answers["project_slug"] == slug
    assert answers["package_name"] == slug.replace("-", "_")
    assert pre_gen.validate_answers({**VALID, **answers}, TEMPLATE_ROOT) == []


def test_a_project_name_with_punctuation_bakes(tmp_path) -> None:
    from cookiecutter.main import cookiecutter

    project = Path(
        cookiecutter(
            str(TEMPLATE_ROOT),
            no_input=True,
            output_dir=str(tmp_path),
            extra_context={"project_name": "Acme's Risk Model", "init_git": False},
        )
    )
    assert project.name == "acmes-risk-model"
    assert (project / "src" / "acmes_risk_model" / "__init__.py").is_file()


def test_too_long_slug_is_refused_with_the_length_limit() -> None:
    slug = "a" * 101
    [problem] = problems_for(project_slug=slug)
    assert problem.startswith("project_slug = ")
    assert "at most 100 characters" in problem
    assert "101" in problem
    assert problems_for(project_slug="a" * 100) == []


def test_too_long_environment_name_is_refused_with_the_length_limit() -> None:
    name = "e" * 31
    [problem] = problems_for(environments=f"staging,{name}")
    assert f"{name!r}" in problem
    assert "at most 30 characters" in problem
    assert problems_for(environments=f"staging,{'e' * 30}") == []
