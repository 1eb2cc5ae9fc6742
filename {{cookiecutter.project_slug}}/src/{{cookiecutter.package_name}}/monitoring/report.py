"""The monitoring report: computed once from a window's statistics, then rendered as JSON, HTML,
Markdown and Prometheus gauges (code computes, templates render)."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from {{ cookiecutter.package_name }}.governance.fairness import INTERSECTION
from {{ cookiecutter.package_name }}.governance.rendering import format_rate, jinja_environment, markdown_cell
from {{ cookiecutter.package_name }}.monitoring import charts
from {{ cookiecutter.package_name }}.monitoring.drift import categorical_drift, numeric_drift, score_drift
from {{ cookiecutter.package_name }}.monitoring.live import latency_quantiles, live_fairness, live_performance
from {{ cookiecutter.package_name }}.monitoring.policy import MonitoringDecision
from {{ cookiecutter.package_name }}.monitoring.window import WindowStatistics

TEMPLATES = Path(__file__).parent / "templates"
LOG_FIELDS_WANTED = {
    "status": "the HTTP status of the request (a failed request: one record, row 0, no score)",
    "latency_ms": "the request's latency in milliseconds",
}


def is_positive(value: Any, positive_label: str) -> bool:
    """A label or prediction as 0/1: the models are trained on 1 = positive class."""
    return value is not None and (str(value) == "1" or value is True or str(value) == str(positive_label))


def drift_section(statistics: WindowStatistics) -> tuple[dict[str, dict], dict]:
    profile = statistics.profile
    features = {}
    for name in statistics.numeric:
        features[name] = numeric_drift(
            profile["features"][name],
            statistics.numeric_counts[name],
            statistics.sample_of(name),
            statistics.numeric_missing[name],
        )
    for name in statistics.categorical:
        features[name] = categorical_drift(profile["features"][name], dict(statistics.category_counts[name]))
    score = score_drift(profile["score"], statistics.score_counts, statistics.sample_of("__score__"))
    return features, score


def traffic_section(statistics: WindowStatistics) -> dict[str, dict]:
    traffic = {}
    for variant, figures in sorted(statistics.traffic.items()):
        traffic[variant] = {
            "requests": figures.requests,
            "rows": figures.rows,
            "errors": figures.errors,
            "error_rate": round(figures.errors / figures.with_status, 6) if figures.with_status else None,
            "latency_ms": latency_quantiles(np.asarray(figures.latencies)),
            "versions": {str(version): count for version, count in figures.versions.items()},
        }
    return traffic


def performance_section(labelled: pd.DataFrame, positive_label: str) -> dict[str, dict]:
    performance = {}
    for variant, rows in labelled.groupby("variant", sort=True):
        performance[str(variant)] = live_performance(
            rows["label"].map(lambda value: is_positive(value, positive_label)).to_numpy(dtype=int),
            rows["prediction"].map(lambda value: is_positive(value, positive_label)).to_numpy(dtype=int),
            rows["score"].to_numpy(dtype=float),
        )
    return performance


def fairness_section(
    labelled: pd.DataFrame, sensitive: list[str], positive_label: str, min_group_size: int
) -> dict:
    """Live fairness on the answered (not shadow) labelled rows: what the clients received."""
    answered = labelled[~labelled["shadow"].astype(bool)]
    columns = {name: answered[f"sensitive:{name}"].astype(str) for name in sensitive}
    return live_fairness(
        answered["label"].map(lambda value: is_positive(value, positive_label)).to_numpy(dtype=int),
        answered["prediction"].map(lambda value: is_positive(value, positive_label)).to_numpy(dtype=int),
        pd.DataFrame(columns).reset_index(drop=True),
        min_group_size,
    )


def comparison_section(traffic: dict, performance: dict, statistics: WindowStatistics) -> dict | None:
    """Challenger against champion on the same window; None without a challenger."""
    if "challenger" not in traffic and statistics.shadow.rows == 0:
        return None
    champion = traffic.get("champion", {})
    challenger = traffic.get("challenger", {})
    return {
        "champion_error_rate": champion.get("error_rate"),
        "challenger_error_rate": challenger.get("error_rate"),
        "champion_p99_ms": champion.get("latency_ms", {}).get("p99"),
        "challenger_p99_ms": challenger.get("latency_ms", {}).get("p99"),
        "shadow_rows": statistics.shadow.rows,
        "shadow_pairs": statistics.pairs,
        "agreement_rate": round(statistics.agreements / statistics.pairs, 6) if statistics.pairs else None,
        "champion_accuracy": performance.get("champion", {}).get("accuracy"),
        "challenger_accuracy": performance.get("challenger", {}).get("accuracy"),
    }


def build_report(
    statistics: WindowStatistics,
    environment: str,
    window: dict,
    champion: dict,
    rollout: dict,
    positive_label: str,
    min_group_size: int,
) -> dict:
    """Every figure of the report except the decision, which `policy_input` feeds to the rules."""
    features, score = drift_section(statistics)
    traffic = traffic_section(statistics)
    labelled = statistics.labelled_frame()
    performance = performance_section(labelled, positive_label)
    fairness = fairness_section(labelled, statistics.sensitive, positive_label, min_group_size)
    if statistics.shadow.rows:
        traffic["challenger (shadow)"] = {
            "requests": statistics.shadow.requests,
            "rows": statistics.shadow.rows,
            "errors": None,
            "error_rate": None,
            "latency_ms": latency_quantiles(np.asarray([])),
            "versions": {str(version): count for version, count in statistics.shadow.versions.items()},
        }
    recorded = {
        "status": any(item["error_rate"] is not None for item in traffic.values()),
        "latency_ms": any(item["latency_ms"]["p99"] is not None for item in traffic.values()),
    }
    missing_fields = [f"{name}: {why}" for name, why in LOG_FIELDS_WANTED.items() if not recorded[name]]
    return {
        "environment": environment,
        "window": {
            **window,
            "records": statistics.records,
            "first_record": statistics.first_time,
            "last_record": statistics.last_time,
            "invalid_lines": statistics.invalid_lines,
            "drift_sample_rows": len(statistics.sample),
            "personal_features_not_measured": statistics.unmeasured,
        },
        "champion": champion,
        "rollout": rollout,
        "features": features,
        "score": score,
        "performance": performance,
        "fairness": fairness,
        "traffic": traffic,
        "comparison": comparison_section(traffic, performance, statistics),
        "log_fields_missing": missing_fields,
    }


def policy_input(document: dict) -> dict:
    """What monitoring.rego reads as `input`: the statistics the rules judge, without the bins."""
    keys = ("kind", "rows", "psi", "ks_p_value", "chi2_p_value", "unseen_share")
    fairness = {
        item["feature"]: {
            "rows": document["fairness"].get("rows_audited", 0),
            "demographic_parity_difference": item.get("demographic_parity_difference"),
            "equalized_odds_difference": item.get("equalized_odds_difference"),
            "small_groups": item.get("small_groups", []),
        }
        for item in document["fairness"].get("features", [])
        if item["feature"] != INTERSECTION
    }
    return {
        "environment": document["environment"],
        "features": {
            name: {key: value for key, value in item.items() if key in keys}
            for name, item in document["features"].items()
        },
        "score": {key: value for key, value in document["score"].items() if key in keys},
        "performance": document["performance"],
        "fairness": fairness,
        "traffic": {
            variant: figures
            for variant, figures in document["traffic"].items()
            if variant in {"champion", "challenger"}
        },
        "rollout": document["rollout"],
    }


def attach_decision(document: dict, decision: MonitoringDecision) -> dict:
    """The report with each feature's `drifted`, the score's, and the decision."""
    for name, item in document["features"].items():
        item["drifted"] = decision.drifted.get(name, False)
    document["score"]["drifted"] = decision.score_drifted
    document["decision"] = decision.to_dict()
    return document


# -- rendering ---------------------------------------------------------------------------------------


def format_share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


@cache
def _environment(autoescape: bool) -> jinja2.Environment:
    filters = {"rate": format_rate, "share": format_share, "cell": markdown_cell}
    return jinja_environment(TEMPLATES, autoescape, filters)


def render_markdown(document: dict) -> str:
    return _environment(False).get_template("summary.md.j2").render(report=document)


def render_html(document: dict) -> str:
    feature_charts = {name: charts.feature_chart(name, item) for name, item in document["features"].items()}
    score_item = {**document["score"], "kind": "numeric"}
    return (
        _environment(True)
        .get_template("report.html.j2")
        .render(
            report=document,
            feature_charts={name: jinja2.filters.Markup(svg) for name, svg in feature_charts.items()},
            score_chart=jinja2.filters.Markup(charts.feature_chart("score", score_item)),
            latency_chart=jinja2.filters.Markup(charts.latency_chart(document["traffic"]) or ""),
        )
    )


def write_metrics(document: dict, path: Path) -> None:
    """The headline figures as Prometheus gauges in a node-exporter textfile."""
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()
    environment = document["environment"]

    def gauge(name: str, help_text: str, labels: list[str]) -> Gauge:
        return Gauge(name, help_text, ["environment", *labels], registry=registry)

    def set_value(metric: Gauge, value: Any, *labels: str) -> None:
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            metric.labels(environment, *labels).set(float(value))

    psi = gauge(
        "monitoring_feature_psi", "PSI of a feature against the champion's reference profile", ["feature"]
    )
    drifted = gauge(
        "monitoring_feature_drifted", "1 when the monitoring policy judged the feature drifted", ["feature"]
    )
    for name, item in document["features"].items():
        set_value(psi, item["psi"], name)
        set_value(drifted, int(item["drifted"]), name)
    set_value(
        gauge("monitoring_score_psi", "PSI of the champion's scores against its held-out scores", []),
        document["score"]["psi"],
    )
    set_value(
        gauge("monitoring_score_drifted", "1 when the score drifted", []), int(document["score"]["drifted"])
    )
    metric = gauge("monitoring_live_metric", "live metric from the labels received", ["variant", "metric"])
    labels = gauge("monitoring_labels", "labels received and joined to logged rows", ["variant"])
    for variant, figures in document["performance"].items():
        set_value(labels, figures["labels"], variant)
        for name in ("accuracy", "balanced_accuracy", "roc_auc"):
            set_value(metric, figures[name], variant, name)
    errors = gauge("monitoring_error_ratio", "share of requests answered with a 5xx status", ["variant"])
    latency = gauge("monitoring_latency_seconds", "request latency quantile", ["variant", "quantile"])
    requests = gauge("monitoring_requests", "requests in the window", ["variant"])
    for variant, figures in document["traffic"].items():
        set_value(requests, figures["requests"], variant)
        set_value(errors, figures["error_rate"], variant)
        for name, quantile in (("p50", "0.5"), ("p90", "0.9"), ("p99", "0.99")):
            value = figures["latency_ms"][name]
            set_value(latency, None if value is None else value / 1000, variant, quantile)
    gaps = gauge(
        "monitoring_fairness_difference",
        "live Fairlearn difference per sensitive feature",
        ["feature", "kind"],
    )
    for item in document["fairness"].get("features", []):
        if item["feature"] != INTERSECTION:
            for kind in ("demographic_parity", "equalized_odds"):
                set_value(gaps, item.get(f"{kind}_difference"), item["feature"], kind)
    action = gauge("monitoring_decision", "1 for the monitoring policy's action", ["action"])
    for name in ("ok", "warn", "retrain", "advance", "hold", "rollback"):
        set_value(action, int(document["decision"]["action"] == name), name)
    write_to_textfile(str(path), registry)
