"""Flag files: the checks CI relies on, and the service's evaluation through the real flagd provider."""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.errors import ProjectError
from {{ cookiecutter.package_name }}.serving.flags import (
    CHALLENGER_ENABLED,
    CHALLENGER_WEIGHT,
    EXPLAIN_PREDICTIONS,
    FlagFileError,
    RequestFlags,
    ServiceFlags,
    check_flag_files,
    read_flag_file,
    validate_flag_file,
)
from {{ cookiecutter.package_name }}.serving.model import CHALLENGER, CHAMPION
from {{ cookiecutter.package_name }}.serving.routing import RoutingPolicy, choose_variant

pytestmark = pytest.mark.unit

PROJECT_ROOT = Path(__file__).resolve().parents[3]
VALID = {
    "flags": {
        CHALLENGER_ENABLED: {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on",
        },
        CHALLENGER_WEIGHT: {
            "state": "ENABLED",
            "variants": {"champion": 0, "challenger": 100},
            "defaultVariant": "champion",
            "targeting": {"fractional": [["challenger", 30], ["champion", 70]]},
        },
        EXPLAIN_PREDICTIONS: {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"if": [{"==": [{"var": "targetingKey"}, "vip"]}, "on", "off"]},
        },
    }
}


def write(path: Path, document) -> Path:
    path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
    return path


def broken(change) -> dict:
    document = copy.deepcopy(VALID)
    change(document["flags"])
    return document


def test_every_flag_file_the_project_ships_is_valid() -> None:
    files = sorted((PROJECT_ROOT / "flags").glob("*.flagd.json"))
    assert files, "the project has no flag file"
    for path in files:
        assert validate_flag_file(path) == [], path


def test_a_valid_file_has_no_problem_and_reads_back_as_its_text(tmp_path: Path) -> None:
    path = write(tmp_path / "staging.flagd.json", VALID)
    assert validate_flag_file(path) == []
    assert read_flag_file(path) == path.read_text()


def test_a_missing_default_variant_is_named_with_file_and_flag(tmp_path: Path) -> None:
    path = write(
        tmp_path / "staging.flagd.json", broken(lambda f: f[CHALLENGER_ENABLED].pop("defaultVariant"))
    )
    [problem] = validate_flag_file(path)
    assert str(path) in problem and f"flag {CHALLENGER_ENABLED!r}" in problem and "defaultVariant" in problem


def test_a_default_variant_outside_the_variants_is_named(tmp_path: Path) -> None:
    path = write(
        tmp_path / "f.flagd.json", broken(lambda f: f[CHALLENGER_ENABLED].update(defaultVariant="of"))
    )
    [problem] = validate_flag_file(path)
    assert f"flag {CHALLENGER_ENABLED!r}" in problem and "'of'" in problem and "on, off" in problem


def test_an_unknown_variant_in_an_if_arm_is_named(tmp_path: Path) -> None:
    def change(flags):
        flags[EXPLAIN_PREDICTIONS]["targeting"]["if"][1] = "yes"

    [problem] = validate_flag_file(write(tmp_path / "f.flagd.json", broken(change)))
    assert f"flag {EXPLAIN_PREDICTIONS!r}" in problem and "variant 'yes'" in problem


def test_an_unknown_variant_in_a_fractional_bucket_is_named(tmp_path: Path) -> None:
    def change(flags):
        flags[CHALLENGER_WEIGHT]["targeting"]["fractional"][0][0] = "challengr"

    [problem] = validate_flag_file(write(tmp_path / "f.flagd.json", broken(change)))
    assert f"flag {CHALLENGER_WEIGHT!r}" in problem and "variant 'challengr'" in problem


def test_a_variant_named_through_a_shared_evaluator_is_checked(tmp_path: Path) -> None:
    document = broken(lambda f: f[CHALLENGER_WEIGHT].update(targeting={"$ref": "split"}))
    document["$evaluators"] = {"split": {"fractional": [["challenger", 50], ["nobody", 50]]}}
    [problem] = validate_flag_file(write(tmp_path / "f.flagd.json", document))
    assert "variant 'nobody'" in problem
    document["$evaluators"] = {}
    [problem] = validate_flag_file(write(tmp_path / "f.flagd.json", document))
    assert "unknown evaluator 'split'" in problem


@pytest.mark.parametrize(
    ("buckets", "expected"),
    [
        ([["challenger", 30], ["champion", 60]], "add up to 90"),
        ([["challenger", -10], ["champion", 110]], "weight -10"),
        ([["challenger", 0.5], ["champion", 99.5]], "weight 0.5"),
        ([["challenger"], ["champion", 100]], "not [variant, weight]"),
    ],
)
def test_fractional_weights_must_be_percents_adding_up_to_100(tmp_path: Path, buckets, expected) -> None:
    document = broken(lambda f: f[CHALLENGER_WEIGHT]["targeting"].update(fractional=buckets))
    problems = validate_flag_file(write(tmp_path / "f.flagd.json", document))
    assert any(expected in problem and repr(CHALLENGER_WEIGHT) in problem for problem in problems), problems


