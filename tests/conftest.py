"""Shared helpers for the template's tests."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def load_hook(name: str) -> ModuleType:
    """Import a hook file as it is in the template (its Jinja placeholder is only read by main())."""
    path = TEMPLATE_ROOT / "hooks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tool_environment(**extra: str) -> dict[str, str]:
    """The environment for subprocesses: this virtual environment's tools first on PATH."""
    environment = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    environment.pop("MLFLOW_TRACKING_URI", None)
    # Baked projects train with OpenMP; one thread each, as their own test suites do (their conftest):
    # two template workers each running a suite and its commands would otherwise oversubscribe the cores.
    environment.setdefault("OMP_NUM_THREADS", "1")
    environment.update(extra)
    return environment


@pytest.fixture(scope="session")
def template_root() -> Path:
    return TEMPLATE_ROOT
