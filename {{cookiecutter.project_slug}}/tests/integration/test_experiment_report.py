"""`experiment report` on a feedback store and prediction log written the way the service writes them,
its numbers recomputed here with scipy from the generated rows."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import yaml
from fixtures import install_fixture_project
from scipy import stats
from sqlalchemy import update

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import load_config
from {{ cookiecutter.package_name }}.io.feedback import SERVED_REQUESTS, FeedbackStore, ServedRequest

pytestmark = pytest.mark.integration

POSITIVE, NEGATIVE = ">50K", "<=50K"
EXPERIMENT = "staging-v1-vs-v2"
EARLIER_EXPERIMENT = "staging-v1-vs-v3"


def write_settings(root: Path, environment: str, strategy: str) -> None:
    document = {
        "rollout": {"strategy": strategy, "challenger_weight": 50},
        "serving": {
            "feedback_database_url": f"sqlite:///{root / 'feedback.db'}",
            "prediction_log": {"directory": str(root / "predictions")},
        },
    }
    (root / "environments").mkdir(exist_ok=True)
    (root / "environments" / f"{environment}.yaml").write_text(yaml.safe_dump(document))


def simulate(root: Path, environment: str) -> dict:
    """Served requests, labels and logged predictions; returns what the report should count."""
    generator = random.Random(8)
    store = FeedbackStore(f"sqlite:///{root / 'feedback.db'}")
    positive_rate = {"champion": 0.25, "challenger": 0.4}
    accuracy = {"champion": 0.8, "challenger": 0.7}
    version = {"champion": 1, "challenger": 2}
    served, labels, log = [], [], []
    truth: dict[str, dict[str, list[int]]] = {variant: {"positive": [], "correct": []} for variant in version}
    for number in range(600):
        variant = "challenger" if generator.random() < 0.5 else "champion"
        request_id = f"request-{number:04d}"
        rows = generator.randint(1, 3)
        served.append(ServedRequest(request_id, environment, variant, version[variant], EXPERIMENT, rows))
        for row in range(rows):
            label = POSITIVE if generator.random() < positive_rate[variant] else NEGATIVE
            right = generator.random() < accuracy[variant]
            predicted = label if right else (NEGATIVE if label == POSITIVE else POSITIVE)
            log.append(
                {
                    "request_id": request_id,
                    "row": row,
                    "variant": variant,
                    "shadow": False,
                    "environment": environment,
                    "label": predicted,
                }
            )
            if variant == "champion":
                # A shadow row of the same request: it must not count as the answer.
                log.append(
                    {
                        "request_id": request_id,
                        "row": row,
                        "variant": "challenger",
                        "shadow": True,
                        "environment": environment,
                        "label": label if not right else predicted,
                    }
                )
            if generator.random() < 0.3:
                continue  # no feedback for this row
            if generator.random() < 0.05:
                # A wrong label first, corrected by the one after it: the later label counts.
                labels.append((request_id, row, NEGATIVE if label == POSITIVE else POSITIVE))
            labels.append((request_id, row, label))
            truth[variant]["positive"].append(label == POSITIVE)
            truth[variant]["correct"].append(predicted == label)
    # An earlier experiment, and another environment: neither belongs to the report by default.
    served.append(ServedRequest("earlier-0", environment, "champion", 1, EARLIER_EXPERIMENT, 1))
    served.append(ServedRequest("elsewhere-0", "production", "champion", 1, EXPERIMENT, 1))
    labels += [("earlier-0", 0, POSITIVE), ("elsewhere-0", 0, POSITIVE)]
    store.record_requests(served)
    for start in range(0, len(labels), 200):
        store.add_feedback(labels[start : start + 200])
    earlier = datetime.now(UTC) - timedelta(days=3)
    with store.engine.begin() as connection:
        connection.execute(
            update(SERVED_REQUESTS)
            .where(SERVED_REQUESTS.c.request_id == "earlier-0")
            .values(served_at=earlier)
        )
    store.close()
    directory = root / "predictions"
    directory.mkdir()
    lines = b"".join(orjson.dumps(record) + b"\n" for record in log)
    (directory / "predictions-20260101T000000Z-1-0001.jsonl").write_bytes(lines)
    return {"truth": truth, "served": 600, "earlier": earlier}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("experiment")
    config_file = install_fixture_project(root)
    environment = load_config(config_file).environments[0]
    write_settings(root, environment, "ab")
    expected = simulate(root, environment)
    return config_file, environment, expected


def report(capsys, config_file: Path, environment: str, *options: str) -> tuple[int, str, str]:
    status = main(["--config", str(config_file), "experiment", "report", "--env", environment, *options])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_the_report_compares_the_variants_as_scipy_does(project, capsys) -> None:
    config_file, environment, expected = project
    status, out, _ = report(capsys, config_file, environment, "--json")
    assert status == 0
    document = json.loads(out)
    assert document["experiment_id"] == EXPERIMENT
    assert document["served_requests"] == expected["served"]
    counts = defaultdict(dict)
    for variant, truth in expected["truth"].items():
        for metric, key in (("positive", "positive_label_rate"), ("correct", "accuracy")):
            successes, trials = sum(truth[metric]), len(truth[metric])
            counts[metric][variant] = (successes, trials)
            found = document["variants"][variant][key]
            assert (found["successes"], found["trials"]) == (successes, trials)
            interval = stats.binomtest(successes, trials).proportion_ci(0.95, method="wilson")
            assert found["ci95"] == pytest.approx([interval.low, interval.high], abs=1e-12)
        assert document["variants"][variant]["n"] == len(truth["positive"])
    for metric, key in (("positive", "positive_label_rate"), ("correct", "accuracy")):
        (a_yes, a_n), (b_yes, b_n) = counts[metric]["champion"], counts[metric]["challenger"]
        chi2, p_value, _, _ = stats.chi2_contingency(
            [[a_yes, a_n - a_yes], [b_yes, b_n - b_yes]], correction=False
        )
        test = document["challenger_minus_champion"][key]
        assert test["z"] ** 2 == pytest.approx(chi2, rel=1e-9)
        assert test["p_value"] == pytest.approx(p_value, rel=1e-9)
        assert test["difference"] == pytest.approx(b_yes / b_n - a_yes / a_n)


def test_the_text_report_names_the_experiment_each_variant_and_the_test(project, capsys) -> None:
    config_file, environment, _ = project
    status, out, _ = report(capsys, config_file, environment)
    assert status == 0
    assert EXPERIMENT in out
    assert "champion" in out and "challenger" in out
    assert "z = " in out and "p = " in out


def test_a_window_or_an_experiment_id_selects_the_requests(project, capsys) -> None:
    config_file, environment, expected = project
    until = (expected["earlier"] + timedelta(hours=1)).isoformat()
    status, out, _ = report(capsys, config_file, environment, "--until", until, "--json")
    assert status == 0
    document = json.loads(out)
    assert document["experiment_id"] == EARLIER_EXPERIMENT
    assert document["variants"]["champion"]["n"] == 1
    status, out, _ = report(capsys, config_file, environment, "--experiment", EARLIER_EXPERIMENT, "--json")
    assert json.loads(out)["served_requests"] == 1


def test_an_environment_not_under_ab_is_refused_with_its_strategy(project, capsys, tmp_path: Path) -> None:
    config_file, environment, _ = project
    settings = config_file.parent / "environments" / f"{environment}.yaml"
    original = settings.read_text()
    try:
        write_settings(config_file.parent, environment, "canary")
        status, _, err = report(capsys, config_file, environment)
    finally:
        settings.write_text(original)
    assert status == 2
    assert "rollout.strategy is 'canary', not 'ab'" in err


def test_no_feedback_and_no_store_are_clear_errors(capsys, tmp_path: Path) -> None:
    config_file = install_fixture_project(tmp_path)
    environment = load_config(config_file).environments[0]
    write_settings(tmp_path, environment, "ab")
    status, _, err = report(capsys, config_file, environment)
    assert status == 2 and "no feedback store" in err
    store = FeedbackStore(f"sqlite:///{tmp_path / 'feedback.db'}")
    store.record_requests([ServedRequest("only", environment, "champion", 1, EXPERIMENT, 1)])
    store.close()
    status, _, err = report(capsys, config_file, environment)
    assert status == 2 and "no feedback yet" in err and "POST /feedback" in err
    status, _, err = report(capsys, config_file, environment, "--since", "yesterday")
    assert status == 2 and "--since 'yesterday'" in err
