"""The generated project's committed uv.lock holds for whatever name the project is baked with.

uv writes the project's own name into uv.lock, so the template's lock is Jinja-rendered there. These tests
bake several names (one with a slug that PEP 503 normalises) and let uv itself judge the lock.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from conftest import TEMPLATE_ROOT, VENV_BIN, tool_environment
from packaging.markers import Marker
from packaging.requirements import Requirement

sys.path.insert(0, str(TEMPLATE_ROOT / "tools"))
import project_requirements

UV = VENV_BIN / "uv"
BAKES = [
    {"project_name": "Churn Model"},
    {"project_name": "Acme Risk", "python_version": "3.13"},
    {
        "project_name": "Odd Slug",
        "project_slug": "acme_risk.v2",
        "package_name": "acme_risk_v2",
        "python_version": "3.12",
    },
]
NETWORK_DISABLED = "network was disabled"


def normalised(name: str) -> str:
    """PEP 503 normalisation, as uv applies it to package names."""
    return re.sub(r"[-_.]+", "-", name).lower()


def uv_lock_check(project: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    """`uv lock --check`, offline from an empty cache first; with the index only if uv needs it."""
    command = [str(UV), "lock", "--check", "--no-config", "--python", sys.executable]
    environment = tool_environment(UV_CACHE_DIR=str(cache), UV_PYTHON_DOWNLOADS="never")
    completed = subprocess.run(
        [*command, "--offline"], cwd=project, capture_output=True, text=True, env=environment, check=False
    )
    if completed.returncode != 0 and NETWORK_DISABLED in completed.stderr:
        completed = subprocess.run(command, cwd=project, capture_output=True, text=True, env=environment)
    return completed


@pytest.fixture(scope="module", autouse=True)
def uv_is_installed() -> None:
    assert UV.is_file(), f"uv is missing from the template's environment ({UV}): run `make install`"


@pytest.mark.parametrize("options", BAKES, ids=lambda options: options["project_name"])
def test_committed_lock_holds_for_the_baked_project(options, cookies, tmp_path: Path) -> None:
    result = cookies.bake(extra_context=options)
    assert result.exit_code == 0, result.exception
    project = result.project_path
    lock = tomllib.loads((project / "uv.lock").read_text(encoding="utf-8"))
    roots = [package for package in lock["package"] if package.get("source") == {"editable": "."}]
    assert [root["name"] for root in roots] == [normalised(project.name)]

    check = uv_lock_check(project, tmp_path / "uv-cache")
    assert check.returncode == 0, check.stdout + check.stderr


def test_lock_covers_every_supported_interpreter() -> None:
    """Universal for the interpreters the template offers, and its requires-python is the project's."""

    def rendered(path: Path) -> dict:
        return tomllib.loads(project_requirements.render_with_placeholders(path.read_text(encoding="utf-8")))

    lock = rendered(project_requirements.TEMPLATE_LOCK)
    pyproject = rendered(project_requirements.TEMPLATE_PYPROJECT)
    assert lock["requires-python"] == pyproject["project"]["requires-python"]
    versions = json.loads((TEMPLATE_ROOT / "cookiecutter.json").read_text())["python_version"]
    platforms = [
        {"sys_platform": "linux", "platform_machine": "x86_64"},
        {"sys_platform": "linux", "platform_machine": "aarch64"},
        {"sys_platform": "darwin", "platform_machine": "arm64"},
        {"sys_platform": "win32", "platform_machine": "AMD64"},
    ]
    for version in versions:
        for platform in platforms:
            environment = {"python_version": version, "python_full_version": f"{version}.0", **platform}
            supported = [Marker(marker).evaluate(environment) for marker in lock["supported-markers"]]
            assert any(supported), environment


def test_template_environment_holds_what_the_lock_pins() -> None:
    """`make install` gives the template's tests the versions a baked project installs here."""
    mismatched = []
    for line in project_requirements.locked_requirements(str(UV)).splitlines():
        if not line or line.startswith(("#", " ")):
            continue
        requirement = Requirement(line)
        if requirement.marker and not requirement.marker.evaluate():
            continue
        (pinned,) = (specifier.version for specifier in requirement.specifier)
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != pinned:
            mismatched.append(f"{requirement.name}: locked {pinned}, installed {installed}")
    assert mismatched == [], "run `make install`"


def test_every_uv_bootstrap_pins_the_same_release() -> None:
    """The two Makefiles bootstrap the uv release the template's own environment installs."""
    (pinned,) = re.findall(r"^uv==(\S+)$", (TEMPLATE_ROOT / "requirements-dev.txt").read_text(), re.MULTILINE)
    for makefile in (TEMPLATE_ROOT / "Makefile", project_requirements.PROJECT_TEMPLATE / "Makefile"):
        assert re.findall(r"^UV_VERSION := (\S+)$", makefile.read_text(), re.MULTILINE) == [pinned], makefile
