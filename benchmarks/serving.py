"""Our `serve` against `mlflow models serve`, side by side in one run, on the same model, rows and client.

Bakes the demo project (or takes `--project DIR`, a baked project with its data), trains the demo model
twice (a champion and a challenger, different seeds), and starts both services on 127.0.0.1:
  ours    `<package> serve` with canary routing at 10 %, metrics and the prediction log on, one worker,
          answering `POST /predict` (label, score, variant and version per row);
  mlflow  `mlflow models serve -m models:/<name>/<champion> --env-manager local -w 1`, `POST /invocations`.
One load client drives both: an asyncio HTTP/1.1 client in a process of its own, N keep-alive connections,
each sending its next request when the previous one is answered (closed loop), held-out rows (those without
missing values: mlflow's schema enforcement refuses nulls in integer columns) sent in turn. Each cell is
measured after a warm-up, alternating the two services (`--rounds N`: N times each, the median kept), for
single-row requests and 100-row batches at concurrency 1, 8 and 32. Prints requests/s, p50 and p99
latency, any non-200 answers, the ratios (ours/mlflow throughput, mlflow/ours p99), the floor: rows/s of
the bare pipeline's `predict_proba` (one thread, as the service pins it) on a batch and the cost of one
call of one row, and the machine's load average (absolute numbers depend on it; the ratios less).
Usage: python benchmarks/serving.py [--duration S] [--warmup S] [--rounds N] [--quick]
                                    [--project DIR [--no-train]]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROJECT_NAME = "Bench Serving"
ENVIRONMENT = "staging"
CANARY_WEIGHT = 10
CONCURRENCIES = (1, 8, 32)
BATCH_SIZES = (1, 100)
GOAL_RATIO = 5


def check(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bake(workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    check(
        [
            str(BIN / "cookiecutter"),
            "--no-input",
            "--output-dir",
            str(workdir),
            str(TEMPLATE_ROOT),
            f"project_name={PROJECT_NAME}",
        ],
        cwd=workdir,
    )
    return next(path for path in workdir.iterdir() if (path / "project.yaml").is_file())


def project_environment(project: Path) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    environment["PYTHONPATH"] = str(project / "src")
    # serve refuses to start without the /feedback token; the benchmark never sends feedback.
    environment.setdefault("MLOPS_FEEDBACK_TOKEN", "benchmark-only")
    # mlflow starts `uvicorn` from PATH: this interpreter's scripts directory comes first.
    environment["PATH"] = os.pathsep.join([str(BIN), environment.get("PATH", "")])
    return environment


def package_of(project: Path) -> str:
    return next(path.name for path in (project / "src").iterdir() if (path / "cli.py").is_file())


# -- preparation, run inside the project's interpreter path ------------------------------------------------
def prepare(project: Path, output: Path) -> None:
    """Write release.yaml (canary 10 %), the rows to send, and measure the bare pipeline's floor."""
    package = package_of(project)
    config_module = importlib.import_module(f"{package}.config")
    release_module = importlib.import_module(f"{package}.contracts.release")
    registry_module = importlib.import_module(f"{package}.io.registry")
    data_module = importlib.import_module(f"{package}.pipeline.data")
    training_module = importlib.import_module(f"{package}.pipeline.training")
    import orjson
    import pandas as pd
    from threadpoolctl import threadpool_limits

    config = config_module.load_config(project / "project.yaml")
    with registry_module.Registry(config) as registry:
        versions = sorted(
            int(item.version) for item in registry.client.search_model_versions(f"name='{registry.name}'")
        )
        champion, challenger = versions[-2], versions[-1]
        digest = registry.artifact_digest(champion)
        challenger_digest = registry.artifact_digest(challenger)
        pipeline = registry.load_model(champion)
    reference = getattr(release_module, "ModelReference", None)
    if reference is not None:  # release.yaml records the challenger's digest too
        challenger = reference(
            name=config.mlflow.registered_model,
            version=challenger,
            artifact_digest=challenger_digest,
            source_sha="0" * 40,
            data_digest="benchmark",
        )
    release = release_module.Release.create(
        environment=ENVIRONMENT,
        model=config.mlflow.registered_model,
        version=champion,
        artifact_digest=digest,
        source_sha="0" * 40,
        data_digest="benchmark",
        promoted_from="main",
        policy_pack=config.policy_pack,
        strategy="canary",
        challenger=challenger,
        challenger_weight=CANARY_WEIGHT,
    )
    (output / "release.yaml").write_text(release.to_yaml())
    dataset = data_module.load_dataset(config.data, config.data_path)
    held_out = training_module.split_dataset(dataset, config.model).test_features
    rows = [row for row in orjson.loads(held_out.to_json(orient="records")) if None not in row.values()]
    frame = pd.DataFrame(rows)
    floor = {}
    with threadpool_limits(1):
        for size in (1, 1000):
            batch = frame.iloc[:size]
            pipeline.predict_proba(batch)
            times = []
            for _ in range(20 if size == 1 else 5):
                start = time.perf_counter()
                pipeline.predict_proba(batch)
                times.append(time.perf_counter() - start)
            floor[str(size)] = statistics.median(times)
    document = {
        "model": config.mlflow.registered_model,
        "champion": champion,
        "challenger": release.challenger,
        "rows": rows,
        "floor": floor,
    }
    (output / "prepared.json").write_bytes(orjson.dumps(document))


