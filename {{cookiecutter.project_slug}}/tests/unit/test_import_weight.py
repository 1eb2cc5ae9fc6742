"""The serving and config packages stay light: a service process must not import the evidence stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

PACKAGE = "{{ cookiecutter.package_name }}"
HEAVY = (
    "shap",
    "matplotlib",
    "fairlearn",
    "github",
    f"{PACKAGE}.io.git",
    f"{PACKAGE}.io.github",
)
RUNTIME_MODULES = [f"{PACKAGE}.serving", f"{PACKAGE}.contracts.release", f"{PACKAGE}.config"]


@pytest.mark.parametrize("module", RUNTIME_MODULES)
def test_importing_the_runtime_packages_imports_no_evidence_git_or_github_code(module: str) -> None:
    probe = (
        f"import sys, {module}; "
        f"print('\\n'.join(name for name in sys.modules if name.split('.')[0] in {HEAVY!r} "
        f"or name in {HEAVY!r}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == [], f"importing {module} loaded {loaded}"
