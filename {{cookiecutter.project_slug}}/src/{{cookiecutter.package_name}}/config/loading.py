"""Reading a YAML file into a pydantic model, with every problem named by file and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from {{ cookiecutter.package_name }}.errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)


def describe(error: dict[str, Any]) -> str:
    """One pydantic error as `key.path: what is wrong`."""
    location = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "required key is missing"
    elif error["type"] == "extra_forbidden":
        message = "unknown key (check the spelling)"
    return f"{location}: {message}"


def parse_yaml(text: str, source: str) -> Any:
    """The YAML document in `text`; a syntax error names the source, line and column."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{source}: not valid YAML{where}: {getattr(error, 'problem', error)}") from None


def validate(model: type[Model], document: Any, source: str, error: type[Exception] = ConfigError) -> Model:
    """`document` as `model`; every problem is reported with the key it concerns."""
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise error(f"{source}: expected a mapping of settings at the top level")
    try:
        return model.model_validate(document)
    except ValidationError as problems:
        raise error(f"{source}: " + "; ".join(describe(item) for item in problems.errors())) from None


def load_model(model: type[Model], path: Path) -> Model:
    """Read and validate one YAML file."""
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    return validate(model, parse_yaml(path.read_text(encoding="utf-8"), str(path)), str(path))
