"""The service's modules stay light: no evidence stack, git or GitHub code, and no MLflow until a
model is loaded, so a serving process starts fast and carries only what answering requests needs."""

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
    "mlflow",
    f"{PACKAGE}.io.git",
    f"{PACKAGE}.io.github",
)
SERVICE = ("app", "server", "loading", "batching", "routing", "metrics")
RUNTIME_MODULES = [
    f"{PACKAGE}.serving",
    *(f"{PACKAGE}.serving.{name}" for name in SERVICE),
    f"{PACKAGE}.contracts.release",
    f"{PACKAGE}.config",
]


@pytest.mark.parametrize("module", RUNTIME_MODULES)
def test_importing_the_runtime_modules_imports_no_evidence_git_github_or_mlflow_code(module: str) -> None:
    probe = (
        f"import sys, {module}; "
        f"print('\\n'.join(name for name in sys.modules if name.split('.')[0] in {HEAVY!r} "
        f"or name in {HEAVY!r}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == [], f"importing {module} loaded {loaded}"
