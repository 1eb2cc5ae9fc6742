"""Build the demo data set shipped in generated projects from the UCI Adult training split.

The sample is deterministic and stratified by income and sex, so that the demo model and the
fairness reports see the same class and group balance as the full data set.

Usage: python tools/make_demo_data.py PATH/TO/adult.data OUTPUT.csv [--rows 6000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
]
STRATA = ["income", "sex"]
SEED = 20240601


def read_adult(path: Path) -> pd.DataFrame:
    """Read the raw comma-and-space separated file; `?` marks a missing value."""
    frame = pd.read_csv(
        path,
        header=None,
        names=COLUMNS,
        sep=r",\s*",
        engine="python",
        na_values=["?"],
        comment="|",
    )
    frame["income"] = frame["income"].str.rstrip(".")
    return frame.dropna(subset=["income"])


def stratified_sample(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    """Take exactly `rows` rows keeping each stratum's share (largest-remainder allocation)."""
    sizes = frame.groupby(STRATA).size()
    quotas = sizes * rows / len(frame)
    counts = quotas.astype(int)
    shortfall = rows - int(counts.sum())
    counts[(quotas - counts).sort_values(ascending=False).index[:shortfall]] += 1
    parts = [group.sample(n=int(counts[key]), random_state=SEED) for key, group in frame.groupby(STRATA)]
    return pd.concat(parts).sort_index().reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--rows", type=int, default=6000)
    args = parser.parse_args(argv)
    if not args.source.is_file():
        print(f"error: {args.source} is not a file", file=sys.stderr)
        return 1
    sample = stratified_sample(read_adult(args.source), args.rows)
    sample.to_csv(args.output, index=False)
    print(f"wrote {len(sample)} rows to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
