"""Canary, shadow and A/B routing as release.yaml says, observed over real HTTP."""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict

import pandas as pd
import pytest
from serving_support import Workspace

from {{ cookiecutter.package_name }}.io.prediction_log import read_prediction_log

pytestmark = pytest.mark.integration

CANARY_WEIGHT = 20


def within_binomial_bound(successes: int, trials: int, probability: float, sigmas: float = 4.5) -> bool:
    """|k - np| within `sigmas` standard deviations: fails by chance about once in 150,000 runs."""
    spread = math.sqrt(trials * probability * (1 - probability))
    return abs(successes - trials * probability) <= sigmas * spread


def wait_for_log_rows(directory, expected: int, timeout: float = 10) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        rows = read_prediction_log(directory)
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


@pytest.fixture(scope="module")
def canary(workspace: Workspace, service_factory):
    return service_factory(workspace.release("canary", CANARY_WEIGHT))


def test_canary_gives_the_challenger_its_weight_of_requests(workspace: Workspace, canary) -> None:
    trials = 2000
    row = workspace.rows[0]
    answers = canary.send_many([("/predict", {"instances": [row]}, {}) for _ in range(trials)])
    assert all(answer is not None and answer.status == 200 for answer in answers)
    variants = Counter(answer.json()["predictions"][0]["variant"] for answer in answers)
    assert set(variants) == {"champion", "challenger"}
    assert within_binomial_bound(variants["challenger"], trials, CANARY_WEIGHT / 100), variants
    versions = {
        item["variant"]: item["model_version"] for answer in answers for item in answer.json()["predictions"]
    }
    assert versions == {"champion": workspace.champion, "challenger": workspace.challenger}


def test_a_routing_key_always_gets_the_same_variant(workspace: Workspace, canary) -> None:
    keys = [f"customer-{number}" for number in range(300)]
    requests = [("/predict", {"instances": workspace.rows[:1]}, {"X-Routing-Key": key}) for key in keys * 3]
    answers = canary.send_many(requests)
    seen: dict[str, set[str]] = defaultdict(set)
    for (_, _, headers), answer in zip(requests, answers, strict=True):
        seen[headers["X-Routing-Key"]].add(answer.json()["predictions"][0]["variant"])
    assert all(len(variants) == 1 for variants in seen.values())
    challenger_keys = sum(variants == {"challenger"} for variants in seen.values())
    assert within_binomial_bound(challenger_keys, len(keys), CANARY_WEIGHT / 100)


def test_the_challenger_answers_with_its_own_scores(workspace: Workspace, canary) -> None:
    rows = workspace.rows[:10]
    answers = canary.send_many([("/predict", {"instances": rows}, {}) for _ in range(40)])
    expected = {
        "champion": workspace.champion_model.predict_proba(pd.DataFrame(rows))[:, 1],
        "challenger": workspace.challenger_model.predict_proba(pd.DataFrame(rows))[:, 1],
    }
    for answer in answers:
        predictions = answer.json()["predictions"]
        variant = predictions[0]["variant"]
        assert [item["score"] for item in predictions] == pytest.approx(list(expected[variant]), rel=1e-9)


@pytest.fixture(scope="module")
def shadow(workspace: Workspace, service_factory):
    return service_factory(workspace.release("shadow"))


def test_shadow_answers_with_the_champion_and_logs_both(workspace: Workspace, shadow) -> None:
    rows = workspace.rows[:100]
    frame = pd.DataFrame(rows)
    champion_labels = workspace.champion_model.predict(frame).tolist()
    challenger_labels = workspace.challenger_model.predict(frame).tolist()
    disagreements = sum(a != b for a, b in zip(champion_labels, challenger_labels, strict=True))
    assert disagreements > 0, "the two fixture models should disagree on some rows"

    answers = shadow.send_many([("/predict", {"instances": rows[i : i + 10]}, {}) for i in range(0, 100, 10)])
    answered = [item for answer in answers for item in answer.json()["predictions"]]
    assert [item["label"] for item in answered] == champion_labels
    assert {item["variant"] for item in answered} == {"champion"}

    logged = wait_for_log_rows(shadow.log_directory, 200)
    by_variant = Counter((row["variant"], row["shadow"]) for row in logged)
    assert by_variant == {("champion", False): 100, ("challenger", True): 100}
    request_ids = {answer.json()["request_id"] for answer in answers}
    assert {row["request_id"] for row in logged} == request_ids
    shadow_labels = {(row["request_id"], row["row"]): row["label"] for row in logged if row["shadow"]}
    assert sorted(shadow_labels.values()) == sorted(challenger_labels)
    assert shadow.metrics()["shadow_disagreements_total"] == disagreements


@pytest.fixture(scope="module")
def experiment(workspace: Workspace, service_factory):
    return service_factory(workspace.release("ab", 50), {"rollout": {"experiment_id": "price-test-1"}})


def test_ab_assigns_by_routing_key_and_records_the_experiment(workspace: Workspace, experiment) -> None:
    keys = [f"user-{number}" for number in range(200)]
    requests = [("/predict", {"instances": workspace.rows[:1]}, {"X-Routing-Key": key}) for key in keys * 2]
    answers = experiment.send_many(requests)
    seen: dict[str, set[str]] = defaultdict(set)
    for (_, _, headers), answer in zip(requests, answers, strict=True):
        seen[headers["X-Routing-Key"]].add(answer.json()["predictions"][0]["variant"])
    assert all(len(variants) == 1 for variants in seen.values())
    assert within_binomial_bound(sum(v == {"challenger"} for v in seen.values()), len(keys), 0.5)
    assert experiment.get("/info").json()["experiment_id"] == "price-test-1"
    logged = wait_for_log_rows(experiment.log_directory, len(requests))
    assert {row["experiment_id"] for row in logged} == {"price-test-1"}
