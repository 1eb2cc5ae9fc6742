"""The promotion gate, run on the installed policy pack with purpose-built candidates.

Candidates are built from the pack's own limits, so these tests hold for any pack; the last test pins
what the shipped `standard` and `strict` packs decide for one realistic candidate.
"""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from {{ cookiecutter.package_name }}.governance.policy import Policy, PolicyError, evaluate, load_policy

pytestmark = pytest.mark.unit

POLICY_DIR = Path(__file__).resolve().parents[3] / "policies"
FEATURES = ("sex", "race")


def copy_pack(target: Path) -> Path:
    """A copy of the installed pack whose strictest entry is named `production`, as the tests expect.

    Generation moves the pack's production limits to the project's last environment when that one has
    another name; the copy moves them back, so the same tests hold for every project.
    """
    directory = Path(shutil.copytree(POLICY_DIR, target))
    thresholds_path = directory / "thresholds.yaml"
    thresholds = yaml.safe_load(thresholds_path.read_text())
    environments = thresholds.get("environments") or {}
    if "production" not in environments and len(environments) == 1:
        thresholds["environments"] = {"production": next(iter(environments.values()))}
        thresholds_path.write_text(yaml.safe_dump(thresholds))
    return directory


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    return load_policy(copy_pack(tmp_path_factory.mktemp("pack") / "policies"))


@pytest.fixture
def pack_copy(tmp_path: Path) -> Path:
    """A copy of the installed pack that a test may break."""
    return copy_pack(tmp_path / "policies")


def limits_for(policy: Policy, environment: str) -> dict:
    return evaluate(policy, {"environment": environment}).limits


def passing_candidate(limits: dict, environment: str) -> dict:
    """A first release that clears every limit of `limits` with a margin."""
    metrics = {name: 0.9 for name in limits["max_regression"]}
    metrics |= {name: round(min(minimum + 0.05, 0.99), 3) for name, minimum in limits["min_metrics"].items()}
    report = {f"{kind}_difference": limit / 2 for kind, limit in limits["max_fairness_difference"].items()}
    report |= {f"{kind}_ratio": (minimum + 1) / 2 for kind, minimum in limits["min_fairness_ratio"].items()}
    return {
        "environment": environment,
        "model": {"name": "income-classifier", "version": 3},
        "metrics": metrics,
        "champion": None,
        "fairness": {feature: dict(report, small_groups=[]) for feature in FEATURES},
        "model_card": {"demo_text": [], "demo_data": False},
        "evidence": {"missing": [], "tampered": []},
    }


@pytest.fixture
def production(policy: Policy) -> tuple[dict, dict]:
    """Production's limits and a candidate that passes them."""
    limits = limits_for(policy, "production")
    return limits, passing_candidate(limits, "production")


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_gate_allows_a_candidate_within_every_limit(policy: Policy, environment: str) -> None:
    decision = evaluate(policy, passing_candidate(limits_for(policy, environment), environment))
    assert decision.allow, decision.reasons
    assert decision.reasons == []
    assert decision.environment == environment


def test_gate_denies_when_a_metric_is_below_its_minimum(policy: Policy, production) -> None:
    limits, candidate = production
    minimum = limits["min_metrics"]["roc_auc"]
    candidate["metrics"]["roc_auc"] = round(minimum - 0.069, 3)
    decision = evaluate(policy, candidate)
    assert not decision.allow
    value = candidate["metrics"]["roc_auc"]
    assert decision.reasons == [f"roc_auc is {value:.3f}, minimum {minimum:.3f} in production"]


def test_gate_denies_when_a_metric_is_missing(policy: Policy, production) -> None:
    limits, candidate = production
    del candidate["metrics"]["balanced_accuracy"]
    minimum = limits["min_metrics"]["balanced_accuracy"]
    decision = evaluate(policy, candidate)
    assert decision.reasons == [f"balanced_accuracy is missing, minimum {minimum:.3f} in production"]


def test_gate_denies_when_a_fairness_difference_exceeds_its_limit(policy: Policy, production) -> None:
    limits, candidate = production
    limit = limits["max_fairness_difference"]["equalized_odds"]
    candidate["fairness"]["sex"]["equalized_odds_difference"] = round(limit + 0.01, 3)
    decision = evaluate(policy, candidate)
    assert not decision.allow
    assert decision.reasons == [
        f"equalized odds difference for sex is {limit + 0.01:.3f}, limit {limit:.3f} in production"
    ]


