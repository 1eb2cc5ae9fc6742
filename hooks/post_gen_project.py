"""Finish the generated project: install the chosen policy pack and initialise git.

Safe to run twice on the same directory (cruft re-runs it on update): every step either replaces
what it wrote before or notices that its work is already done.

Under cruft, the first commit also holds `.cruft.json` (cruft writes it only after this hook, so the
hook writes the same file first), and the copies cruft generates only to compare them (`cruft update`,
`cruft diff`) get no git repository, whose files cruft would otherwise diff.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ANSWERS = r"""{{ cookiecutter | jsonify }}"""
# jsonify sorts the keys; cruft records the answers in cookiecutter's order, given here one per line.
ANSWER_ORDER = r"""{% for key in cookiecutter %}{{ key }}
{% endfor %}"""
# The name Python's tempfile gives the directories it creates (cruft generates its comparison copies in one).
TEMPORARY_DIRECTORY_NAME = re.compile(r"tmp[a-z0-9_]{8}")

MESSAGES = {
    "policy_installed": "Installed policy pack '{pack}' into policies/.",
    "environments_written": "Wrote environments/<name>.yaml for: {names}.",
    "flags_written": "Wrote flags/<name>.flagd.json for: {names}.",
    "final_environment": "The policy pack's production limits apply to '{name}', the last environment.",
    "git_missing": "git was not found on PATH: skipped 'git init'. Run it yourself once git is installed.",
    "git_exists": "A git repository already exists here: left it as it is.",
    "git_initialised": "Initialised a git repository on branch 'main' with a first commit.",
    "git_failed": "git {step} failed ({detail}): the project is complete, but initialise git yourself.",
    "cruft_regeneration": "cruft is generating a copy to compare with the project: no git repository for it.",
}


def say(key: str, **values: str) -> None:
    print(MESSAGES[key].format(**values))


def install_policy_pack(template_dir: Path, pack: str, project_dir: Path) -> None:
    """Give the project's policies/ the promotion policy and the pack's thresholds, replacing what is there.

    The template keeps one `policies/promotion.rego` for every pack and a pack is its data,
    `policies/<pack>/thresholds.yaml`; a pack that still carries its own `promotion.rego` is
    installed with it when the shared one is absent.
    """
    policies = template_dir / "policies"
    policy = policies / "promotion.rego"
    if not policy.is_file():
        policy = policies / pack / "promotion.rego"
    target = project_dir / "policies"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir()
    shutil.copyfile(policy, target / "promotion.rego")
    shutil.copyfile(policies / pack / "thresholds.yaml", target / "thresholds.yaml")
    # The monitoring policy follows the same rule: shared rules, the pack's limits.
    if (policies / "monitoring.rego").is_file() and (policies / pack / "monitoring.yaml").is_file():
        shutil.copyfile(policies / "monitoring.rego", target / "monitoring.rego")
        shutil.copyfile(policies / pack / "monitoring.yaml", target / "monitoring.yaml")
    say("policy_installed", pack=pack)


def map_final_environment(project_dir: Path, names: list[str]) -> None:
    """Packs give their strictest limits to `production`; with other names, the last environment gets them."""
    last = names[-1]
    if "production" in names:
        return
    mapped = False
    for name in ("thresholds.yaml", "monitoring.yaml"):
        thresholds = project_dir / "policies" / name
        text = thresholds.read_text(encoding="utf-8") if thresholds.is_file() else ""
        if "\n  production:\n" in text:
            text = text.replace("\n  production:\n", f"\n  {last}:  # the pack's production limits\n", 1)
            thresholds.write_text(text, encoding="utf-8")
            mapped = True
    if mapped:
        say("final_environment", name=last)


ENVIRONMENT_SETTINGS = """# yaml-language-server: $schema=../schemas/environment.schema.json
# Desired settings of the NAME environment. A promotion copies them to env/NAME: a change here
# reaches NAME only through a promotion pull request.
rollout:
  strategy: direct           # direct | canary | shadow | ab
  challenger_weight: 0       # percent (0-100) of traffic the challenger gets under canary or ab
  steps: [10, 25, 50, 100]   # canary weights that a passing analysis advances through
  analysis:                  # what a canary must show before it advances
    min_requests: 500
    max_error_rate: 0.01
    max_p99_latency_ms: 250
serving:
  workers: 1                 # service processes per replica
  max_batch_rows: 1000       # rows per request
  max_body_bytes: 1048576    # request body limit
  batch_window_ms: 2         # how long the micro-batcher waits to fill a batch
