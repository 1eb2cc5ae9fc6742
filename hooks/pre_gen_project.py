"""Validate every answer before cookiecutter writes anything.

On bad input: one line per problem naming the field, the value and the expected form, then exit 1.
Cookiecutter removes the output directory it created, so nothing is left on disk.

Cookiecutter renders this file with Jinja before running it; the answers arrive as one JSON
document in ANSWERS, so the validation functions below can also be imported and tested directly.
"""

from __future__ import annotations

import json
import keyword
import os
import re
import sys
from email.errors import MessageError
from email.headerregistry import Address
from pathlib import Path

ANSWERS = r"""{{ cookiecutter | jsonify }}"""

PYTHON_VERSIONS = ("3.11", "3.12", "3.13")
MODEL_FAMILIES = ("hist_gradient_boosting", "random_forest", "logistic_regression")
SLUG_MAX_LENGTH = 100
SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")
PACKAGE_PATTERN = re.compile(r"^[a-z_][a-z0-9_]*$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
GITHUB_OWNER_PATTERN = re.compile(r"^[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}$")
ENVIRONMENT_MAX_LENGTH = 30
ENVIRONMENT_PATTERN = re.compile(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?$")
RESERVED_ALIAS_PATTERN = re.compile(r"^v\d+$")
BOOLEAN_WORDS = {
    "true": True,
    "yes": True,
    "y": True,
    "1": True,
    "false": False,
    "no": False,
    "n": False,
    "0": False,
}


class AnswerError(ValueError):
    """One bad answer: the field, the value received and the expected form."""

    def __init__(self, field: str, value: object, expected: str) -> None:
        super().__init__(f"{field} = {value!r} is invalid: {expected}")
        self.field = field


def check_project_name(value: str) -> None:
    if not str(value).strip():
        raise AnswerError("project_name", value, "expected a non-empty name")


def check_project_slug(value: str) -> None:
    if len(str(value)) > SLUG_MAX_LENGTH:
        raise AnswerError(
            "project_slug",
            value,
            f"expected at most {SLUG_MAX_LENGTH} characters, got {len(str(value))} "
            "(answer a shorter project_slug, or a shorter project_name to derive it from)",
        )
    if not SLUG_PATTERN.match(str(value)) or ".." in str(value):
        raise AnswerError(
            "project_slug",
            value,
            "expected lowercase letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
        )


def check_package_name(value: str) -> None:
    text = str(value)
    if keyword.iskeyword(text) or keyword.issoftkeyword(text):
        raise AnswerError("package_name", value, "expected a Python identifier that is not a keyword")
    if not text.isidentifier() or not PACKAGE_PATTERN.match(text):
        raise AnswerError(
            "package_name",
            value,
            "expected a lowercase Python identifier (letters, digits, '_'; not starting with a digit)",
        )


def check_author_email(value: str) -> None:
    """The address goes into the package metadata, whose parser (the standard library's) must keep it."""
    text = str(value)
    local_part = text.rpartition("@")[0]
    if not local_part.isascii():
        raise AnswerError(
            "author_email",
            value,
            "expected only ASCII characters before the '@': Python package metadata refuses others, "
            "so the project could not be installed",
        )
    if not EMAIL_PATTERN.match(text) or not metadata_keeps_address(text):
        raise AnswerError("author_email", value, "expected an e-mail address such as team@example.com")


def metadata_keeps_address(text: str) -> bool:
    """True when the parser that writes a package's Author-email reads `text` back unchanged."""
    try:
        return Address(addr_spec=text).addr_spec == text
    except (ValueError, IndexError, MessageError):
        return False


def check_github_owner(value: str) -> None:
    if not GITHUB_OWNER_PATTERN.match(str(value)):
        raise AnswerError(
            "github_owner",
            value,
            "expected a GitHub user or organisation name "
            "(letters, digits, single '-', at most 39 characters)",
        )


def check_choice(field: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise AnswerError(field, value, f"expected one of: {', '.join(choices)}")


def parse_environments(value: str) -> list[str]:
    """Split the promotion order into names.

    Each name becomes a branch `env/<name>`, a GitHub Environment and an MLflow alias.
    """
    names = [name.strip() for name in str(value).split(",")]
    if not str(value).strip() or any(not name for name in names):
        raise AnswerError(
            "environments", value, "expected a comma-separated list of names, e.g. 'staging,production'"
        )
    seen: set[str] = set()
    for name in names:
        if len(name) > ENVIRONMENT_MAX_LENGTH:
            raise AnswerError(
                "environments",
                value,
                f"{name!r} is too long: expected at most {ENVIRONMENT_MAX_LENGTH} characters, "
                f"got {len(name)}",
            )
        if not ENVIRONMENT_PATTERN.match(name):
            raise AnswerError(
                "environments",
                value,
                f"{name!r} is not a valid environment name: expected lowercase letters, digits and '-', "
                "starting with a letter (it names the git branch env/<name>, so no spaces, '/' or '..')",
            )
        if name == "latest" or name.endswith("-challenger"):
            raise AnswerError(
                "environments",
                value,
                f"{name!r} collides with an MLflow alias ('latest' is reserved; '<env>-challenger' names "
                "the challenger of <env>)",
            )
        if RESERVED_ALIAS_PATTERN.match(name):
            raise AnswerError(
                "environments", value, f"{name!r} looks like a version ('v<number>'), which MLflow reserves"
            )
        if name in seen:
            raise AnswerError("environments", value, f"{name!r} appears twice; expected distinct names")
        seen.add(name)
    return names


def available_policy_packs(template_dir: Path) -> list[str]:
    policies = template_dir / "policies"
    if not policies.is_dir():
        return []
    return sorted(
        entry.name for entry in policies.iterdir() if entry.is_dir() and (entry / "thresholds.yaml").is_file()
    )


def check_policy_pack(value: str, template_dir: Path) -> None:
    packs = available_policy_packs(template_dir)
    if value not in packs:
        raise AnswerError("policy_pack", value, f"expected one of the packs in policies/: {', '.join(packs)}")


def parse_boolean(field: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word not in BOOLEAN_WORDS:
        raise AnswerError(field, value, "expected true or false")
    return BOOLEAN_WORDS[word]


def validate_answers(answers: dict, template_dir: Path) -> list[str]:
    """Return one message per invalid answer (empty when all are valid)."""
    checks = [
        lambda: check_project_name(answers.get("project_name", "")),
        lambda: check_project_slug(answers.get("project_slug", "")),
        lambda: check_package_name(answers.get("package_name", "")),
        lambda: check_author_email(answers.get("author_email", "")),
        lambda: check_github_owner(answers.get("github_owner", "")),
        lambda: check_choice("python_version", answers.get("python_version", ""), PYTHON_VERSIONS),
        lambda: check_choice("model_family", answers.get("model_family", ""), MODEL_FAMILIES),
        lambda: parse_environments(answers.get("environments", "")),
        lambda: check_policy_pack(answers.get("policy_pack", ""), template_dir),
        lambda: parse_boolean("init_git", answers.get("init_git", True)),
    ]
    problems = []
    for check in checks:
        try:
            check()
        except AnswerError as error:
            problems.append(str(error))
    return problems


def find_template_dir(answers: dict) -> Path:
    """The template's root, which cookiecutter passes as given (maybe relative) and cruft not at all.

    The hook runs inside the new project, but cookiecutter (and cruft, through it) runs hooks from
    inside the template, so its own working directory is the template: tried first, because the
    directory the command was started from (PWD) may hold another copy of the template.
    """
    given = Path(str(answers.get("_repo_dir") or "."))
    if given.is_absolute():
        return given
    candidates = [Path(f"/proc/{os.getppid()}/cwd"), Path(os.environ.get("PWD", ".")) / given]
    for candidate in candidates:
        if (candidate / "cookiecutter.json").is_file() and (candidate / "policies").is_dir():
            return candidate.resolve()
    return given.resolve()


def main() -> int:
    answers = json.loads(ANSWERS)
    template_dir = find_template_dir(answers)
    problems = validate_answers(answers, template_dir)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        print("Nothing was generated. Fix the answers above and run again.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