def test_gate_denies_when_a_fairness_ratio_is_below_its_minimum(policy: Policy, production) -> None:
    limits, candidate = production
    minimum = limits["min_fairness_ratio"]["demographic_parity"]
    candidate["fairness"]["race"]["demographic_parity_ratio"] = round(minimum - 0.01, 3)
    decision = evaluate(policy, candidate)
    assert not decision.allow
    assert decision.reasons == [
        f"demographic parity ratio for race is {minimum - 0.01:.3f}, minimum {minimum:.3f} in production"
    ]


def test_gate_denies_a_fairness_value_that_cannot_be_computed(policy: Policy, production) -> None:
    limits, candidate = production
    candidate["fairness"]["race"]["demographic_parity_ratio"] = None
    candidate["fairness"]["sex"]["equalized_odds_difference"] = float("nan")
    decision = evaluate(policy, candidate)
    ratio_minimum = limits["min_fairness_ratio"]["demographic_parity"]
    difference_limit = limits["max_fairness_difference"]["equalized_odds"]
    assert decision.reasons == [
        f"demographic parity ratio for race cannot be computed (the evidence holds null), "
        f"minimum {ratio_minimum:.3f} in production",
        f"equalized odds difference for sex cannot be computed (the evidence holds null), "
        f"limit {difference_limit:.3f} in production",
    ]


def test_production_limits_are_stricter_than_the_default_used_by_staging(policy: Policy) -> None:
    staging, production = limits_for(policy, "staging"), limits_for(policy, "production")
    assert staging == policy.thresholds["default"]
    minimum_in_staging = staging["min_metrics"]["roc_auc"]
    minimum_in_production = production["min_metrics"]["roc_auc"]
    assert minimum_in_staging < minimum_in_production, "this pack does not tighten roc_auc for production"
    candidate = passing_candidate(production, "staging")
    candidate["metrics"]["roc_auc"] = round((minimum_in_staging + minimum_in_production) / 2, 3)

    assert evaluate(policy, candidate).allow
    decision = evaluate(policy, candidate | {"environment": "production"})
    assert decision.reasons == [
        f"roc_auc is {candidate['metrics']['roc_auc']:.3f}, minimum {minimum_in_production:.3f} in production"
    ]


def test_environment_section_replaces_the_default_section_whole(pack_copy: Path) -> None:
    thresholds_path = pack_copy / "thresholds.yaml"
    thresholds = yaml.safe_load(thresholds_path.read_text())
    thresholds["environments"]["production"] = {"min_metrics": {"roc_auc": 0.5}}
    thresholds_path.write_text(yaml.safe_dump(thresholds))
    policy = load_policy(pack_copy)
    candidate = passing_candidate(thresholds["default"], "production")
    del candidate["metrics"]["balanced_accuracy"]
    candidate["metrics"]["roc_auc"] = 0.6

    decision = evaluate(policy, candidate)
    assert decision.limits["min_metrics"] == {"roc_auc": 0.5}
    assert decision.limits["max_regression"] == thresholds["default"]["max_regression"]
    assert decision.allow, decision.reasons
    assert not evaluate(policy, candidate | {"environment": "staging"}).allow


def test_environment_without_an_entry_uses_the_default_limits(policy: Policy) -> None:
    decision = evaluate(policy, passing_candidate(policy.thresholds["default"], "qa"))
    assert decision.allow, decision.reasons
    assert decision.limits == policy.thresholds["default"]
    assert "qa has no entry in thresholds.yaml: default limits apply" in decision.notes


def test_first_release_passes_the_regression_check_with_a_note(policy: Policy, production) -> None:
    _, candidate = production
    decision = evaluate(policy, candidate)
    assert decision.allow
    assert "no champion in production yet: first release, regression check passes" in decision.notes


def test_regression_within_tolerance_is_allowed(policy: Policy, production) -> None:
    limits, candidate = production
    metrics, tolerances = candidate["metrics"], limits["max_regression"]
    champion_metrics = {name: metrics[name] + tolerance / 2 for name, tolerance in tolerances.items()}
    candidate["champion"] = {"version": 2, "metrics": champion_metrics}
    decision = evaluate(policy, candidate)
    assert decision.allow, decision.reasons
    assert not any("first release" in note for note in decision.notes)


