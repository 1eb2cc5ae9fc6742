"""The JSON Schemas of the project's YAML files, published under schemas/ for editors and CI.

`python -m <package> schemas --write` regenerates them; a test proves the published files equal the
models, so the schema an editor validates against is the one the code enforces.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from {{ cookiecutter.package_name }}.config.environment import EnvironmentSettings
from {{ cookiecutter.package_name }}.contracts.release import Release

SCHEMAS_DIR = "schemas"


def published_models() -> dict[str, type[BaseModel]]:
    """File name under schemas/ -> the model it describes."""
    models: dict[str, type[BaseModel]] = {
        "environment.schema.json": EnvironmentSettings,
        "release.schema.json": Release,
    }
    try:
        from {{ cookiecutter.package_name }}.config.thresholds import Thresholds
    except ImportError:  # pragma: no cover - the thresholds model is optional in older layouts
        return models
    models["thresholds.schema.json"] = Thresholds
    return models


def render_schema(model: type[BaseModel]) -> str:
    schema = model.model_json_schema(by_alias=True)
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_schemas(root: Path) -> list[Path]:
    """Write every schema under root/schemas/; returns the paths written."""
    directory = root / SCHEMAS_DIR
    directory.mkdir(exist_ok=True)
    written = []
    for name, model in published_models().items():
        path = directory / name
        path.write_text(render_schema(model), encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(root: Path) -> list[str]:
    """Names of the published schemas that differ from the models (or are missing)."""
    directory = root / SCHEMAS_DIR
    return [
        name
        for name, model in published_models().items()
        if not (directory / name).is_file()
        or (directory / name).read_text(encoding="utf-8") != render_schema(model)
    ]
