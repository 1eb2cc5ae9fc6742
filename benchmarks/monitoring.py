"""Monitoring cost against training cost as the prediction log grows (10k, 100k, 1M logged rows).

Bakes the default project, then for each size resamples the demo data (UCI Adult rows, drawn with
replacement, seeded) and, in one process:
  training - fits the project's pipeline on the training split of that many rows (timed);
  log      - writes the champion's reference profile into its evidence bundle and that many scored
             rows into the prediction log with the project's PredictionLog (not timed);
  monitor  - runs `monitor` over the log's window: stream, drift, live figures, the Rego decision and
             the four report files (timed; its memory is bounded, its time is one JSON parse per row).
Prints the table and monitor / training per size.
Usage: python benchmarks/monitoring.py [--sizes 10000 100000 1000000] [--quick] [--project DIR]
(--quick measures 10k and 100k only; --project reuses a baked project instead of baking one.)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCORING_CHUNK = 50_000


def bake(directory: Path) -> Path:
    subprocess.run(
        [
            str(BIN / "cookiecutter"),
            "--no-input",
            "--output-dir",
            str(directory),
            str(TEMPLATE_ROOT),
            "project_name=Monitoring Bench",
            "init_git=false",
        ],
        check=True,
        capture_output=True,
    )
    return directory / "monitoring-bench"


def measure(project: Path, sizes: list[int]) -> list[dict[str, float]]:
    sys.path.insert(0, str(project / "src"))
    import importlib

    [package] = [path.name for path in (project / "src").iterdir() if (path / "cli.py").is_file()]
    modules = {
        name: importlib.import_module(f"{package}.{name}")
        for name in (
            "config",
            "commands.evidence",
            "commands.monitoring",
            "governance.evidence",
            "governance.profile",
            "io.prediction_log",
            "pipeline.data",
            "pipeline.features",
            "pipeline.training",
        )
    }
    import pandas as pd

    config = modules["config"].load_config(project / "project.yaml")
    environment = config.environments[-1]
    log_directory = config.resolve(config.environment_settings(environment).serving.prediction_log.directory)
    demo = pd.read_csv(config.data_path)
    results = []
    for size in sizes:
        path = project / "data" / f"bench_{size}.csv"
        demo.sample(n=size, replace=True, random_state=size).to_csv(path, index=False)
        dataset = modules["pipeline.data"].load_dataset(config.data, path)
        split = modules["pipeline.training"].split_dataset(dataset, config.model)
        row = {"rows": size}

        start = time.perf_counter()
        model = (
            modules["pipeline.features"]
            .build_pipeline(config.data, config.model)
            .fit(split.train_features, split.train_labels)
        )
        row["training"] = time.perf_counter() - start

        version = size  # one bundle per size
        profile = modules["governance.profile"].build_profile(
            split.train_features,
            list(dataset.schema.numeric),
            list(dataset.schema.categorical),
            model.predict_proba(split.test_features)[:, 1],
            split.test_labels,
            split.test_sensitive,
        )
        modules["governance.evidence"].write_bundle(
            modules["commands.evidence"].bundle_path(config, version),
            {"profile.json": (json.dumps(profile) + "\n").encode()},
            {"model": config.mlflow.registered_model, "version": version},
        )
        shutil.rmtree(log_directory, ignore_errors=True)
        log = modules["io.prediction_log"].PredictionLog(log_directory)
        moment = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        features = dataset.features
        for offset in range(0, size, SCORING_CHUNK):
            chunk = features.iloc[offset : offset + SCORING_CHUNK]
            scores = model.predict_proba(chunk)[:, 1]
            log.append(
                {
                    "request_id": f"{size}-{offset + index}",
                    "row": 0,
                    "time": moment,
                    "environment": environment,
                    "endpoint": "predict",
                    "variant": "champion",
                    "model_version": version,
                    "shadow": False,
                    "experiment_id": None,
                    "routing_key_hash": None,
                    "features": values,
                    "score": float(score),
                    "label": int(score >= 0.5),
                    "status": 200,
                    "latency_ms": 12.5,
                }
                for index, (values, score) in enumerate(
                    zip(chunk.to_dict(orient="records"), scores, strict=True)
                )
            )
        log.close()
        row["log_mb"] = sum(item.stat().st_size for item in log_directory.glob("*.jsonl")) / 1e6

        start = time.perf_counter()
        result = modules["commands.monitoring"].monitor(
            config, environment, out=project / "monitoring" / str(size)
        )
        row["monitor"] = time.perf_counter() - start
        row["records"] = result.document["window"]["records"]
        row["action"] = result.decision.action
        results.append(row)
        path.unlink()
        print(f"  measured {size:,} rows", file=sys.stderr)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--quick", action="store_true", help="measure 10k and 100k rows only")
    parser.add_argument("--project", type=Path, help="a baked project to use instead of baking one")
    arguments = parser.parse_args()
    sizes = [size for size in arguments.sizes if size <= 100_000] if arguments.quick else arguments.sizes
    with tempfile.TemporaryDirectory() as scratch:
        project = arguments.project.resolve() if arguments.project else bake(Path(scratch))
        results = measure(project, sizes)
    print(
        f"{'logged rows':>12}{'log MB':>9}{'training s':>12}{'monitor s':>11}{'monitor/training':>18}"
        f"{'rows/s':>11}  decision"
    )
    for row in results:
        ratio, rate = row["monitor"] / row["training"], row["records"] / row["monitor"]
        print(
            f"{row['rows']:>12,}{row['log_mb']:>9.1f}{row['training']:>12.2f}{row['monitor']:>11.2f}"
            f"{ratio:>18.2f}{rate:>11,.0f}  {row['action']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