def test_regression_beyond_tolerance_is_denied(policy: Policy, production) -> None:
    limits, candidate = production
    tolerance = limits["max_regression"]["roc_auc"]
    candidate["metrics"]["roc_auc"] = value = round(max(limits["min_metrics"]["roc_auc"], 0.881), 3)
    previous = round(value + tolerance + 0.031, 3)
    champion_metrics = {name: candidate["metrics"][name] for name in limits["max_regression"]}
    candidate["champion"] = {"version": 2, "metrics": champion_metrics | {"roc_auc": previous}}
    decision = evaluate(policy, candidate)
    assert not decision.allow
    assert decision.reasons == [
        f"roc_auc regressed by {previous - value:.3f} against champion version 2 "
        f"({previous:.3f} -> {value:.3f}), tolerance {tolerance:.3f} in production"
    ]


def test_missing_and_tampered_evidence_is_denied(policy: Policy, production) -> None:
    _, candidate = production
    candidate["evidence"] = {"missing": ["fairness.json"], "tampered": ["shap.json"]}
    decision = evaluate(policy, candidate)
    assert not decision.allow
    assert decision.reasons == [
        "evidence file fairness.json is missing",
        "evidence file shap.json does not match its sha256 in evidence.json",
    ]


def test_input_without_an_{{ cookiecutter.package_name }}_is_denied(policy: Policy, production) -> None:
    _, candidate = production
    del candidate["evidence"]
    decision = evaluate(policy, candidate)
    assert not decision.allow
    assert decision.reasons == ["the input holds no evidence check (evidence.missing, evidence.tampered)"]


def test_small_groups_are_noted(policy: Policy, production) -> None:
    _, candidate = production
    candidate["fairness"]["race"]["small_groups"] = ["Other", "Amer-Indian-Eskimo"]
    candidate["min_group_size"] = size = 50
    decision = evaluate(policy, candidate)
    assert decision.allow
    groups = "Amer-Indian-Eskimo, Other"
    note = f"race groups with fewer than {size} rows ({groups}): their fairness figures are uncertain"
    assert note in decision.notes


def test_numpy_numbers_in_the_input_are_accepted(policy: Policy, production) -> None:
    _, candidate = production
    candidate["model"]["version"] = np.int64(3)
    candidate["metrics"] = {name: np.float64(value) for name, value in candidate["metrics"].items()}
    assert evaluate(policy, candidate).allow


def test_decision_serialises_to_a_plain_dict(policy: Policy, production) -> None:
    limits, candidate = production
    document = evaluate(policy, candidate).to_dict()
    assert document == {
        "environment": "production",
        "allow": True,
        "reasons": [],
        "notes": ["no champion in production yet: first release, regression check passes"],
        "limits": limits,
        "policy_pack": policy.thresholds["pack"],
        "model": {"name": "income-classifier", "version": 3},
        "champion": None,
        "warnings": [],
    }


def test_input_without_an_environment_is_rejected(policy: Policy) -> None:
    with pytest.raises(PolicyError, match="environment"):
        evaluate(policy, {"metrics": {}})


def test_rego_syntax_error_names_the_rules_file_and_line(pack_copy: Path) -> None:
    rules_path = pack_copy / "promotion.rego"
    rules = rules_path.read_text()
    rules_path.write_text(rules + "\nbroken if {\n\tinput.x ==\n}\n")
    line = rules.count("\n") + 3
    with pytest.raises(PolicyError, match=rf"promotion\.rego:{line}:\d+: \S"):
        load_policy(pack_copy)


def test_yaml_syntax_error_names_the_thresholds_file_and_line(pack_copy: Path) -> None:
    (pack_copy / "thresholds.yaml").write_text("default:\n  min_metrics: [roc_auc\n")
    with pytest.raises(PolicyError, match=r"thresholds\.yaml: invalid YAML at line \d+"):
        load_policy(pack_copy)


@pytest.mark.parametrize("file_name", ["promotion.rego", "thresholds.yaml"])
def test_missing_pack_file_is_named(pack_copy: Path, file_name: str) -> None:
    (pack_copy / file_name).unlink()
    with pytest.raises(PolicyError, match=re.escape(f"{file_name}: file not found")):
        load_policy(pack_copy)


def test_thresholds_without_default_are_rejected(pack_copy: Path) -> None:
    (pack_copy / "thresholds.yaml").write_text("pack: custom\nenvironments: {}\n")
    with pytest.raises(PolicyError, match=r"thresholds\.yaml: default: required"):
        load_policy(pack_copy)


