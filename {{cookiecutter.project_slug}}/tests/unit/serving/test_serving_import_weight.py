"""The service modules stay light: no evidence stack, git or GitHub code; MLflow only once loading starts."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

PACKAGE = "{{ cookiecutter.package_name }}"
HEAVY = ("shap", "matplotlib", "fairlearn", "github", "mlflow", f"{PACKAGE}.io.git", f"{PACKAGE}.io.github")
SERVICE_MODULES = [
    f"{PACKAGE}.serving.{name}" for name in ("app", "server", "loading", "batching", "routing", "metrics")
]


def test_importing_the_service_imports_no_evidence_git_github_or_mlflow_code() -> None:
    probe = (
        f"import sys, {', '.join(SERVICE_MODULES)}; "
        f"print('\\n'.join(name for name in sys.modules if name.split('.')[0] in {HEAVY!r} "
        f"or name in {HEAVY!r}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []
