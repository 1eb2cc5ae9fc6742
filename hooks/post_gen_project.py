"""Finish the generated project: install the chosen policy pack and initialise git.

Safe to run twice on the same directory (cruft re-runs it on update): every step either replaces
what it wrote before or notices that its work is already done.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ANSWERS = r"""{{ cookiecutter | jsonify }}"""

MESSAGES = {
    "policy_installed": "Installed policy pack '{pack}' into policies/.",
    "environments_written": "Wrote environments/<name>.yaml for: {names}.",
    "final_environment": "The policy pack's production limits apply to '{name}', the last environment.",
    "git_missing": "git was not found on PATH: skipped 'git init'. Run it yourself once git is installed.",
    "git_exists": "A git repository already exists here: left it as it is.",
    "git_initialised": "Initialised a git repository on branch 'main' with a first commit.",
    "git_failed": "git {step} failed ({detail}): the project is complete, but initialise git yourself.",
}


def say(key: str, **values: str) -> None:
    print(MESSAGES[key].format(**values))


def install_policy_pack(template_dir: Path, pack: str, project_dir: Path) -> None:
    """Copy policies/<pack>/ of the template into the project's policies/, replacing what is there."""
    source = template_dir / "policies" / pack
    target = project_dir / "policies"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    say("policy_installed", pack=pack)


def map_final_environment(project_dir: Path, names: list[str]) -> None:
    """Packs give their strictest limits to `production`; with other names, the last environment gets them."""
    thresholds = project_dir / "policies" / "thresholds.yaml"
    last = names[-1]
    if "production" in names or not thresholds.is_file():
        return
    text = thresholds.read_text(encoding="utf-8")
    if "\n  production:\n" in text:
        text = text.replace("\n  production:\n", f"\n  {last}:  # the pack's production limits\n", 1)
        thresholds.write_text(text, encoding="utf-8")
        say("final_environment", name=last)


ENVIRONMENT_SETTINGS = """# Desired settings of the NAME environment. A promotion copies this file to env/NAME
# as environment.yaml: a change here reaches NAME only through a promotion pull request.
rollout:
  strategy: direct        # the champion serves all traffic (canary, shadow and A/B come with serving)
flags: {}                 # feature flags, copied into release.yaml, e.g. new_threshold: false
serving:
  replicas: 1
  max_replicas: 3
  cpu: 500m
  memory: 1Gi
"""


def environment_names(answers: dict) -> list[str]:
    return [name.strip() for name in str(answers["environments"]).split(",")]


def write_environment_files(project_dir: Path, names: list[str]) -> None:
    """One settings file per environment; an existing file is kept (the team may have edited it)."""
    directory = project_dir / "environments"
    directory.mkdir(exist_ok=True)
    for name in names:
        path = directory / f"{name}.yaml"
        if not path.exists():
            path.write_text(ENVIRONMENT_SETTINGS.replace("NAME", name), encoding="utf-8")
    say("environments_written", names=", ".join(names))


def git_identity_arguments(answers: dict) -> list[str]:
    """Use the user's git identity when configured, else the project owner from the answers."""
    configured = subprocess.run(
        ["git", "config", "user.email"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if configured:
        return []
    return ["-c", f"user.name={answers['author_name']}", "-c", f"user.email={answers['author_email']}"]


def init_git_repository(project_dir: Path, answers: dict) -> None:
    if shutil.which("git") is None:
        say("git_missing")
        return
    if (project_dir / ".git").exists():
        say("git_exists")
        return
    steps = [
        ("init", ["git", "init", "--quiet", "-b", "main"]),
        ("add", ["git", "add", "--all"]),
        (
            "commit",
            [
                "git",
                *git_identity_arguments(answers),
                "commit",
                "--quiet",
                "--no-verify",
                "-m",
                f"Generate {answers['project_name']} from the ML GitOps template",
            ],
        ),
    ]
    for step, command in steps:
        result = subprocess.run(command, cwd=project_dir, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            say("git_failed", step=step, detail=detail[-1] if detail else f"exit {result.returncode}")
            return
    say("git_initialised")


def wants_git(answers: dict) -> bool:
    value = answers.get("init_git", True)
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"true", "yes", "y", "1"}


def find_template_dir(answers: dict) -> Path:
    """The template's root: cookiecutter passes it as given, so a relative path is resolved here.

    The hook runs inside the new project, so a relative `_repo_dir` is tried against the directory
    cookiecutter was started from (PWD) and against cookiecutter's own working directory.
    """
    given = Path(str(answers.get("_repo_dir") or "."))
    if given.is_absolute():
        return given
    candidates = [Path(os.environ.get("PWD", ".")) / given, Path(f"/proc/{os.getppid()}/cwd") / given]
    for candidate in candidates:
        if (candidate / "cookiecutter.json").is_file() and (candidate / "policies").is_dir():
            return candidate.resolve()
    return given.resolve()


def main() -> int:
    answers = json.loads(ANSWERS)
    project_dir = Path.cwd()
    template_dir = find_template_dir(answers)
    install_policy_pack(template_dir, answers["policy_pack"], project_dir)
    write_environment_files(project_dir, environment_names(answers))
    map_final_environment(project_dir, environment_names(answers))
    if wants_git(answers):
        init_git_repository(project_dir, answers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
