"""The generated project's locked dependencies, for the template's own virtual environment.

    python tools/project_requirements.py export         print what a baked project locks (runtime and dev),
                                                        pinned, with environment markers, as requirements
    python tools/project_requirements.py lock [ARGS]    re-lock after a dependency change in the template's
                                                        pyproject.toml (ARGS go to `uv lock`, e.g. --upgrade)

The template ships `{{cookiecutter.project_slug}}/uv.lock`, Jinja-rendered like every generated file: the
project's own name is its only rendered part. `export` renders the template's pyproject.toml and uv.lock
with one placeholder name and asks `uv export --locked` for the locked set (it fails while the lock is
stale), so the template's environment holds exactly what a baked project installs. `lock` bakes a project
with cookiecutter, runs `uv lock` in it (starting from the current lock, so unrelated pins stay) and writes
the result back with the name templated again.

uv is found through the UV environment variable, then next to this interpreter, then on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]
PROJECT_TEMPLATE = TEMPLATE_ROOT / "{{cookiecutter.project_slug}}"
TEMPLATE_PYPROJECT = PROJECT_TEMPLATE / "pyproject.toml"
TEMPLATE_LOCK = PROJECT_TEMPLATE / "uv.lock"
BARE_PLACEHOLDER = re.compile(r"\{\{[^}]*\|\s*tojson\s*\}\}")
QUOTED_PLACEHOLDER = re.compile(r"\{\{[^}]*\}\}")
PLACEHOLDER = "placeholder"
# The project's name as uv writes it in uv.lock: normalised as in PEP 503 (lower case, each run of
# "-", "_" and "." one "-"). The pre-generation hook guarantees a slug of [a-z0-9._-] that starts and
# ends with a letter or digit.
LOCK_NAME = (
    "{{ cookiecutter.project_slug.lower().replace('_', '-').replace('.', '-')"
    ".split('-') | select | join('-') }}"
)
LOCK_BAKE_NAME = "uv-lock-name"
JINJA_MARKERS = ("{{", "{%", "{#")


class LockError(RuntimeError):
    """The template's lock cannot be exported or regenerated; the message says why."""


def find_uv() -> str:
    """The uv executable: $UV, else the one installed beside this interpreter, else the one on PATH."""
    candidates = [os.environ.get("UV"), str(Path(sys.executable).with_name("uv")), shutil.which("uv")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)  # the commands run in other directories
    raise LockError("uv not found: run `make install`, or set UV to a uv executable")


def render_with_placeholders(text: str) -> str:
    """Replace every Jinja expression by a placeholder value, so the file parses (TOML) as a baked one."""
    return QUOTED_PLACEHOLDER.sub(PLACEHOLDER, BARE_PLACEHOLDER.sub(f'"{PLACEHOLDER}"', text))


def write_placeholder_project(directory: Path) -> None:
    """The template's pyproject.toml and uv.lock, rendered with one placeholder name, in `directory`."""
    if not TEMPLATE_LOCK.is_file():
        raise LockError(f"{TEMPLATE_LOCK.name} is missing from the project template: run `make lock`")
    (directory / "pyproject.toml").write_text(
        render_with_placeholders(TEMPLATE_PYPROJECT.read_text(encoding="utf-8")), encoding="utf-8"
    )
    (directory / "uv.lock").write_text(
        render_with_placeholders(TEMPLATE_LOCK.read_text(encoding="utf-8")), encoding="utf-8"
    )


def locked_requirements(uv: str | None = None) -> str:
    """What a baked project locks, runtime and dev, as a requirements file (no hashes, no project itself)."""
    uv = uv or find_uv()
    with tempfile.TemporaryDirectory() as scratch:
        write_placeholder_project(Path(scratch))
        completed = subprocess.run(
            [uv, "export", "--locked", "--no-config", "--extra", "dev", "--no-emit-project", "--no-hashes",
             "--no-header", "--format", "requirements.txt", "--quiet"],
            cwd=scratch, capture_output=True, text=True, check=False,
        )  # fmt: skip
    if completed.returncode != 0:
        raise LockError(
            f"uv export failed (if the template's pyproject.toml changed, run `make lock`):\n"
            f"{completed.stderr.strip()}"
        )
    return completed.stdout


def template_lock_name(lock_text: str, baked_name: str) -> str:
    """A lock written for `baked_name`, with the project's name templated back in (exactly one place)."""
    for marker in JINJA_MARKERS:
        if marker in lock_text:
            raise LockError(f"the lock contains {marker!r}, which Jinja would render: it cannot be templated")
    line = f'name = "{baked_name}"\n'
    if lock_text.count(line) != 1:
        raise LockError(f"expected the project's name exactly once in the lock, as {line.strip()!r}")
    return lock_text.replace(line, f'name = "{LOCK_NAME}"\n')


def relock(uv_arguments: list[str], uv: str | None = None) -> None:
    """Bake a project, lock it with uv, template the name back.

    The bake renders the current lock for the baked name, so `uv lock` starts from it and keeps every pin
    the change does not touch.
    """
    from cookiecutter.main import cookiecutter  # only the template's environment has it

    uv = uv or find_uv()
    with tempfile.TemporaryDirectory() as scratch:
        project = Path(
            cookiecutter(
                str(TEMPLATE_ROOT),
                no_input=True,
                output_dir=scratch,
                extra_context={"project_name": LOCK_BAKE_NAME, "init_git": False},
            )
        )
        completed = subprocess.run([uv, "lock", "--no-config", *uv_arguments], cwd=project, check=False)
        if completed.returncode != 0:
            raise LockError("uv lock failed (its output is above)")
        locked = template_lock_name((project / "uv.lock").read_text(encoding="utf-8"), LOCK_BAKE_NAME)
    TEMPLATE_LOCK.write_text(locked, encoding="utf-8")
    print(f"Wrote {TEMPLATE_LOCK.relative_to(TEMPLATE_ROOT)}")


def main(arguments: list[str]) -> int:
    command, *rest = arguments or ["export"]
    try:
        if command == "export" and not rest:
            sys.stdout.write(locked_requirements())
        elif command == "lock":
            relock(rest)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except LockError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