def test_limit_that_is_not_a_number_is_named(pack_copy: Path) -> None:
    thresholds_path = pack_copy / "thresholds.yaml"
    thresholds = yaml.safe_load(thresholds_path.read_text())
    thresholds["environments"]["production"]["min_metrics"]["roc_auc"] = "high"
    thresholds_path.write_text(yaml.safe_dump(thresholds))
    key = "environments.production.min_metrics.roc_auc"
    with pytest.raises(PolicyError, match=re.escape(f"{key}: expected a number")):
        load_policy(pack_copy)


# A realistic candidate: good enough for the standard pack in production, not for the strict one.
REFERENCE_CANDIDATE = {
    "environment": "production",
    "model": {"name": "income-classifier", "version": 3},
    "metrics": {"roc_auc": 0.91, "balanced_accuracy": 0.78, "accuracy": 0.86, "f1": 0.68, "log_loss": 0.30},
    "champion": None,
    "model_card": {"demo_text": [], "demo_data": False},
    "fairness": {
        "sex": {
            "demographic_parity_difference": 0.18,
            "demographic_parity_ratio": 0.31,
            "equalized_odds_difference": 0.09,
            "equalized_odds_ratio": 0.42,
            "small_groups": [],
        },
        "race": {
            "demographic_parity_difference": 0.12,
            "demographic_parity_ratio": 0.4,
            "equalized_odds_difference": 0.2,
            "equalized_odds_ratio": 0.3,
            "small_groups": [],
        },
    },
    "evidence": {"missing": [], "tampered": []},
}
STRICT_REASONS = {
    "demographic parity difference for sex is 0.180, limit 0.080 in production",
    "demographic parity ratio for sex is 0.310, minimum 0.800 in production",
    "equalized odds difference for race is 0.200, limit 0.080 in production",
}


def test_installed_pack_decides_the_reference_candidate_as_its_strictness_requires(policy: Policy) -> None:
    pack = policy.thresholds.get("pack")
    decision = evaluate(policy, copy.deepcopy(REFERENCE_CANDIDATE))
    if pack == "standard":
        assert decision.allow, decision.reasons
    elif pack == "strict":
        assert not decision.allow
        assert set(decision.reasons) >= STRICT_REASONS
    else:
        pytest.skip(f"no expectation for a custom pack {pack!r}")


# -- the pack is its data ---------------------------------------------------------------------------


def write_thresholds(directory: Path, change) -> Path:
    path = directory / "thresholds.yaml"
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document))
    return path


def test_installed_policy_directory_holds_the_shared_rules_and_the_pack_data_only() -> None:
    assert sorted(path.name for path in POLICY_DIR.iterdir()) == [
        "monitoring.rego",
        "monitoring.yaml",
        "promotion.rego",
        "thresholds.yaml",
    ]
    thresholds = yaml.safe_load((POLICY_DIR / "thresholds.yaml").read_text())
    assert isinstance(thresholds["pack"], str) and thresholds["pack"]


def test_pack_name_comes_from_the_pack_data(policy: Policy) -> None:
    thresholds = yaml.safe_load((POLICY_DIR / "thresholds.yaml").read_text())
    assert policy.pack == thresholds["pack"]
    assert evaluate(policy, {"environment": "staging"}).policy_pack == thresholds["pack"]


def test_project_naming_another_pack_than_the_installed_one_is_refused(pack_copy: Path) -> None:
    installed = yaml.safe_load((pack_copy / "thresholds.yaml").read_text())["pack"]
    with pytest.raises(PolicyError) as error:
        load_policy(pack_copy, expected_pack="lenient")
    assert "'lenient'" in str(error.value) and repr(installed) in str(error.value)
    assert "thresholds.yaml" in str(error.value)
    assert load_policy(pack_copy, expected_pack=installed).pack == installed


def test_thresholds_without_a_pack_name_are_rejected(pack_copy: Path) -> None:
    write_thresholds(pack_copy, lambda document: document.pop("pack"))
    with pytest.raises(PolicyError, match=r"thresholds\.yaml: pack: required key is missing"):
        load_policy(pack_copy)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["default"]["min_metrics"].update(roc_acu=0.8),
            r"thresholds\.yaml: default\.min_metrics: unknown name 'roc_acu' \(expected one of",
        ),
        (
            lambda d: d["default"]["max_fairness_difference"].update(equalized_odds=1.5),
            r"default\.max_fairness_difference\.equalized_odds: expected a number between 0 and 1, got 1\.5",
        ),
        (
            lambda d: d["default"].update(min_metric={"roc_auc": 0.8}),
            r"default\.min_metric: unknown key \(check the spelling\)",
        ),
        (
            lambda d: d["default"]["min_metrics"].update(log_loss=0.3),
            r"default\.min_metrics: unknown name 'log_loss'",
        ),
        (
            lambda d: d["default"].update(model_card={"require_own_text": "yes"}),
            r"default\.model_card\.require_own_text: expected true or false, got 'yes'",
        ),
    ],
)
def test_invalid_limits_name_the_file_and_the_key(pack_copy: Path, change, message: str) -> None:
    write_thresholds(pack_copy, change)
    with pytest.raises(PolicyError, match=message):
        load_policy(pack_copy)


