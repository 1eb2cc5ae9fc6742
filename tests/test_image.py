"""The generated project's serving image, checked statically: no Docker engine runs here.

hadolint (its PyPI wheel ships the binary) lints the Dockerfile; the checks below add the rules it
leaves to the reader: every base pinned by digest, no `latest`, a numeric non-root USER in the final
stage, no compilers, uv or dev dependencies there, no secret in a layer, and a build context that
holds exactly what the Dockerfile copies.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import tool_environment

DIGEST = re.compile(r"^[a-z0-9][a-z0-9._/-]*(:[\w.-]+)?@sha256:[0-9a-f]{64}$")
SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_?KEY|PRIVATE)", re.IGNORECASE)
COMPILERS = re.compile(r"\b(gcc|g\+\+|clang|build-essential|make|cmake|rustc|cargo)\b")
# The digests of the official images' index for each supported Python, from docker-library/repo-info.
BASE_FOR_PYTHON = {
    "3.11": "python:3.11-slim@sha256:90744cff8f32887f075c47d747a173ff333e9e98801667af93c357fa9f5e28ff",
    "3.12": "python:3.12-slim@sha256:229a2c5bfa27522db7815ea81f9bed70af17ccb9de9fc7ad142b1877b5830d36",
    "3.13": "python:3.13-slim@sha256:9662417aace5ae7b8e2609cce472b72a8958e134ba372808abe9cc1a0c0125e6",
}


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    joined = re.sub(
        r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    )
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def stages(text: str) -> list[dict]:
    """Each stage: its resolved base image, name and instructions (ARG defaults before FROM resolved)."""
    arguments: dict[str, str] = {}
    result: list[dict] = []
    for keyword, rest in instructions(text):
        if keyword == "ARG" and not result:
            name, _, default = rest.partition("=")
            arguments[name] = default
        elif keyword == "FROM":
            words = rest.split()
            image = re.sub(r"\$\{?(\w+)\}?", lambda match: arguments.get(match[1], match[0]), words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            result.append({"image": image, "name": name, "instructions": []})
        elif result:
            result[-1]["instructions"].append((keyword, rest))
    return result


def dockerfile_problems(text: str) -> list[str]:
    """What breaks the image rules, one line each (an empty list: the Dockerfile follows them)."""
    found = stages(text)
    if not found:
        return ["no FROM instruction"]
    problems = []
    names = set()
    for stage in found:
        if stage["image"] not in names and not DIGEST.match(stage["image"]):
            problems.append(f"base {stage['image']!r} is not pinned by digest")
        if stage["name"]:
            names.add(stage["name"])
    if any(re.search(r"(:|\b)latest\b", rest) for _, rest in instructions(text)):
        problems.append("the Dockerfile names a 'latest' tag")
    for stage in found:
        for keyword, rest in stage["instructions"]:
            if keyword in {"ENV", "ARG"}:
                for name in re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", rest) or [rest.split("=")[0]]:
                    if SECRET_NAME.search(name):
                        problems.append(f"{keyword} {name} would store a secret in the image")
            if keyword in {"COPY", "ADD"} and re.search(r"(^|\s)\.env\b|id_rsa|\.pem\b", rest):
                problems.append(f"{keyword} {rest} copies a secret into a layer")
    final = found[-1]
    users = [rest for keyword, rest in final["instructions"] if keyword == "USER"]
    if not users:
        problems.append("the final stage sets no USER: it would run as root")
    else:
        user = users[-1].split(":")[0]
        if not user.isdigit() or int(user) == 0:
            problems.append(
                f"the final USER is {users[-1]!r}: give a numeric, non-zero uid (runAsNonRoot checks it)"
            )
    for keyword, rest in final["instructions"]:
        if keyword == "RUN" and (COMPILERS.search(rest) or re.search(r"\b(uv|pip)\b", rest)):
            problems.append(f"the final stage runs {rest!r}: build tools belong in the build stage")
    entrypoint = [json.loads(rest) for keyword, rest in final["instructions"] if keyword == "ENTRYPOINT"]
    if not entrypoint or entrypoint[-1][:2] != ["mlops", "serve"]:
        problems.append(f"the entrypoint is {entrypoint[-1] if entrypoint else None}, not ['mlops', 'serve']")
    syncs = [rest for stage in found for keyword, rest in stage["instructions"] if "uv sync" in rest]
    if not syncs or not all("--frozen" in rest and "--no-dev" in rest for rest in syncs):
        problems.append("dependencies must come from uv.lock: every `uv sync` needs --frozen --no-dev")
    return problems


def context_sources(text: str) -> list[str]:
    """What the Dockerfile COPYs from the build context (not from another stage)."""
    sources = []
    for stage in stages(text):
        for keyword, rest in stage["instructions"]:
            if keyword == "COPY" and "--from=" not in rest:
                words = [word for word in shlex.split(rest) if not word.startswith("--")]
                sources.extend(word.rstrip("/") for word in words[:-1])
    return sources


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!pattern` re-includes."""
    result = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path.split("/")[0], pattern):
            result = not negated
    return result


