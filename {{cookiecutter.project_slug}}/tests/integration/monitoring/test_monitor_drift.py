"""Drift through `monitor`: rows of the Adult test split answered by the real service, whose log is
judged against the champion's reference profile from its evidence bundle. Each stream is served and
logged in a directory of its own and monitored alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
from monitoring_support import Workspace, adult_test_rows, serve_rows, write_environment
from scipy.stats import ks_2samp

from {{ cookiecutter.package_name }}.commands.evidence import bundle_path
from {{ cookiecutter.package_name }}.commands.monitoring import monitor

pytestmark = pytest.mark.integration

STREAMS = 5
STREAM_ROWS = 2000
# Over 5 unshifted streams x 13 features, at most this many (feature, stream) flags: 3% false positives.
MAX_FALSE_FLAGS = 2


@pytest.fixture(scope="module")
def environment(workspace: Workspace) -> str:
    return workspace.config.environments[0]


def served_and_monitored(workspace: Workspace, environment: str, rows, name: str, out) -> dict:
    """`rows` sent to the service of an environment whose log is `logs/<name>`, then that log monitored."""
    write_environment(workspace.config, environment, f"logs/{name}")
    serve_rows(workspace, environment, rows)
    result = monitor(workspace.config, environment, out=out)
    return {"document": result.document, "rows": rows, "directory": result.directory}


@pytest.fixture(scope="module")
def unshifted_reports(workspace: Workspace, environment: str, tmp_path_factory) -> list[dict]:
    """STREAMS seeded samples of the test split, each served and monitored alone."""
    features, _ = adult_test_rows(workspace.config)
    reports = []
    for seed in range(STREAMS):
        rows = features.sample(STREAM_ROWS, random_state=seed, replace=False).reset_index(drop=True)
        out = tmp_path_factory.mktemp(f"unshifted-{seed}")
        reports.append(served_and_monitored(workspace, environment, rows, f"drift-{seed}", out)["document"])
    return reports


def test_an_unshifted_stream_flags_no_feature(unshifted_reports: list[dict]) -> None:
    first = unshifted_reports[0]
    assert first["window"]["records"] == STREAM_ROWS
    assert [name for name, item in first["features"].items() if item["drifted"]] == []
    assert first["score"]["drifted"] is False
    assert first["decision"]["action"] == "ok"


def test_unshifted_streams_keep_the_false_positive_rate_bounded(unshifted_reports: list[dict]) -> None:
    flags = sum(item["drifted"] for report in unshifted_reports for item in report["features"].values())
    assert flags <= MAX_FALSE_FLAGS
    assert not any(report["score"]["drifted"] for report in unshifted_reports)


@pytest.fixture(scope="module")
def shifted(workspace: Workspace, environment: str, tmp_path_factory) -> dict:
    features, _ = adult_test_rows(workspace.config)
    rows = features.sample(STREAM_ROWS, random_state=100, replace=False).reset_index(drop=True)
    rows["age"] = rows["age"] + 15
    # whole hours, as a client sends an integer column
    rows["hours-per-week"] = (rows["hours-per-week"] * 1.5).round().astype(int)
    out = tmp_path_factory.mktemp("shifted")
    return served_and_monitored(workspace, environment, rows, "drift-shifted", out)


def test_age_and_hours_shift_flags_exactly_those_two_and_the_score(shifted: dict) -> None:
    document = shifted["document"]
    assert {name for name, item in document["features"].items() if item["drifted"]} == {
        "age",
        "hours-per-week",
    }
    assert document["score"]["drifted"] is True
    assert document["decision"]["action"] == "retrain"
    environment = document["environment"]
    psi = document["features"]["age"]["psi"]
    assert any(
        reason.startswith(f"PSI of age is {psi:.3f}, limit ") and f" in {environment} " in reason
        for reason in document["decision"]["reasons"]
    )


def test_drift_statistics_match_an_independent_computation(workspace: Workspace, shifted: dict) -> None:
    """PSI recomputed from the profile's bins, KS recomputed with scipy on the same values."""
    profile = json.loads((bundle_path(workspace.config, workspace.champion) / "profile.json").read_text())
    reference = profile["features"]["age"]
    live = shifted["rows"]["age"].to_numpy(dtype=float)
    counts = np.histogram(live, bins=[-np.inf, *np.nextafter(reference["edges"], np.inf), np.inf])[0]
    expected = (np.asarray(reference["counts"]) + 0.5) / (sum(reference["counts"]) + 0.5 * len(counts))
    actual = (counts + 0.5) / (counts.sum() + 0.5 * len(counts))
    statistics = shifted["document"]["features"]["age"]
    assert statistics["live_counts"] == counts.tolist()
    assert statistics["psi"] == pytest.approx(
        np.sum((actual - expected) * np.log(actual / expected)), abs=1e-6
    )
    # the window holds fewer rows than the sample size: the KS sample is every live value
    assert statistics["ks_p_value"] == pytest.approx(
        ks_2samp(reference["sample"], live).pvalue, rel=1e-6, abs=1e-8
    )


def test_the_report_is_written_as_json_html_markdown_and_gauges(shifted: dict) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    directory = shifted["directory"]
    document = json.loads((directory / "report.json").read_text())
    assert document["decision"]["action"] == shifted["document"]["decision"]["action"]
    assert "PSI of age is" in (directory / "summary.md").read_text()
    gauges = {
        sample.labels["feature"]: sample.value
        for family in text_string_to_metric_families((directory / "metrics.prom").read_text())
        for sample in family.samples
        if sample.name == "monitoring_feature_psi"
    }
    assert gauges == pytest.approx({name: item["psi"] for name, item in document["features"].items()})