# -- the model card's demo text ---------------------------------------------------------------------


@pytest.fixture
def own_text_required(pack_copy: Path) -> Policy:
    """The installed pack with model_card.require_own_text in production (as the strict pack has it)."""

    def require(document: dict) -> None:
        production = document.setdefault("environments", {}).setdefault("production", {})
        production["model_card"] = {"require_own_text": True}

    write_thresholds(pack_copy, require)
    return load_policy(pack_copy)


def test_demo_card_text_on_other_data_is_denied_where_the_pack_requires_own_text(
    own_text_required: Policy,
) -> None:
    candidate = passing_candidate(limits_for(own_text_required, "production"), "production")
    candidate["model_card"] = {"demo_text": ["limitations", "intended_use"], "demo_data": False}
    decision = evaluate(own_text_required, candidate)
    assert not decision.allow
    assert decision.reasons == [
        "model_card.yaml still holds the template's demo text (intended_use, limitations), which "
        "describes the demo data set: rewrite these keys for this model and its data before promoting "
        "to production"
    ]
    staging = evaluate(own_text_required, candidate | {"environment": "staging"})
    assert staging.allow, staging.reasons
    assert any("model_card.yaml still holds the template's demo text" in note for note in staging.notes)


def test_demo_card_text_on_the_demo_data_is_allowed(own_text_required: Policy) -> None:
    candidate = passing_candidate(limits_for(own_text_required, "production"), "production")
    candidate["model_card"] = {"demo_text": ["limitations"], "demo_data": True}
    assert evaluate(own_text_required, candidate).allow


def test_missing_model_card_check_is_denied_where_it_is_required(own_text_required: Policy) -> None:
    candidate = passing_candidate(limits_for(own_text_required, "production"), "production")
    del candidate["model_card"]
    decision = evaluate(own_text_required, candidate)
    assert decision.reasons == [
        "the input holds no model card check (model_card.demo_text, model_card.demo_data), "
        "required in production"
    ]


def test_only_the_strict_pack_requires_own_card_text_and_only_in_its_last_environment(
    policy: Policy,
) -> None:
    strict = policy.pack == "strict"
    assert limits_for(policy, "production")["model_card"]["require_own_text"] is strict
    assert limits_for(policy, "staging")["model_card"]["require_own_text"] is False


# -- the champion comparison ------------------------------------------------------------------------


def test_the_champion_itself_is_not_called_a_first_release(policy: Policy, production) -> None:
    _, candidate = production
    candidate["comparison"] = {"environment": "production", "status": "is_champion", "version": 3}
    decision = evaluate(policy, candidate)
    assert decision.allow
    assert "version 3 is the current champion in production: nothing to compare it with" in decision.notes
    assert not any("first release" in note for note in decision.notes)
    assert decision.champion == candidate["comparison"]


def test_a_champion_that_cannot_score_the_new_schema_makes_a_first_release(
    policy: Policy, production
) -> None:
    _, candidate = production
    detail = "it needs column(s) 'age', absent from the candidate's data"
    candidate["comparison"] = {
        "environment": "production",
        "status": "new_schema",
        "version": 2,
        "detail": detail,
    }
    decision = evaluate(policy, candidate)
    assert decision.allow
    assert decision.notes == [
        f"champion version 2 in production cannot score the candidate's columns ({detail}): first release "
        "for the new schema, regression check passes"
    ]


def test_a_champion_scored_on_the_same_rows_is_noted(policy: Policy, production) -> None:
    _, candidate = production
    candidate["champion"] = {"version": 2, "metrics": dict(candidate["metrics"])}
    candidate["comparison"] = {"status": "compared", "version": 2, "rows": 1500, "same_data": False}
    decision = evaluate(policy, candidate)
    assert "compared with champion version 2 on the candidate's own 1500 held-out rows" in decision.notes
    assert any("trained on other data" in note for note in decision.notes)
