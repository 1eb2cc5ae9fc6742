"""Evidence cost against training cost as the data grows (10k, 100k, 1M rows of the same schema).

Bakes the default project, then for each size resamples the demo data (UCI Adult rows, drawn with
replacement, seeded) and times, side by side in one process:
  training  - fitting the project's pipeline on the training split (grows with the data);
  SHAP      - the project's explainer on its bounded, seeded sample and background;
  fairness  - the Fairlearn audit of the held-out split (bounded: governance.fairness_max_rows);
  charts+card - the PNG charts and the Markdown + HTML model card.
Prints the table, each step's ratio to its 10k time, and evidence / training per size.
Usage: python benchmarks/evidence_cost.py [--sizes 10000 100000 1000000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def bake(directory: Path) -> Path:
    subprocess.run(
        [
            str(BIN / "cookiecutter"),
            "--no-input",
            "--output-dir",
            str(directory),
            str(TEMPLATE_ROOT),
            "project_name=Evidence Bench",
            "init_git=false",
        ],
        check=True,
        capture_output=True,
    )
    return directory / "evidence-bench"


def measure(project: Path, sizes: list[int]) -> list[dict[str, float]]:
    sys.path.insert(0, str(project / "src"))
    import pandas as pd
    from evidence_bench.config import load_config
    from evidence_bench.governance import charts, model_card
    from evidence_bench.governance.explainability import explain
    from evidence_bench.governance.fairness import compute_fairness, describe_largest_gap
    from evidence_bench.pipeline.data import load_dataset
    from evidence_bench.pipeline.features import build_pipeline
    from evidence_bench.pipeline.training import split_dataset

    config = load_config(project / "project.yaml")
    demo = pd.read_csv(config.data_path)
    card_text = model_card.load_card_text(config.resolve(config.governance.model_card)).model_dump()
    results = []
    for size in sizes:
        path = project / "data" / f"bench_{size}.csv"
        demo.sample(n=size, replace=True, random_state=size).to_csv(path, index=False)
        dataset = load_dataset(config.data, path)
        split = split_dataset(dataset, config.model)
        row = {"rows": size}

        start = time.perf_counter()
        model = build_pipeline(config.data, config.model).fit(split.train_features, split.train_labels)
        row["training"] = time.perf_counter() - start

        start = time.perf_counter()
        shap_report = explain(
            model,
            split.test_features,
            split.train_features,
            config.governance.shap_sample_size,
            config.governance.shap_background_size,
            config.model.random_state,
        )
        row["shap"] = time.perf_counter() - start

        start = time.perf_counter()
        predictions = model.predict(split.test_features)
        fairness = compute_fairness(
            split.test_labels,
            predictions,
            split.test_sensitive,
            config.governance.min_group_size,
            max_rows=config.governance.fairness_max_rows,
        )
        row["fairness"] = time.perf_counter() - start

        start = time.perf_counter()
        images = {
            "shap_beeswarm.png": charts.shap_beeswarm_png(shap_report),
            "shap_bar.png": charts.shap_bar_png(shap_report),
        }
        fairness_images = {}
        for audit in fairness.audits:
            images[f"fairness_{audit.feature}.png"] = charts.fairness_png(audit)
            fairness_images[audit.feature] = f"fairness_{audit.feature}.png"
        metrics = {"roc_auc": 0.0}
        context = {
            "model": {
                "name": "bench",
                "version": 1,
                "uri": "models:/bench/1",
                "family": config.model.family,
                "estimator": type(model.steps[-1][1]).__name__,
                "params": {},
            },
            "text": card_text,
            "data": {
                "name": dataset.name,
                "source": str(path.name),
                "rows": dataset.rows,
                "test_rows": len(split.test_labels),
                "digest": dataset.digest,
                "target": config.data.target,
                "positive_label": config.data.positive_label,
                "sensitive_features": config.data.sensitive_features,
            },
            "metrics": metrics,
            "baseline": metrics,
            "metric_labels": model_card.METRIC_LABELS,
            "fairness": fairness.to_dict(),
            "fairness_summary": describe_largest_gap(fairness),
            "fairness_images": fairness_images,
            "gap_names": (
                "demographic_parity_difference",
                "demographic_parity_ratio",
                "equalized_odds_difference",
                "equalized_odds_ratio",
            ),
            "explainability": shap_report.to_dict(),
            "reproducibility": {
                "git_sha": "-",
                "git_dirty": False,
                "run_id": "-",
                "test_size": 0.25,
                "random_state": 42,
                "packages": {},
            },
            "decision": {
                "environment": "staging",
                "allow": True,
                "reasons": [],
                "notes": [],
                "limits": {},
                "policy_pack": "standard",
            },
        }
        model_card.render_markdown(context)
        model_card.render_html(context, images)
        row["card"] = time.perf_counter() - start
        row["evidence"] = row["shap"] + row["fairness"] + row["card"]
        results.append(row)
        path.unlink()
        print(f"  measured {size:,} rows", file=sys.stderr)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        results = measure(bake(Path(scratch)), arguments.sizes)
    first = results[0]
    print(
        f"{'rows':>10}{'training s':>12}{'SHAP s':>9}{'fairness s':>12}{'charts+card s':>15}"
        f"{'evidence s':>12}{'evidence/training':>19}"
    )
    for row in results:
        print(
            f"{row['rows']:>10,}{row['training']:>12.2f}{row['shap']:>9.2f}{row['fairness']:>12.2f}"
            f"{row['card']:>15.2f}{row['evidence']:>12.2f}{row['evidence'] / row['training']:>19.2f}"
        )
    print(f"growth from {first['rows']:,} rows (x of the first size):")
    for row in results[1:]:
        growth = {
            step: row[step] / first[step] for step in ("training", "shap", "fairness", "card", "evidence")
        }
        print(f"{row['rows']:>10,}  " + "  ".join(f"{step} x{value:.2f}" for step, value in growth.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
