"""Run the jobs of the project's workflow files locally, as GitHub Actions would.

The `run:` steps are read from the workflow files and executed as written (bash -eo pipefail, the
step's `env:` evaluated from the GitHub contexts, `$GITHUB_OUTPUT`, `$GITHUB_PATH` and
`$GITHUB_STEP_SUMMARY` honoured); `uses:` steps are replaced by their local equivalents (checkout = a
clone of the bare remote, setup-uv = nothing, upload-artifact and download-artifact = copies into and
out of a directory per artifact name, laid out as Actions lays them out, create-github-app-token =
skipped, the workflow token is used). A matrix job runs one combination at a time (`matrix=`). The
`uv sync` line of an install step is replaced by what it would leave in `.venv/bin`: one executable per
console script declared in the checked-out pyproject.toml, running this interpreter (the test
environment is already installed), either as a real process or through a warm `CliServer` fork. The
rest of that step runs as written. A workflow that calls a command the CLI does not have, or forgets to
put `.venv/bin` on the PATH, therefore fails here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from support.cli_server import CliServer

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.DOTALL)
# The line of an install step that the test environment stands in for (it is installed already).
INSTALL_LINE = re.compile(r"^\s*uv sync\b[^\n]*$", re.MULTILINE)


# What a runner's steps see of this process's environment: no credentials, no tracking URI.
KEPT_VARIABLES = ("PATH", "HOME", "LANG", "TMPDIR", "USER", "OMP_NUM_THREADS")


def actions_environment(github, **extra: str) -> dict[str, str]:
    """The base environment of a job's steps on Actions, against the GitHub API stand-in `github`:
    its URL, repository and token, as Actions sets them, and `extra`."""
    return {
        **{key: value for key, value in os.environ.items() if key in KEPT_VARIABLES},
        "GITHUB_API_URL": github.url,
        "GITHUB_REPOSITORY": github.repository,
        "GITHUB_TOKEN": github.expected_token,
        "GITHUB_RETRY_BACKOFF": "0.01",
        "GITHUB_ACTIONS": "true",
        **extra,
    }


class Missing:
    """What a GitHub expression yields for an absent property: empty, falsy, and absent all the way down."""

    def __getattr__(self, name: str) -> Missing:
        return self

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return ""

    def __eq__(self, other: object) -> bool:
        return other in ("", None) or isinstance(other, Missing)

    def __hash__(self) -> int:
        return 0


class Context(dict):
    """A GitHub expression context: attribute access; a missing property is `Missing`."""

    def __getattr__(self, name: str) -> Any:
        key = name.replace("_", "-") if name.replace("_", "-") in self else name
        if key not in self:
            return Missing()
        value = self[key]
        return Context(value) if isinstance(value, dict) else value


def _to_python(expression: str) -> str:
    expression = expression.replace("&&", " and ").replace("||", " or ")
    expression = re.sub(r"!(?!=)", " not ", expression)
    expression = re.sub(
        r"\b(true|false|null)\b",
        lambda m: {"true": "True", "false": "False", "null": "None"}[m[1]],
        expression,
    )
    # hyphenated context keys (steps.my-step.outputs) become attribute access with underscores
    return re.sub(r"(?<=[A-Za-z0-9_])-(?=[A-Za-z])", "_", expression)


def evaluate(expression: str, contexts: dict[str, Any]) -> Any:
    namespace = {
        name: Context(value) if isinstance(value, dict) else value for name, value in contexts.items()
    }
    namespace.update(
        always=lambda: True,
        success=lambda: contexts.get("_status", "success") == "success",
        failure=lambda: contexts.get("_status", "success") == "failure",
        cancelled=lambda: False,
        startsWith=lambda text, prefix: str(text).startswith(str(prefix)),
        endsWith=lambda text, suffix: str(text).endswith(str(suffix)),
        contains=lambda haystack, needle: str(needle) in str(haystack),
        format=lambda template, *values: re.sub(r"\{(\d+)\}", lambda m: str(values[int(m[1])]), template),
        fromJSON=json.loads,
        toJSON=json.dumps,
    )
    return eval(_to_python(expression), {"__builtins__": {}}, namespace)


def substitute(text: Any, contexts: dict[str, Any]) -> Any:
    if not isinstance(text, str):
        return text
    whole = EXPRESSION.fullmatch(text.strip())
    if whole:
        value = evaluate(whole[1], contexts)
        return "" if value is None or isinstance(value, Missing) else value
    return EXPRESSION.sub(lambda match: str(evaluate(match[1], contexts) or ""), text)


def condition_holds(condition: Any, contexts: dict[str, Any]) -> bool:
    if condition is None:
        return contexts.get("_status", "success") == "success"
    text = str(condition).strip()
    match = EXPRESSION.fullmatch(text)
    expression = match[1] if match else text
    uses_status = any(word in expression for word in ("always()", "failure()", "success()", "cancelled()"))
    holds = bool(evaluate(expression, contexts))
    return holds if uses_status else holds and contexts.get("_status", "success") == "success"


@dataclass
class StepResult:
    name: str
    kind: str
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class JobResult:
    workflow: str
    job: str
    success: bool
    steps: list[StepResult]
    outputs: dict[str, str]
    summary: str

    def step(self, name_part: str) -> StepResult:
        return next(step for step in self.steps if name_part.lower() in step.name.lower())

    def log(self) -> str:
        return "\n".join(
            f"--- {s.name} ({s.kind}, exit {s.returncode})\n{s.stdout}\n{s.stderr}" for s in self.steps
        )


@dataclass
class WorkflowRunner:
    """Runs jobs of the project's workflows against a bare remote and local services."""

    project_root: Path
    remote: Path
    workspace_root: Path
    environment: dict[str, str]
    secrets: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    artifacts: Path | None = None
    # None: console scripts are real interpreter processes; a server: they are forks of it.
    cli_server: CliServer | None = None

    def workflow(self, name: str) -> dict:
        return yaml.safe_load((self.project_root / ".github" / "workflows" / name).read_text())

    def run_job(
        self,
        workflow_name: str,
        job_name: str,
        event_name: str,
        ref: str,
        inputs: dict[str, str] | None = None,
        event: dict | None = None,
        needs: dict[str, dict[str, str]] | None = None,
        secrets: dict[str, str] | None = None,
        matrix: dict[str, str] | None = None,
    ) -> JobResult:
        workflow = self.workflow(workflow_name)
        job = workflow["jobs"][job_name]
        # A fresh directory per job run, safe when two jobs start at once (racing promotions).
        self.workspace_root.mkdir(parents=True, exist_ok=True)
        workspace = Path(tempfile.mkdtemp(prefix=f"{workflow_name}-{job_name}-", dir=self.workspace_root))
        ref_name = ref.removeprefix("refs/heads/")
        sha = self._git("rev-parse", ref_name, cwd=self.remote)
        github = {
            "event_name": event_name,
            "ref": f"refs/heads/{ref_name}",
            "ref_name": ref_name,
            "sha": sha,
            "token": self.environment["GITHUB_TOKEN"],
            "repository": self.environment["GITHUB_REPOSITORY"],
            "workflow": workflow.get("name", workflow_name),
            "event": event or {},
            "run_id": "1",
            "server_url": "https://github.com",
        }
        contexts: dict[str, Any] = {
            "github": github,
            "inputs": self._inputs(workflow, inputs or {}),
            "secrets": {
                **(self.secrets if secrets is None else secrets),
                "GITHUB_TOKEN": self.environment["GITHUB_TOKEN"],
            },
            "vars": self.variables,
            "env": {},
            "steps": {},
            "needs": {
                name: {"outputs": values, "result": "success"} for name, values in (needs or {}).items()
            },
            "matrix": dict(matrix or {}),
            "runner": {"os": "Linux", "temp": str(workspace / "_temp")},
            "_status": "success",
        }
        if "uses" in job:
            return self._call_reusable(job, contexts, ref_name, needs)
        summary_file = workspace / "_summary.md"
        summary_file.touch()
        path_file = workspace / "_path"
        path_file.touch()
        job_env = {key: str(substitute(value, contexts)) for key, value in (job.get("env") or {}).items()}
        results = []
        for index, step in enumerate(job.get("steps", [])):
            name = step.get("name") or step.get("uses") or step.get("run", "").splitlines()[0]
            if not condition_holds(step.get("if"), contexts):
                results.append(StepResult(name, "skipped"))
                continue
            result = self._run_step(
                step, index, name, workspace, contexts, job_env, github, summary_file, path_file
            )
            results.append(result)
            if step.get("id"):
                contexts["steps"][step["id"]] = {
                    "outputs": result.outputs,
                    "outcome": "success" if result.returncode == 0 else "failure",
                }
            if result.returncode != 0 and not step.get("continue-on-error"):
                contexts["_status"] = "failure"
        outputs = {key: str(substitute(value, contexts)) for key, value in (job.get("outputs") or {}).items()}
        return JobResult(
            workflow_name,
            job_name,
            contexts["_status"] == "success",
            results,
            outputs,
            summary_file.read_text(),
        )

    def _call_reusable(self, job: dict, contexts: dict, ref: str, needs: dict | None) -> JobResult:
        """A job that calls a workflow of this repository: run the called workflow's jobs with its inputs."""
        if not condition_holds(job.get("if"), contexts):
            return JobResult("", "", True, [StepResult("skipped by its condition", "skipped")], {}, "")
        called = job["uses"].split(".github/workflows/", 1)[1]
        inputs = {key: str(substitute(value, contexts)) for key, value in (job.get("with") or {}).items()}
        passed = job.get("secrets") or {}
        # The callee sees only the secrets the caller passes (all of them with `secrets: inherit`).
        secrets = (
            None
            if passed == "inherit"
            else {key: str(substitute(value, contexts)) for key, value in passed.items()}
        )
        results = [
            self.run_job(called, name, "workflow_call", ref, inputs=inputs, needs=needs, secrets=secrets)
            for name in self.workflow(called)["jobs"]
        ]
        return JobResult(
            called,
            ",".join(result.job for result in results),
            all(result.success for result in results),
            [step for result in results for step in result.steps],
            {key: value for result in results for key, value in result.outputs.items()},
            "".join(result.summary for result in results),
        )

    def _inputs(self, workflow: dict, given: dict[str, str]) -> dict[str, str]:
        declared = {}
        triggers = workflow.get("on") or workflow.get(True) or {}
        for trigger in ("workflow_dispatch", "workflow_call"):
            declared.update((triggers.get(trigger) or {}).get("inputs") or {})
        values = {
            name: str(spec.get("default", "")) for name, spec in declared.items() if isinstance(spec, dict)
        }
        values.update(given)
        return values

    def _run_step(
        self, step, index, name, workspace, contexts, job_env, github, summary_file, path_file
    ) -> StepResult:
        env_values = {key: substitute(value, contexts) for key, value in (step.get("env") or {}).items()}
        step_env = {key: "" if value is None else str(value) for key, value in env_values.items()}
        if "uses" in step:
            return self._local_action(step, name, workspace, contexts, github)
        script = step["run"]
        kind = "run"
        if INSTALL_LINE.search(script):
            self._install_console_scripts(workspace)
            script = INSTALL_LINE.sub(":", script)
            kind = "setup"
        # Directories added to $GITHUB_PATH by earlier steps come first, the latest first of all.
        added = [line for line in reversed(path_file.read_text().splitlines()) if line.strip()]
        output_file = workspace / f"_output_{index}"
        output_file.touch()
        environment = {
            **self.environment,
            **job_env,
            **step_env,
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_STEP_SUMMARY": str(summary_file),
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_SHA": github["sha"],
            "GITHUB_REF": github["ref"],
            "GITHUB_REF_NAME": github["ref_name"],
            "GITHUB_EVENT_NAME": github["event_name"],
            "GITHUB_PATH": str(path_file),
            "PATH": os.pathsep.join([*added, self.environment.get("PATH", "")]),
        }
        completed = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=workspace / step.get("working-directory", "."),
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        outputs = {}
        for line in output_file.read_text().splitlines():
            if "=" in line:
                key, value = line.split("=", 1)
                outputs[key] = value
        return StepResult(name, kind, completed.returncode, completed.stdout, completed.stderr, outputs)

    def _local_action(self, step, name, workspace, contexts, github) -> StepResult:
        action = step["uses"].split("@")[0]
        options = {key: substitute(value, contexts) for key, value in (step.get("with") or {}).items()}
        if action == "actions/checkout":
            target = workspace / options.get("path", ".")
            ref = str(options.get("ref") or github["ref_name"])
            if target.exists() and any(target.iterdir()):
                scratch = workspace / "_checkout"
                self._clone(ref, scratch)
                for item in scratch.iterdir():
                    shutil.move(str(item), target / item.name)
                scratch.rmdir()
            else:
                self._clone(ref, target)
            return StepResult(name, "checkout")
        if action == "actions/upload-artifact" and self.artifacts is not None:
            return self._upload(name, workspace, options)
        if action == "actions/download-artifact" and self.artifacts is not None:
            stored = self.artifacts / str(options["name"])
            if not stored.is_dir():
                return StepResult(
                    name, "artifact", 1, stderr=f"Unable to find an artifact named {stored.name}"
                )
            shutil.copytree(stored, workspace / str(options.get("path") or "."), dirs_exist_ok=True)
            return StepResult(name, "artifact")
        if action == "actions/create-github-app-token":
            return StepResult(name, "skipped", outputs={"token": ""})
        return StepResult(name, "local")

    def _upload(self, name: str, workspace: Path, options: dict) -> StepResult:
        """The matched files under the artifact's name, relative to the least common ancestor of the
        paths, as upload-artifact stores them: `path: reports/` keeps the directory's contents at the
        root of the artifact."""
        matched = [
            source
            for pattern in str(options.get("path", "")).split()
            for source in sorted(workspace.glob(pattern.rstrip("/")))
        ]
        files = [item for source in matched for item in ([source] if source.is_file() else source.rglob("*"))]
        files = [item for item in files if item.is_file()]
        if not files:
            if options.get("if-no-files-found") == "error":
                return StepResult(
                    name, "artifact", 1, stderr=f"No files were found with {options.get('path')}"
                )
            return StepResult(name, "artifact")
        roots = [source if source.is_dir() else source.parent for source in matched]
        root = Path(os.path.commonpath(roots))
        destination = self.artifacts / str(options.get("name", "artifact"))
        for item in files:
            target = destination / item.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(item, target)
        return StepResult(name, "artifact")

    def _clone(self, ref: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        self._git("clone", "--quiet", str(self.remote), str(target), cwd=self.workspace_root)
        self._git("checkout", "--quiet", ref, cwd=target)

    def _install_console_scripts(self, workspace: Path) -> None:
        """What `uv sync` leaves in .venv/bin: the checked-out project's console scripts and python."""
        bin_dir = workspace / ".venv" / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        project = tomllib.loads((workspace / "pyproject.toml").read_text(encoding="utf-8"))
        for script, entry_point in project["project"].get("scripts", {}).items():
            if self.cli_server is not None:
                command = "exec " + shlex.join(self.cli_server.command(script, entry_point))
            else:
                # the script an installer writes for `name = "module:function"`
                module, _, function = entry_point.partition(":")
                code = f"import sys; from {module} import {function} as main; sys.argv[0] = {script!r}"
                command = shlex.join([sys.executable, "-c", f"{code}; sys.exit(main())"])
                command = f"PYTHONPATH={shlex.quote(str(workspace / 'src'))} exec {command}"
            executable = bin_dir / script
            executable.write_text(f'#!/bin/sh\n{command} "$@"\n')
            executable.chmod(0o755)
        if not (bin_dir / "python").exists():
            (bin_dir / "python").symlink_to(sys.executable)

    @staticmethod
    def _git(*arguments: str, cwd: Path) -> str:
        return subprocess.run(
            ["git", *arguments], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