@pytest.fixture(scope="module", params=sorted(BASE_FOR_PYTHON))
def baked(request, cookies_session) -> tuple[str, Path]:
    result = cookies_session.bake(extra_context={"python_version": request.param, "init_git": False})
    assert result.exit_code == 0, result.exception
    return request.param, result.project_path


def test_hadolint_reports_nothing(baked) -> None:
    _, project = baked
    result = subprocess.run(
        ["hadolint", "--no-color", "Dockerfile"],
        cwd=project,
        capture_output=True,
        text=True,
        env=tool_environment(),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_follows_the_image_rules(baked) -> None:
    _, project = baked
    assert dockerfile_problems((project / "Dockerfile").read_text()) == []


def test_every_stage_starts_from_the_pinned_base_of_the_chosen_python(baked) -> None:
    python_version, project = baked
    found = stages((project / "Dockerfile").read_text())
    assert {stage["image"] for stage in found} == {BASE_FOR_PYTHON[python_version]}
    assert len(found) >= 2, "multi-stage: build tools stay out of the runtime stage"


def test_the_build_context_holds_what_is_copied_and_nothing_secret(baked) -> None:
    _, project = baked
    patterns = [
        line.strip()
        for line in (project / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", ".dockerignore starts by leaving everything out"
    for source in context_sources((project / "Dockerfile").read_text()):
        assert (project / source).exists(), f"COPY {source}: not in the generated project"
        assert not ignored(source, patterns), f"COPY {source}: excluded from the build context"
    for secret in [
        ".env",
        "feedback.db",
        "mlflow.db",
        ".git",
        "logs",
        "mlartifacts",
        "data/adult_sample.csv",
    ]:
        assert ignored(secret, patterns), f"{secret} would reach the build context"


@pytest.mark.parametrize(
    ("dockerfile", "expected"),
    [
        ('FROM python:3.12-slim\nUSER 1000\nENTRYPOINT ["mlops", "serve"]\n', "not pinned by digest"),
        ("FROM python:latest@sha256:" + "a" * 64 + "\nUSER 1000\n", "'latest' tag"),
        ("FROM python@sha256:" + "a" * 64 + '\nENTRYPOINT ["mlops", "serve"]\n', "sets no USER"),
        ("FROM python@sha256:" + "a" * 64 + "\nUSER mlops\n", "numeric, non-zero uid"),
        ("FROM python@sha256:" + "a" * 64 + "\nUSER 0\n", "numeric, non-zero uid"),
        ("FROM python@sha256:" + "a" * 64 + "\nENV GITHUB_TOKEN=x\nUSER 1\n", "store a secret"),
        ("FROM python@sha256:" + "a" * 64 + "\nCOPY .env /app/\nUSER 1\n", "copies a secret"),
        (
            "FROM python@sha256:" + "a" * 64 + "\nRUN apt-get install -y gcc\nUSER 1\n",
            "build tools belong in the build stage",
        ),
        ("FROM python@sha256:" + "a" * 64 + "\nRUN uv sync\nUSER 1\n", "--frozen --no-dev"),
    ],
)
def test_each_rule_catches_its_mistake(dockerfile: str, expected: str) -> None:
    assert any(expected in problem for problem in dockerfile_problems(dockerfile)), dockerfile_problems(
        dockerfile
    )


def test_the_image_and_the_pod_agree_on_user_and_project_directory(baked) -> None:
    """The pod runs as the image's user and mounts the release and settings into its project root."""
    _, project = baked
    final = stages((project / "Dockerfile").read_text())[-1]
    [workdir] = [rest for keyword, rest in final["instructions"] if keyword == "WORKDIR"]
    user = [rest for keyword, rest in final["instructions"] if keyword == "USER"][-1]
    deployment = yaml.safe_load((project / "deploy" / "base" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    assert f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}" == user
    mounts = {mount["mountPath"] for mount in pod["containers"][0]["volumeMounts"]}
    assert f"{workdir}/logs" in mounts and any(path.startswith(f"{workdir}/environments/") for path in mounts)
