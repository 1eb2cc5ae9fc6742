"""Print the generated project's pinned dependencies (runtime and dev) as a requirements file.

The template's virtual environment installs exactly what a baked project would, so one environment
serves every project the tests bake. Jinja placeholders in the template's pyproject.toml are replaced
by dummy values before parsing; only the dependency lists are read.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

TEMPLATE_PYPROJECT = Path(__file__).resolve().parents[1] / "{{cookiecutter.project_slug}}" / "pyproject.toml"
BARE_PLACEHOLDER = re.compile(r"\{\{[^}]*\|\s*tojson\s*\}\}")
QUOTED_PLACEHOLDER = re.compile(r"\{\{[^}]*\}\}")


def project_requirements(pyproject: Path = TEMPLATE_PYPROJECT) -> list[str]:
    text = BARE_PLACEHOLDER.sub('"placeholder"', pyproject.read_text(encoding="utf-8"))
    document = tomllib.loads(QUOTED_PLACEHOLDER.sub("placeholder", text))
    project = document["project"]
    extras = project.get("optional-dependencies", {})
    return [*project["dependencies"], *(dependency for group in extras.values() for dependency in group)]


def main() -> int:
    for requirement in project_requirements():
        print(requirement)
    return 0


if __name__ == "__main__":
    sys.exit(main())
