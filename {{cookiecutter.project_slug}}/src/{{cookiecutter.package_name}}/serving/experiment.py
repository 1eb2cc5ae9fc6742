"""The statistics of an A/B experiment: per variant, proportions with Wilson score intervals, and a
two-proportion z-test between the variants. Pure computation on labelled rows; no I/O.

Two proportions per variant, both over the rows that received feedback:
- the positive-label rate: the share of labels equal to the target's positive class (the outcome an
  A/B test of a decision model usually compares);
- the accuracy: the share of rows whose served prediction equals the label, when the prediction log
  still holds the prediction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

CONFIDENCE = 0.95
VARIANTS = ("champion", "challenger")


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


@dataclass(frozen=True)
class Proportion:
    """`successes` out of `trials`, with its Wilson score interval."""

    successes: int
    trials: int

    @property
    def rate(self) -> float | None:
        return self.successes / self.trials if self.trials else None

    def interval(self, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
        """The Wilson score interval (Wilson 1927): unlike the normal approximation it stays inside
        [0, 1] and keeps its coverage for small samples and rates near 0 or 1. None without trials."""
        if not self.trials:
            return None
        z, n, p = _z(confidence), self.trials, self.successes / self.trials
        denominator = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denominator
        half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        return max(0.0, centre - half), min(1.0, centre + half)

    def to_dict(self) -> dict[str, Any]:
        interval = self.interval()
        return {
            "successes": self.successes,
            "trials": self.trials,
            "rate": self.rate,
            "ci95": None if interval is None else list(interval),
        }


@dataclass(frozen=True)
class ZTest:
    """The pooled two-proportion z-test of `b - a`, two-sided."""

    difference: float
    z: float
    p_value: float

    def to_dict(self) -> dict[str, float]:
        return {"difference": self.difference, "z": self.z, "p_value": self.p_value}


def two_proportion_z_test(a: Proportion, b: Proportion) -> ZTest | None:
    """z = (p_b - p_a) / sqrt(p(1-p)(1/n_a + 1/n_b)) with p pooled; None when a side has no trials.

    When the pooled rate is 0 or 1 both samples are identical in outcome: z = 0, p = 1.
    """
    if not a.trials or not b.trials:
        return None
    difference = b.successes / b.trials - a.successes / a.trials
    pooled = (a.successes + b.successes) / (a.trials + b.trials)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / a.trials + 1 / b.trials))
    if spread == 0:
        return ZTest(difference, 0.0, 1.0)
    z = difference / spread
    return ZTest(difference, z, 2 * (1 - NormalDist().cdf(abs(z))))


@dataclass(frozen=True)
class LabelledRow:
    """One row that received feedback: who served it, the label, and the prediction if known."""

    variant: str
    model_version: int
    label: Any
    predicted: Any = None


@dataclass(frozen=True)
class VariantOutcome:
    variant: str
    versions: tuple[int, ...]
    positive: Proportion
    correct: Proportion

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "versions": list(self.versions),
            "n": self.positive.trials,
            "positive_label_rate": self.positive.to_dict(),
            "accuracy": self.correct.to_dict() if self.correct.trials else None,
        }


@dataclass(frozen=True)
class ExperimentReport:
    """Both variants of one experiment, and the tests of challenger against champion."""

    experiment_id: str
    environment: str
    positive_label: Any
    variants: dict[str, VariantOutcome]
    served_requests: int
    window: dict[str, str | None] = field(default_factory=dict)

    def _test(self, attribute: str) -> ZTest | None:
        if not all(name in self.variants for name in VARIANTS):
            return None
        champion, challenger = (getattr(self.variants[name], attribute) for name in VARIANTS)
        return two_proportion_z_test(champion, challenger)

    @property
    def positive_rate_test(self) -> ZTest | None:
        return self._test("positive")

    @property
    def accuracy_test(self) -> ZTest | None:
        return self._test("correct")

    def to_dict(self) -> dict[str, Any]:
        tests = {"positive_label_rate": self.positive_rate_test, "accuracy": self.accuracy_test}
        return {
            "experiment_id": self.experiment_id,
            "environment": self.environment,
            "positive_label": self.positive_label,
            "served_requests": self.served_requests,
            "window": self.window,
            "confidence": CONFIDENCE,
            "variants": {name: outcome.to_dict() for name, outcome in self.variants.items()},
            "challenger_minus_champion": {
                name: None if test is None else test.to_dict() for name, test in tests.items()
            },
        }


def compare_variants(
    experiment_id: str,
    environment: str,
    rows: Iterable[LabelledRow],
    positive_label: Any,
    served_requests: int,
    window: dict[str, str | None] | None = None,
) -> ExperimentReport:
    """Count each variant's labelled rows into its proportions."""
    counts: dict[str, dict[str, Any]] = {}
    for row in rows:
        tally = counts.setdefault(
            row.variant, {"versions": set(), "n": 0, "positive": 0, "judged": 0, "correct": 0}
        )
        tally["versions"].add(row.model_version)
        tally["n"] += 1
        tally["positive"] += row.label == positive_label
        if row.predicted is not None:
            tally["judged"] += 1
            tally["correct"] += row.predicted == row.label
    order = {name: index for index, name in enumerate(VARIANTS)}
    variants = {
        name: VariantOutcome(
            name,
            tuple(sorted(tally["versions"])),
            Proportion(tally["positive"], tally["n"]),
            Proportion(tally["correct"], tally["judged"]),
        )
        for name, tally in sorted(counts.items(), key=lambda item: order.get(item[0], len(order)))
    }
    return ExperimentReport(
        experiment_id, environment, positive_label, variants, served_requests, window or {}
    )
