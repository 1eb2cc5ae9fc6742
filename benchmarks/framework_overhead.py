"""Framework overhead, measured side by side in one run.

Times (median of N repetitions, wall clock, each in a fresh process and a fresh MLflow store):
  1. baking the template with the cookiecutter command line (no git init, so only templating counts);
  2. the generated project's `train` (validate data, train, evaluate, log and register a version);
  3. a bare script doing the same fit + evaluate + MLflow log and registration by hand;
  4. the generated project's whole `run` loop, for scale (it does much more: evidence, gate, promotion).
Prints the table and the ratio train / bare script, which is what the framework costs on top of the work.
Usage: python benchmarks/framework_overhead.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]
BARE_SCRIPT = Path(__file__).resolve().parent / "bare_training.py"
BIN = Path(sys.executable).parent


def timed(action: Callable[[], None]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def check(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")


def bake(workdir: Path, init_git: bool = False) -> Path:
    output = workdir / "out"
    check(
        [
            str(BIN / "cookiecutter"),
            "--no-input",
            "--output-dir",
            str(output),
            str(TEMPLATE_ROOT),
            "project_name=Bench Model",
            f"init_git={'true' if init_git else 'false'}",
        ],
        cwd=workdir,
    )
    return output / "bench-model"


def fresh_store(project: Path) -> None:
    for leftover in ("mlflow.db", "mlartifacts", "reports", ".gitops-remote.git"):
        path = project / leftover
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        bake_times = []
        for index in range(arguments.repeat):
            bake_dir = workdir / f"bake{index}"
            bake_dir.mkdir()
            bake_times.append(timed(lambda directory=bake_dir: bake(directory)))
        (workdir / "project").mkdir()
        project = bake(workdir / "project", init_git=True)
        data = project / "data" / "adult_sample.csv"
        project_env = {**os.environ, "PYTHONPATH": str(project / "src")}
        project_env.pop("MLFLOW_TRACKING_URI", None)
        run_times, bare_times, loop_times = [], [], []
        for index in range(arguments.repeat):
            fresh_store(project)
            run_times.append(
                timed(
                    lambda: check(
                        [sys.executable, "-m", "bench_model", "train"], cwd=project, env=project_env
                    )
                )
            )
            fresh_store(project)
            loop_times.append(
                timed(
                    lambda: check([sys.executable, "-m", "bench_model", "run"], cwd=project, env=project_env)
                )
            )
            bare_dir = workdir / f"bare{index}"
            bare_dir.mkdir()
            bare_times.append(
                timed(
                    lambda directory=bare_dir: check(
                        [
                            sys.executable,
                            str(BARE_SCRIPT),
                            str(data),
                            f"sqlite:///{directory / 'mlflow.db'}",
                            str(directory / "artifacts"),
                        ],
                        cwd=directory,
                    )
                )
            )
    rows = [
        ("cookiecutter bake", bake_times),
        ("generated `train`", run_times),
        ("bare script (same work)", bare_times),
        ("generated `run` (whole loop)", loop_times),
    ]
    print(f"{'step':<30}{'median s':>10}{'min s':>10}{'max s':>10}   (n={arguments.repeat})")
    for name, times in rows:
        print(f"{name:<30}{statistics.median(times):>10.2f}{min(times):>10.2f}{max(times):>10.2f}")
    ratio = statistics.median(run_times) / statistics.median(bare_times)
    print(f"framework overhead: train / bare script = {ratio:.2f}x")
    print("(`run` adds the evidence bundle, the gate, and promotion and deploy through every environment)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