def test_bad_json_is_reported_with_its_position(tmp_path: Path) -> None:
    path = write(tmp_path / "f.flagd.json", '{"flags": {"challenger-enabled": {"state": "ENABLED",}}}')
    [problem] = validate_flag_file(path)
    assert str(path) in problem and "not valid JSON" in problem and "line 1" in problem


def test_a_missing_file_is_a_problem(tmp_path: Path) -> None:
    [problem] = validate_flag_file(tmp_path / "absent.flagd.json")
    assert "no such flag file" in problem


def test_mixed_and_misread_value_types_are_named(tmp_path: Path) -> None:
    mixed = broken(lambda f: f[CHALLENGER_ENABLED]["variants"].update(off="false"))
    [problem] = validate_flag_file(write(tmp_path / "a.flagd.json", mixed))
    assert "mix value types" in problem and repr(CHALLENGER_ENABLED) in problem
    misread = broken(lambda f: f[CHALLENGER_WEIGHT]["variants"].update(champion=0.0, challenger=1.0))
    [problem] = validate_flag_file(write(tmp_path / "b.flagd.json", misread))
    assert "reads it as integer" in problem
    out_of_range = broken(lambda f: f[CHALLENGER_WEIGHT]["variants"].update(challenger=150))
    [problem] = validate_flag_file(write(tmp_path / "c.flagd.json", out_of_range))
    assert "percent in 0..100" in problem


def test_unknown_keys_and_states_are_named(tmp_path: Path) -> None:
    document = broken(lambda f: f[CHALLENGER_ENABLED].update(state="ON", default="on"))
    problems = validate_flag_file(write(tmp_path / "f.flagd.json", document))
    assert any("unknown keys default" in problem for problem in problems), problems
    assert any("state is 'ON'" in problem for problem in problems), problems


def test_read_flag_file_raises_a_project_error_naming_every_problem(tmp_path: Path) -> None:
    document = broken(lambda f: f[CHALLENGER_ENABLED].update(defaultVariant="x"))
    document["flags"][EXPLAIN_PREDICTIONS].pop("defaultVariant")
    path = write(tmp_path / "f.flagd.json", document)
    with pytest.raises(FlagFileError) as raised:
        read_flag_file(path)
    assert isinstance(raised.value, ProjectError)
    assert repr(CHALLENGER_ENABLED) in str(raised.value) and repr(EXPLAIN_PREDICTIONS) in str(raised.value)


def test_check_flag_files_covers_named_files_and_every_file_in_flags(tmp_path: Path) -> None:
    (tmp_path / "flags").mkdir()
    write(tmp_path / "flags" / "staging.flagd.json", VALID)
    write(tmp_path / "flags" / "old.flagd.json", broken(lambda f: f[CHALLENGER_ENABLED].pop("variants")))
    named = {"staging": Path("flags/staging.flagd.json"), "production": Path("flags/production.flagd.json")}
    files, problems = check_flag_files(tmp_path, named)
    assert [path.name for path in files] == ["staging.flagd.json", "production.flagd.json", "old.flagd.json"]
    assert any(problem.startswith("flags/production.flagd.json: no such") for problem in problems), problems
    assert any(problem.startswith("flags/old.flagd.json: flag") for problem in problems), problems
    files, problems = check_flag_files(tmp_path, {"staging": named["staging"]}, every_file=False)
    assert (len(files), problems) == (1, [])


def test_what_the_check_refuses_flagd_fails_to_evaluate(tmp_path: Path) -> None:
    """The reason the check exists: flagd loads this file and errors only when the flag is evaluated."""
    path = write(
        tmp_path / "f.flagd.json", broken(lambda f: f[CHALLENGER_ENABLED].update(defaultVariant="x"))
    )
    assert validate_flag_file(path)
    from openfeature import api
    from openfeature.contrib.provider.flagd import FlagdProvider
    from openfeature.contrib.provider.flagd.config import ResolverType

    api.set_provider_and_wait(
        FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=str(path)), "broken-check"
    )
    try:
        details = api.get_client("broken-check").get_boolean_details(CHALLENGER_ENABLED, True)
        assert details.error_code is not None
    finally:
        api.get_client("broken-check").provider.shutdown()


# -- evaluation through the real provider --------------------------------------------------------
@pytest.fixture
def started(tmp_path: Path):
    services = []

    def start(document, poll_interval_ms: int = 50) -> ServiceFlags:
        flags = ServiceFlags(write(tmp_path / "env.flagd.json", document), poll_interval_ms)
        flags.start()
        services.append(flags)
        return flags

    yield start
    for flags in services:
        flags.stop()


def test_without_a_file_every_flag_has_its_default(tmp_path: Path) -> None:
    for path in (None, tmp_path / "absent.flagd.json"):
        flags = ServiceFlags(path)
        flags.start()
        assert flags.evaluate("key") == RequestFlags(True, None, False)
        assert flags.describe()["watching"] is False


