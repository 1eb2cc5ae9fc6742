"""OpenFeature flags in the running service: kill switch, fractional challenger share, SHAP answers.

Each service is a real `serve` process reading a real flagd file; the tests edit the file while it
runs and poll until the change applies, within a bounded wait.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from serving_support import Service, Workspace

pytestmark = pytest.mark.integration

POLL_INTERVAL_S = 0.5  # the provider's default poll of the file
APPLY_TIMEOUT_S = 15
FLAG_SHARE = 25


def flag_document(
    challenger_enabled: bool = True, explain: bool = False, challenger_share: int | None = None
) -> dict:
    flags = {
        "challenger-enabled": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on" if challenger_enabled else "off",
        },
        "explain-predictions": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on" if explain else "off",
        },
    }
    if challenger_share is not None:
        flags["challenger-weight"] = {
            "state": "ENABLED",
            "variants": {"champion": 0, "challenger": 100},
            "defaultVariant": "champion",
            "targeting": {
                "fractional": [["challenger", challenger_share], ["champion", 100 - challenger_share]]
            },
        }
    return {"flags": flags}


def write_flags(path: Path, document: dict) -> Path:
    """Write the file and move its modification time forward, as a checkout of a new commit does."""
    path.write_text(json.dumps(document), encoding="utf-8")
    later = time.time() + 2
    os.utime(path, (later, later))
    return path


def within_binomial_bound(successes: int, trials: int, probability: float, sigmas: float = 4.5) -> bool:
    spread = math.sqrt(trials * probability * (1 - probability))
    return abs(successes - trials * probability) <= sigmas * spread


def variants_of(service: Service, workspace: Workspace, keys: list[str], path: str = "/predict") -> list[str]:
    requests = [
        (path, {"instances": [workspace.rows[index % len(workspace.rows)]]}, {"X-Routing-Key": key})
        for index, key in enumerate(keys)
    ]
    answers = service.send_many(requests)
    assert all(answer is not None and answer.status == 200 for answer in answers)
    return [answer.json()["predictions"][0]["variant"] for answer in answers]


def shap_is_loaded(service: Service) -> bool:
    """Whether the serving process has imported shap: `import shap` always maps its compiled extension."""
    maps = Path(f"/proc/{service.process.pid}/maps").read_text()
    return f"{os.sep}shap{os.sep}" in maps


@pytest.fixture(scope="module")
def flag_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("flags")


@pytest.fixture(scope="module")
def kill_switch(workspace: Workspace, service_factory, flag_dir: Path):
    path = write_flags(flag_dir / "kill.flagd.json", flag_document())
    # A fresh interpreter: the warm server's forks have shap imported already.
    return path, service_factory(workspace.release("canary", 50), {"flags": str(path)}, fresh=True)


def test_the_kill_switch_reroutes_to_the_champion_without_a_restart(
    workspace: Workspace, kill_switch
) -> None:
    path, service = kill_switch
    pid = service.process.pid
    keys = [f"kill-{number}" for number in range(200)]
    assert "challenger" in variants_of(service, workspace, keys)
    write_flags(path, flag_document(challenger_enabled=False))
    deadline = time.monotonic() + APPLY_TIMEOUT_S
    while service.get("/info").json()["flags"]["values"]["challenger_enabled"]:
        assert time.monotonic() < deadline, "the kill switch did not apply"
        time.sleep(0.05)
    before = service.metrics()
    assert set(variants_of(service, workspace, keys)) == {"champion"}
    after = service.metrics()
    # The metrics count what was sent, under the variant that answered.
    for variant, sent in (("champion", len(keys)), ("challenger", 0)):
        sample = "http_requests_total{" + f'endpoint="/predict",status="200",variant="{variant}"' + "}"
        assert after.get(sample, 0) - before.get(sample, 0) == sent, sample
    write_flags(path, flag_document(challenger_enabled=True))
    deadline = time.monotonic() + APPLY_TIMEOUT_S
    while "challenger" not in variants_of(service, workspace, keys[:50]):
        assert time.monotonic() < deadline, "re-enabling the challenger did not apply"
        time.sleep(0.05)
    assert service.process.pid == pid and service.process.poll() is None


def test_info_reports_the_flag_file_and_the_values_in_force(kill_switch) -> None:
    path, service = kill_switch
    flags = service.get("/info").json()["flags"]
    assert flags["file"] == str(path) and flags["watching"] is True
    assert set(flags["values"]) == {"challenger_enabled", "challenger_weight", "explain_predictions"}
    assert flags["values"]["explain_predictions"] is False


def test_a_fractional_flag_gives_the_challenger_its_share_sticky_per_key(
    workspace: Workspace, service_factory, flag_dir: Path
) -> None:
    path = write_flags(flag_dir / "share.flagd.json", flag_document(challenger_share=FLAG_SHARE))
    # release.yaml says 0%: every challenger answer below comes from the flag.
    service = service_factory(workspace.release("canary", 0), {"flags": str(path)})
    keys = [f"customer-{number}" for number in range(2000)]
    first = variants_of(service, workspace, keys)
    challenger = first.count("challenger")
    assert within_binomial_bound(challenger, len(keys), FLAG_SHARE / 100), challenger
    assert variants_of(service, workspace, keys[:300]) == first[:300]
    assert service.get("/info").json()["challenger_weight"] == 0


def raw_output(model, frame: pd.DataFrame, output: str) -> np.ndarray:
    """What the champion's SHAP values add up to, computed from the pipeline itself."""
    if output == "log-odds":
        return model.decision_function(frame)
    return model.predict_proba(frame)[:, 1]