# -- the load client ---------------------------------------------------------------------------------------
def request_bytes(port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body.encode()


async def one_connection(
    port: int,
    payloads: list[bytes],
    offset: int,
    warmup_end: float,
    end: float,
    latencies: list[float],
    statuses: dict[int, int],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    index = offset
    try:
        while True:
            started = time.perf_counter()
            if started >= end:
                return
            writer.write(payloads[index % len(payloads)])
            index += 1
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            finished = time.perf_counter()
            if started >= warmup_end and finished <= end:
                latencies.append(finished - started)
                status = int(status_line.split()[1])
                statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def drive(port: int, payloads: list[bytes], concurrency: int, warmup: float, duration: float) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    now = time.perf_counter()
    warmup_end, end = now + warmup, now + warmup + duration
    await asyncio.gather(
        *(
            one_connection(port, payloads, offset * 7, warmup_end, end, latencies, statuses)
            for offset in range(concurrency)
        )
    )
    latencies.sort()
    count = len(latencies)

    def percentile(share: float) -> float:
        return latencies[min(count - 1, int(share * count))] if count else float("nan")

    return {
        "requests": count,
        "statuses": statuses,
        "requests_per_second": count / duration,
        "p50": percentile(0.50),
        "p99": percentile(0.99),
    }


def client_main(arguments: argparse.Namespace) -> None:
    """Runs in its own process: loads the payload file, drives one cell, prints the result as JSON."""
    with open(arguments.payloads, "rb") as handle:
        payloads = [request_bytes(arguments.port, arguments.path, body) for body in json.load(handle)]
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    result = runner(
        drive(arguments.port, payloads, arguments.concurrency, arguments.warmup, arguments.duration)
    )
    print(json.dumps(result))


def measure(
    port: int, path: str, payload_file: Path, concurrency: int, warmup: float, duration: float
) -> dict:
    output = check(
        [
            sys.executable,
            __file__,
            "--client",
            "--port",
            str(port),
            "--path",
            path,
            "--payloads",
            str(payload_file),
            "--concurrency",
            str(concurrency),
            "--warmup",
            str(warmup),
            "--duration",
            str(duration),
        ],
        cwd=TEMPLATE_ROOT,
    )
    return json.loads(output.splitlines()[-1])


# -- the services ------------------------------------------------------------------------------------------
def wait_until_ready(process: subprocess.Popen, url: str, name: str, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{name} was not ready within {timeout} s")


def start_ours(project: Path, scratch: Path, port: int) -> subprocess.Popen:
    settings = project / "environments" / f"{ENVIRONMENT}.yaml"
    text = settings.read_text()
    # Canary comes from release.yaml; the log goes to the scratch directory so the project stays clean.
    logs = scratch / "predictions"
    settings.write_text(
        text.replace(
            "serving:\n",
            f"serving:\n  prediction_log:\n    directory: {logs}\n"
            f"  feedback_database_url: sqlite:///{scratch / 'feedback.db'}\n",
            1,
        )
    )
    command = [
        sys.executable,
        "-m",
        package_of(project),
        "serve",
        "--env",
        ENVIRONMENT,
        "--release",
        str(scratch / "release.yaml"),
        "--port",
        str(port),
    ]
    process = subprocess.Popen(
        command,
        cwd=project,
        env=project_environment(project),
        stdout=subprocess.DEVNULL,
        stderr=(scratch / "ours.log").open("wb"),
    )
    wait_until_ready(process, f"http://127.0.0.1:{port}/health/ready", "serve", scratch / "ours.log")
    return process


def start_mlflow(project: Path, scratch: Path, port: int, model: str, version: int) -> subprocess.Popen:
    environment = project_environment(project)
    environment["MLFLOW_TRACKING_URI"] = f"sqlite:///{project / 'mlflow.db'}"
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        f"models:/{model}/{version}",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        "1",
    ]
    process = subprocess.Popen(
        command,
        cwd=project,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=(scratch / "mlflow.log").open("wb"),
        start_new_session=True,
    )
    wait_until_ready(process, f"http://127.0.0.1:{port}/ping", "mlflow models serve", scratch / "mlflow.log")
    return process


def stop(process: subprocess.Popen, group: bool = False) -> None:
    if process.poll() is None:
        if group:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL) if group else process.kill()
            process.wait()


def load_average() -> str:
    """The machine's load: both services share it, but absolute numbers depend on it."""
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


def median_round(rounds: list[dict]) -> dict:
    """The round of median throughput (its latencies come with it: one real measurement, not a mix)."""
    ordered = sorted(rounds, key=lambda result: result["requests_per_second"])
    return ordered[(len(ordered) - 1) // 2]


def write_payloads(rows: list[dict], size: int, key: str, path: Path) -> None:
    count = max(1, min(200, len(rows) // size))
    bodies = [
        json.dumps({key: rows[index * size % len(rows) :][:size] or rows[:size]}) for index in range(count)
    ]
    path.write_text(json.dumps([body for body in bodies]))


def table(results: dict, floor: dict) -> str:
    lines = [
        f"{'rows/req':>8} {'conc':>5} | {'ours req/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'non-200':>7} | "
        f"{'mlflow req/s':>12} {'p50 ms':>7} {'p99 ms':>7} {'non-200':>7} | {'thr x':>6} {'p99 /':>6}"
    ]
    for (size, concurrency), pair in results.items():
        ours, theirs = pair["ours"], pair["mlflow"]

        def bad(result: dict) -> int:
            return sum(count for status, count in result["statuses"].items() if int(status) != 200)

        throughput = ours["requests_per_second"] / max(theirs["requests_per_second"], 1e-9)
        latency = theirs["p99"] / ours["p99"]
        lines.append(
            f"{size:>8} {concurrency:>5} | {ours['requests_per_second']:>10.1f} {ours['p50'] * 1000:>7.1f} "
            f"{ours['p99'] * 1000:>7.1f} {bad(ours):>7} | {theirs['requests_per_second']:>12.1f} "
            f"{theirs['p50'] * 1000:>7.1f} {theirs['p99'] * 1000:>7.1f} {bad(theirs):>7} | "
            f"{throughput:>6.1f} {latency:>6.1f}"
        )
    lines.append(
        "thr x = ours/mlflow requests per second; p99 / = mlflow p99 / ours p99 (higher is better for both)"
    )
    lines.append(
        f"floor (bare predict_proba, one thread): {1000 / floor['1000']:,.0f} rows/s on a 1,000-row batch; "
        f"{floor['1'] * 1000:.1f} ms for one call of one row"
    )
    return "\n".join(lines)


def train_champion_and_challenger(project: Path, package: str, environment: dict[str, str]) -> None:
    """Two versions of the demo model: the project's seed, then another one (they disagree on some rows)."""
    print(f"training the champion and the challenger in {project.name} ...", flush=True)
    check([sys.executable, "-m", package, "train", "--force"], cwd=project, env=environment)
    config_file = project / "project.yaml"
    original = config_file.read_text()
    config_file.write_text(original.replace("random_state: 42", "random_state: 7"))
    try:
        check([sys.executable, "-m", package, "train", "--force"], cwd=project, env=environment)
    finally:
        config_file.write_text(original)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per cell")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds sent before measuring")
    parser.add_argument("--quick", action="store_true", help="3 s per cell, 1 s warm-up")
    parser.add_argument(
        "--rounds", type=int, default=1, help="measure each cell N times, alternating; report the median"
    )
    parser.add_argument("--project", type=Path, help="a baked project (default: bake one)")
    parser.add_argument(
        "--no-train", action="store_true", help="serve the last two versions --project already registered"
    )
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--payloads", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.client:
        client_main(arguments)
        return 0
    if arguments.prepare is not None:
        prepare(arguments.project, arguments.prepare)
        return 0
    if arguments.quick:
        arguments.duration, arguments.warmup = 3.0, 1.0
    with tempfile.TemporaryDirectory(prefix="serving-benchmark-") as directory:
        scratch = Path(directory)
        project = arguments.project.resolve() if arguments.project else bake(scratch / "bake")
        environment = project_environment(project)
        package = package_of(project)
        if not (arguments.no_train and arguments.project):
            train_champion_and_challenger(project, package, environment)
        check(
            [sys.executable, __file__, "--prepare", str(scratch), "--project", str(project)],
            cwd=project,
            env=environment,
        )
        prepared = json.loads((scratch / "prepared.json").read_text())
        rows = prepared["rows"]
        for size in BATCH_SIZES:
            write_payloads(rows, size, "instances", scratch / f"ours-{size}.json")
            write_payloads(rows, size, "dataframe_records", scratch / f"mlflow-{size}.json")
        settings_file = project / "environments" / f"{ENVIRONMENT}.yaml"
        settings_text = settings_file.read_text()
        ours_port, mlflow_port = free_port(), free_port()
        load_at_start = load_average()
        ours = mlflow = None
        try:
            ours = start_ours(project, scratch, ours_port)
            mlflow = start_mlflow(project, scratch, mlflow_port, prepared["model"], prepared["champion"])
            print(
                f"champion v{prepared['champion']}, challenger v{prepared['challenger']} (canary "
                f"{CANARY_WEIGHT} %); {len(rows)} held-out rows; {arguments.duration:g} s per cell",
                flush=True,
            )
            # Both services answer their first requests slowly (imports, caches): not part of any cell.
            for size in BATCH_SIZES:
                for name, port, path in (
                    ("ours", ours_port, "/predict"),
                    ("mlflow", mlflow_port, "/invocations"),
                ):
                    measure(port, path, scratch / f"{name}-{size}.json", 2, 0, 3)
            results = {}
            for size in BATCH_SIZES:
                for concurrency in CONCURRENCIES:
                    rounds: dict[str, list[dict]] = {"ours": [], "mlflow": []}
                    for _ in range(arguments.rounds):
                        for name, port, path in (
                            ("ours", ours_port, "/predict"),
                            ("mlflow", mlflow_port, "/invocations"),
                        ):
                            rounds[name].append(
                                measure(
                                    port,
                                    path,
                                    scratch / f"{name}-{size}.json",
                                    concurrency,
                                    arguments.warmup,
                                    arguments.duration,
                                )
                            )
                    results[(size, concurrency)] = {
                        name: median_round(found) for name, found in rounds.items()
                    }
                    print(f"  measured {size} row(s) per request at concurrency {concurrency}", flush=True)
        finally:
            settings_file.write_text(settings_text)
            for process, group in ((ours, False), (mlflow, True)):
                if process is not None:
                    stop(process, group)
        print()
        print(table(results, prepared["floor"]))
        print(f"load average (1, 5, 15 min) at the start: {load_at_start}, at the end: {load_average()}")
        eight = results[(1, 8)]
        throughput = eight["ours"]["requests_per_second"] / eight["mlflow"]["requests_per_second"]
        latency = eight["mlflow"]["p99"] / eight["ours"]["p99"]
        met = throughput >= GOAL_RATIO and latency >= GOAL_RATIO
        print(
            f"goal at concurrency 8, single rows (>= {GOAL_RATIO}x throughput, <= 1/{GOAL_RATIO} p99): "
            f"{throughput:.1f}x and 1/{latency:.1f}: {'met' if met else 'missed'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
