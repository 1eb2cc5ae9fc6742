"""Installing the generated project: pip against uv, cold and warm, side by side in one run.

Bakes the default project into a temporary directory, then times four installs of it with its dev tools:
  pip   `python -m venv .venv` + `pip install -e '.[dev]'` (what `make install` ran before uv; pip resolves)
  uv    `uv sync --frozen --compile-bytecode --extra dev` (what `make install` runs now; uv installs uv.lock
        as it is)
each cold (an empty cache directory, a new virtual environment) and warm (the cache the cold run filled, a
new virtual environment). Both tools read the public index only: pip and uv configuration from the machine
and the environment is ignored, so neither gets a local mirror or wheel directory the other does not.
Each run is checked by importing the project and the heavy libraries with the interpreter it installed.
Prints seconds and the ratio uv/pip. Needs PyPI; the cold runs download everything (about 1 GB unpacked).
Both compile every module to bytecode while they install, as `make install` does (pip by default, uv with
--compile-bytecode): where PYTHONDONTWRITEBYTECODE is set nothing compiled on import is kept, so an
environment left uncompiled would make every later process slower.
Usage: python benchmarks/install.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROJECT_NAME = "Bench Model"
IMPORT_CHECK = "import {package}, mlflow, shap, fairlearn, sklearn, github, pytest, xdist"


def find_uv() -> str:
    for candidate in (os.environ.get("UV"), str(BIN / "uv"), shutil.which("uv")):
        if candidate and Path(candidate).is_file():
            return os.path.abspath(candidate)
    raise SystemExit("uv not found: run `make install` (the template's environment has it)")


def clean_environment() -> dict[str, str]:
    """The caller's environment without pip or uv settings, and with no pip configuration file."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("PIP_", "UV_", "VIRTUAL_ENV"))
    }
    environment["PIP_CONFIG_FILE"] = os.devnull
    environment["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return environment


def run(command: list[str], cwd: Path, environment: dict[str, str]) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=environment, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def bake(workdir: Path) -> Path:
    run(
        [str(BIN / "cookiecutter"), "--no-input", "--output-dir", str(workdir), str(TEMPLATE_ROOT),
         f"project_name={PROJECT_NAME}", "init_git=false"],
        cwd=workdir, environment=os.environ.copy(),
    )  # fmt: skip
    return workdir / "bench-model"


def fresh_venv(project: Path) -> Path:
    venv = project / ".venv"
    shutil.rmtree(venv, ignore_errors=True)
    return venv


def install_with_pip(project: Path, cache: Path, environment: dict[str, str]) -> float:
    venv = fresh_venv(project)
    start = time.perf_counter()
    run([sys.executable, "-m", "venv", str(venv)], project, environment)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--cache-dir", str(cache)]
    run([*pip, "-e", ".[dev]"], project, environment)
    return time.perf_counter() - start


def install_with_uv(project: Path, cache: Path, environment: dict[str, str], uv: str) -> float:
    fresh_venv(project)
    start = time.perf_counter()
    run(
        [uv, "sync", "--frozen", "--compile-bytecode", "--extra", "dev", "--no-config", "--quiet",
         "--cache-dir", str(cache), "--python", sys.executable],
        project, {**environment, "UV_PYTHON_DOWNLOADS": "never"},
    )  # fmt: skip
    return time.perf_counter() - start


def check_install(project: Path, environment: dict[str, str]) -> None:
    package = project.name.replace("-", "_")
    run(
        [str(project / ".venv" / "bin" / "python"), "-c", IMPORT_CHECK.format(package=package)],
        project,
        environment,
    )


def tool_version(command: list[str]) -> str:
    """The second word of `tool --version` ("uv 0.13.9 ...", "pip 24.0 from ...")."""
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()[1]


def locked_package_count(project: Path) -> int:
    return (project / "uv.lock").read_text(encoding="utf-8").count("\n[[package]]\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep", type=Path, help="work in this directory and keep it (default: a temporary one)"
    )
    arguments = parser.parse_args()
    uv = find_uv()
    environment = clean_environment()
    workdir = arguments.keep or Path(tempfile.mkdtemp(prefix="install-benchmark-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        project = bake(workdir)
        caches = {"pip": workdir / "pip-cache", "uv": workdir / "uv-cache"}
        installers = {
            "pip": lambda: install_with_pip(project, caches["pip"], environment),
            "uv": lambda: install_with_uv(project, caches["uv"], environment, uv),
        }
        seconds: dict[tuple[str, str], float] = {}
        versions = {"uv": tool_version([uv, "--version"])}
        for tool, install in installers.items():
            for state in ("cold", "warm"):  # cold first: it fills the cache the warm run reuses
                if state == "cold":
                    shutil.rmtree(caches[tool], ignore_errors=True)
                seconds[tool, state] = install()
                check_install(project, environment)
                print(f"  {tool} {state}: {seconds[tool, state]:.1f} s", file=sys.stderr)
            if tool == "pip":
                versions["pip"] = tool_version([str(project / ".venv" / "bin" / "python"), "-m", "pip", "-V"])
        print(
            f"Install of the baked project with its dev tools ({locked_package_count(project)} locked "
            f"packages), Python {platform.python_version()}, {os.cpu_count()} CPUs, "
            f"pip {versions['pip']}, uv {versions['uv']}"
        )
        print(f"{'':31}{'pip (s)':>9}{'uv (s)':>9}{'uv/pip':>9}")
        labels = {"cold": "cold (empty cache, new venv)", "warm": "warm (cache filled, new venv)"}
        for state, label in labels.items():
            pip_seconds, uv_seconds = seconds["pip", state], seconds["uv", state]
            print(f"{label:31}{pip_seconds:>9.1f}{uv_seconds:>9.1f}{uv_seconds / pip_seconds:>9.2f}")
    finally:
        if arguments.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