def wait_for_flag(service: Service, name: str, value: object) -> None:
    deadline = time.monotonic() + APPLY_TIMEOUT_S
    while service.get("/info").json()["flags"]["values"][name] != value:
        assert time.monotonic() < deadline, f"{name} = {value!r} did not apply"
        time.sleep(0.05)


def test_the_explain_flag_adds_the_champions_contributions_and_only_then_loads_shap(
    workspace: Workspace, kill_switch
) -> None:
    path, service = kill_switch
    rows = workspace.rows[:20]
    write_flags(path, flag_document())
    wait_for_flag(service, "explain_predictions", False)
    answer = service.post("/predict", {"instances": rows[:5]})
    assert answer.status == 200
    document = answer.json()
    assert "explanation" not in document
    assert all("contributions" not in prediction for prediction in document["predictions"])
    assert not shap_is_loaded(service)

    write_flags(path, flag_document(explain=True))
    wait_for_flag(service, "explain_predictions", True)
    frame = pd.DataFrame(rows)[workspace.champion_model.feature_names_in_]
    seen = set()
    # One request per routing key until each variant of the 50 % canary has answered once: the
    # champion's answers are explained, the challenger's are not.
    for number in range(200):
        if seen == {"champion", "challenger"}:
            break
        answer = service.post("/predict", {"instances": rows}, {"X-Routing-Key": f"explain-{number}"})
        assert answer.status == 200, answer.body
        document = answer.json()
        (variant,) = {prediction["variant"] for prediction in document["predictions"]}
        seen.add(variant)
        if variant == "challenger":
            assert "explanation" not in document
            assert all("contributions" not in prediction for prediction in document["predictions"])
            continue
        explanation = document["explanation"]
        assert explanation["explainer"] in {"tree", "linear"}
        contributions = [prediction["contributions"] for prediction in document["predictions"]]
        assert all(set(row) <= set(rows[0]) and row for row in contributions)
        expected = raw_output(workspace.champion_model, frame, explanation["output"])
        totals = np.array([explanation["base_value"] + sum(row.values()) for row in contributions])
        np.testing.assert_allclose(totals, expected, atol=1e-6)
    assert seen == {"champion", "challenger"}
    assert shap_is_loaded(service)
    write_flags(path, flag_document())
    wait_for_flag(service, "explain_predictions", False)
