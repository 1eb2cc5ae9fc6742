"""Count the MLflow REST calls of one `promote`, for the template at two git revisions, side by side.

Each revision is baked from `git archive`, trains and reports a version against a real `mlflow server`
on 127.0.0.1 (its uvicorn access log is the count), then promotes it to the first environment with
`--no-pr` into a local bare remote. Prints the calls of the promote alone, by endpoint.

    python benchmarks/registry_calls.py [--before REV] [--after REV]   (defaults: 0ecce32 and HEAD)
"""

from __future__ import annotations

import argparse
import collections
import re
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from io import BytesIO
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]
REQUEST = re.compile(r'"(GET|POST|PATCH|DELETE|PUT) ([^ ?"]+)')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bake(revision: str, directory: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(TEMPLATE), "archive", revision], capture_output=True, check=True
    ).stdout
    source = directory / "template"
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(source, filter="data")
    output = directory / "project"
    subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(output), str(source)],
        check=True,
        capture_output=True,
    )
    return next(output.iterdir())


GENERIC = (
    (re.compile(r"/mlflow-artifacts/artifacts/.+"), "/mlflow-artifacts/artifacts/<file>"),
    (re.compile(r"/logged-models/[^/]+$"), "/logged-models/<id>"),
)


def generic(path: str) -> str:
    for pattern, replacement in GENERIC:
        path = pattern.sub(replacement, path)
    return path


def requests_in(log: Path) -> list[str]:
    text = log.read_text(errors="replace")
    return [f"{method} {generic(path)}" for method, path in REQUEST.findall(text)]


def count_promote(revision: str) -> collections.Counter:
    with tempfile.TemporaryDirectory(prefix="registry-calls-") as scratch:
        root = Path(scratch)
        project = bake(revision, root)
        port = free_port()
        log = root / "server.log"
        with log.open("w") as stream:
            server = subprocess.Popen(
                [
                    *(sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"),
                    *("--port", str(port), "--workers", "1"),
                    *("--backend-store-uri", f"sqlite:///{root / 'store.db'}"),
                    *("--artifacts-destination", str(root / "artifacts")),
                    *("--uvicorn-opts", "--access-log"),
                ],
                stdout=stream,
                stderr=subprocess.STDOUT,
            )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(120):
                try:
                    urllib.request.urlopen(f"{url}/health", timeout=2)
                    break
                except OSError:
                    time.sleep(1)
            environment = {"MLFLOW_TRACKING_URI": url, "PYTHONPATH": str(project / "src"), "PATH": ""}
            environment["PATH"] = str(Path(sys.executable).parent) + ":/usr/bin:/bin"
            package = project.name.replace("-", "_")

            def cli(*arguments: str) -> None:
                subprocess.run(
                    [sys.executable, "-m", package, *arguments],
                    cwd=project,
                    env=environment,
                    check=True,
                    capture_output=True,
                )

            subprocess.run(["git", "init", "-q", "--bare", str(root / "remote.git")], check=True)
            subprocess.run(
                ["git", "remote", "add", "origin", str(root / "remote.git")], cwd=project, check=True
            )
            subprocess.run(["git", "push", "-q", "origin", "main"], cwd=project, check=True)
            cli("train")
            cli("report", "--version", "1")
            before = len(requests_in(log))
            first = project.joinpath("project.yaml").read_text().split("environments:")[1].split("- ")[1]
            cli("promote", "--to", first.split()[0], "--version", "1", "--no-pr")
            time.sleep(1)
            return collections.Counter(requests_in(log)[before:])
        finally:
            server.terminate()
            server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="0ecce32", help="template revision before (default: %(default)s)")
    parser.add_argument("--after", default="HEAD", help="template revision after (default: %(default)s)")
    arguments = parser.parse_args()
    counts = {
        label: count_promote(revision)
        for label, revision in (("before", arguments.before), ("after", arguments.after))
    }
    endpoints = sorted(set().union(*counts.values()), key=lambda name: -sum(c[name] for c in counts.values()))
    print(f"MLflow REST calls of one `promote --no-pr` ({arguments.before} vs {arguments.after})")
    print(f"{'endpoint':<70}{'before':>8}{'after':>8}")
    for name in endpoints:
        print(f"{name[:69]:<70}{counts['before'][name]:>8}{counts['after'][name]:>8}")
    total_before, total_after = sum(counts["before"].values()), sum(counts["after"].values())
    print(f"{'total':<70}{total_before:>8}{total_after:>8}")
    print(f"ratio after/before: {total_after / total_before:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