flags: flags/NAME.flagd.json # OpenFeature (flagd) flags, checked by `mlops flags --check`
image:
  required: false            # true: deploy refuses a release that names no serving image digest
autoscaling:
  min_replicas: 1
  max_replicas: 3
  target_cpu_percent: 70
resources:
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


# The flags a new environment starts with: the challenger on, its weight from release.yaml (the
# challenger-weight flag ships DISABLED), no SHAP in answers. serving/flags.py documents each flag.
FLAG_SETTINGS = """{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "flags": {
    "challenger-enabled": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "on",
      "metadata": {"description": "kill switch: off sends every request of NAME to the champion"}
    },
    "challenger-weight": {
      "state": "DISABLED",
      "variants": {"champion": 0, "challenger": 100},
      "defaultVariant": "champion",
      "targeting": {"fractional": [["challenger", 10], ["champion", 90]]},
      "metadata": {"description": "ENABLED: the challenger share per routing key (overrides release.yaml)"}
    },
    "explain-predictions": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off",
      "metadata": {"description": "on: /predict answers carry per-row SHAP contributions of the champion"}
    }
  }
}
"""


def write_flag_files(project_dir: Path, names: list[str]) -> None:
    """One flagd file per environment; an existing file is kept (the team may have changed a flag)."""
    directory = project_dir / "flags"
    directory.mkdir(exist_ok=True)
    for name in names:
        path = directory / f"{name}.flagd.json"
        if not path.exists():
            path.write_text(FLAG_SETTINGS.replace("NAME", name), encoding="utf-8")
    say("flags_written", names=", ".join(names))


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


def is_cruft_regeneration(answers: dict, project_dir: Path) -> bool:
    """True when cruft generates this copy only to compare it with the project, then deletes it.

    cruft adds `_commit` to the answers (cookiecutter alone does not). `cruft update` and `cruft diff`
    generate each copy inside a fresh temporary directory of their own, the copy its only entry;
    `cruft create` generates in the output directory the user chose.
    """
    if "_commit" not in answers:
        return False
    parent = project_dir.resolve().parent
    return (
        parent.parent == Path(tempfile.gettempdir()).resolve()
        and TEMPORARY_DIRECTORY_NAME.fullmatch(parent.name) is not None
        and [entry.name for entry in parent.iterdir()] == [project_dir.name]
    )


def write_cruft_state(project_dir: Path, answers: dict, key_order: list[str]) -> None:
    """Write `.cruft.json` byte for byte as `cruft create` writes it once this hook is done.

    The file can then be part of the first commit and the tree stays clean when cruft rewrites it.
    (`cruft create --checkout` or `--skip` record more; cruft's rewrite then shows as a change to commit.)
    """
    ordered = [key for key in key_order if key in answers]
    context = {key: answers[key] for key in [*ordered, *sorted(set(answers) - set(ordered))]}
    state = {
        "template": answers["_template"],
        "commit": answers["_commit"],
        "checkout": None,
        "context": {"cookiecutter": context},
        "directory": None,
    }
    text = json.dumps(state, ensure_ascii=False, indent=2, separators=(",", ": ")) + "\n"
    (project_dir / ".cruft.json").write_text(text, encoding="utf-8")


def wants_git(answers: dict) -> bool:
    value = answers.get("init_git", True)
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"true", "yes", "y", "1"}


def find_template_dir(answers: dict) -> Path:
    """The template's root, which cookiecutter passes as given (maybe relative) and cruft not at all.

    The hook runs inside the new project, but cookiecutter (and cruft, through it) runs hooks from
    inside the template, so its own working directory is the template: tried first, because the
    directory the command was started from (PWD) may hold another copy of the template.
    """
    given = Path(str(answers.get("_repo_dir") or "."))
    if given.is_absolute():
        return given
    candidates = [Path(f"/proc/{os.getppid()}/cwd"), Path(os.environ.get("PWD", ".")) / given]
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
    write_flag_files(project_dir, environment_names(answers))
    map_final_environment(project_dir, environment_names(answers))
    if is_cruft_regeneration(answers, project_dir):
        say("cruft_regeneration")
        return 0
    if "_commit" in answers and "_template" in answers:
        write_cruft_state(project_dir, answers, ANSWER_ORDER.split("\n"))
    if wants_git(answers):
        init_git_repository(project_dir, answers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
