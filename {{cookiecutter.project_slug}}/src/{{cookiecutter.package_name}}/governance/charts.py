"""PNG charts for the evidence bundle: SHAP beeswarm and bar, fairness metrics by group."""

from __future__ import annotations

import io
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from {{ cookiecutter.package_name }}.governance.explainability import ShapReport
from {{ cookiecutter.package_name }}.governance.fairness import FeatureAudit

MAX_DISPLAY = 12
FAIRNESS_METRICS = ("selection_rate", "true_positive_rate", "false_positive_rate")


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def _explanation(report: ShapReport):
    import shap

    numeric = report.data.apply(lambda column: _as_numbers(column))
    return shap.Explanation(
        values=report.values,
        base_values=np.full(len(report.values), report.base_value),
        data=numeric.to_numpy(dtype=float),
        feature_names=report.features,
    )


def _as_numbers(column):
    """Numbers colour the beeswarm; categories have no order, so they are drawn grey (NaN)."""
    import pandas as pd

    converted = pd.to_numeric(column, errors="coerce")
    return converted if converted.notna().any() else pd.Series(np.nan, index=column.index)


def shap_beeswarm_png(report: ShapReport) -> bytes:
    import shap

    with warnings.catch_warnings():
        # shap colours each dot by the feature's value; a categorical column has none (NaN), which
        # shap's colour scaling reports as an all-NaN slice. The dots are drawn grey, as intended.
        warnings.filterwarnings("ignore", message="All-NaN slice encountered", category=RuntimeWarning)
        shap.plots.beeswarm(_explanation(report), max_display=MAX_DISPLAY, show=False, plot_size=(8, 5))
    figure = plt.gcf()
    figure.suptitle(f"SHAP values per feature ({report.output}, {len(report.values)} rows)", fontsize=10)
    return _png(figure)


def shap_bar_png(report: ShapReport) -> bytes:
    importance = report.importance()[:MAX_DISPLAY][::-1]
    figure, axes = plt.subplots(figsize=(8, 0.4 * len(importance) + 1.2))
    axes.barh(
        [item["feature"] for item in importance],
        [item["mean_abs_shap"] for item in importance],
        color="#3b6fb6",
    )
    axes.set_xlabel(f"mean |SHAP value| ({report.output})")
    axes.set_title("Global feature importance")
    return _png(figure)


def fairness_png(audit: FeatureAudit) -> bytes:
    table = audit.by_group
    groups = list(table.index)
    positions = np.arange(len(groups))
    width = 0.8 / len(FAIRNESS_METRICS)
    figure, axes = plt.subplots(figsize=(max(6.0, 0.9 * len(groups) + 2), 4.2))
    for offset, metric in enumerate(FAIRNESS_METRICS):
        values = table[metric].astype(float).fillna(0.0)
        bars = axes.bar(positions + offset * width, values, width, label=metric.replace("_", " "))
        for bar, group in zip(bars, groups, strict=True):
            if group in audit.small_groups:
                bar.set_hatch("//")
                bar.set_alpha(0.5)
    axes.set_xticks(
        positions + width, [_short(group) for group in groups], rotation=30, ha="right", fontsize=8
    )
    axes.set_ylim(0, 1)
    axes.set_ylabel("rate")
    title = f"Fairness by {audit.feature}"
    if audit.small_groups:
        title += " (hatched: fewer than the minimum group size)"
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(figure)


def _short(label: str, limit: int = 28) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