def test_fractional_weight_splits_keys_stickily_and_other_flags_follow_targeting(started) -> None:
    flags = started(VALID)
    weights = [flags.evaluate(f"customer-{number}").challenger_weight for number in range(4000)]
    assert set(weights) == {0, 100}
    share = weights.count(100) / len(weights)
    assert abs(share - 0.30) < 4.5 * (0.3 * 0.7 / len(weights)) ** 0.5, share
    assert [flags.evaluate(f"customer-{number}").challenger_weight for number in range(200)] == weights[:200]
    assert flags.evaluate("vip").explain_predictions is True
    assert flags.evaluate("someone").explain_predictions is False


def test_a_disabled_or_absent_weight_flag_leaves_release_yaml_in_charge(started) -> None:
    disabled = broken(lambda f: f[CHALLENGER_WEIGHT].update(state="DISABLED"))
    assert started(disabled).evaluate("k").challenger_weight is None
    absent = broken(lambda f: f.pop(CHALLENGER_WEIGHT))
    assert started(absent).evaluate("k").challenger_weight is None


def test_an_edited_file_applies_without_restarting(started, tmp_path: Path) -> None:
    flags = started(VALID)
    assert flags.evaluate("k").challenger_enabled is True
    path = write(
        tmp_path / "env.flagd.json", broken(lambda f: f[CHALLENGER_ENABLED].update(defaultVariant="off"))
    )
    later = time.time() + 5
    os.utime(path, (later, later))  # a new modification time even on a coarse clock
    deadline = time.monotonic() + 10
    while flags.evaluate("k").challenger_enabled and time.monotonic() < deadline:
        time.sleep(0.02)
    assert flags.evaluate("k").challenger_enabled is False
    assert flags.describe()["values"]["challenger_enabled"] is False


@pytest.mark.parametrize("strategy", ["canary", "ab", "shadow"])
def test_the_kill_switch_sends_everything_to_the_champion(strategy: str) -> None:
    policy = RoutingPolicy(strategy, 100, has_challenger=True, experiment_id="e")
    alive = choose_variant(policy, "key", "request")
    killed = choose_variant(policy, "key", "request", challenger_enabled=False)
    assert (alive.variant == CHALLENGER) or alive.shadow
    assert (killed.variant, killed.shadow) == (CHAMPION, False)


def test_a_flag_weight_overrides_the_release_weight_per_key() -> None:
    policy = RoutingPolicy("canary", 0, has_challenger=True)
    assert choose_variant(policy, "key", "r", challenger_weight=100).variant == CHALLENGER
    assert (
        choose_variant(RoutingPolicy("canary", 100, True), "key", "r", challenger_weight=0).variant
        == CHAMPION
    )


def test_the_flags_command_exits_2_naming_file_flag_and_variant(tmp_path: Path, capsys) -> None:
    from fixtures import install_fixture_project

    from {{ cookiecutter.package_name }}.cli import main
    from {{ cookiecutter.package_name }}.config import load_config

    config_file = install_fixture_project(tmp_path)
    (tmp_path / "environments").mkdir()
    (tmp_path / "flags").mkdir()
    for name in load_config(config_file).environments:
        (tmp_path / "environments" / f"{name}.yaml").write_text(f"flags: flags/{name}.flagd.json\n")
        write(tmp_path / "flags" / f"{name}.flagd.json", VALID)
    assert main(["--config", str(config_file), "flags", "--check"]) == 0
    first = load_config(config_file).environments[0]

    def change(flags):
        flags[CHALLENGER_WEIGHT]["targeting"]["fractional"][1][0] = "champ"

    write(tmp_path / "flags" / f"{first}.flagd.json", broken(change))
    capsys.readouterr()
    assert main(["--config", str(config_file), "flags", "--check"]) == 2
    error = capsys.readouterr().err
    assert f"flags/{first}.flagd.json" in error and repr(CHALLENGER_WEIGHT) in error and "'champ'" in error
    others = [name for name in load_config(config_file).environments if name != first]
    for name in others:
        assert main(["--config", str(config_file), "flags", "--check", "--env", name]) == 0


def test_an_edit_that_is_not_json_keeps_the_flags_in_force(started, tmp_path: Path) -> None:
    off = broken(lambda f: f[CHALLENGER_ENABLED].update(defaultVariant="off"))
    flags = started(off)
    path = write(tmp_path / "env.flagd.json", '{"flags": {')
    later = time.time() + 5
    os.utime(path, (later, later))
    time.sleep(0.3)  # several polls of 50 ms
    assert flags.evaluate("k").challenger_enabled is False


def test_flags_a_request_cannot_use_are_skipped_and_keep_their_defaults(started) -> None:
    document = broken(lambda f: f[CHALLENGER_ENABLED].update(defaultVariant="off"))
    document["flags"][EXPLAIN_PREDICTIONS]["defaultVariant"] = "on"
    document["flags"][EXPLAIN_PREDICTIONS].pop("targeting")
    flags = started(document)
    assert flags.evaluate("k") == RequestFlags(False, flags.evaluate("k").challenger_weight, True)
    assert flags.evaluate("k", routing=False) == RequestFlags(True, None, True)
    assert flags.evaluate("k", weight=False).challenger_weight is None
    assert flags.evaluate("k", explain=False).explain_predictions is False
