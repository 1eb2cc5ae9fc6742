"""Routing: a stable, uniform bucket per key, and the variant each strategy picks."""

from __future__ import annotations

from collections import Counter

import pytest

from {{ cookiecutter.package_name }}.serving.routing import (
    BUCKETS,
    RoutingPolicy,
    bucket,
    choose_variant,
    hash_routing_key,
)

pytestmark = pytest.mark.unit


def test_bucket_is_stable_and_spreads_keys_uniformly() -> None:
    assert bucket("customer-1") == bucket("customer-1")
    counts = Counter(bucket(f"key-{number}") * 10 // BUCKETS for number in range(20_000))
    # Each tenth of the range holds 2,000 keys on average; 4.5 sigma of a binomial(20000, 0.1) is 191.
    assert all(abs(count - 2000) < 191 for count in counts.values()), counts


@pytest.mark.parametrize("strategy", ["canary", "ab"])
def test_weight_zero_and_hundred_send_everything_one_way(strategy: str) -> None:
    keys = [f"k{number}" for number in range(500)]
    none = RoutingPolicy(strategy, 0, has_challenger=True)
    everything = RoutingPolicy(strategy, 100, has_challenger=True)
    assert {choose_variant(none, key, "r").variant for key in keys} == {"champion"}
    assert {choose_variant(everything, key, "r").variant for key in keys} == {"challenger"}


def test_direct_and_a_missing_challenger_always_answer_with_the_champion() -> None:
    direct = RoutingPolicy("direct", 50, has_challenger=True)
    alone = RoutingPolicy("canary", 50, has_challenger=False)
    for number in range(200):
        assert choose_variant(direct, None, f"r{number}").variant == "champion"
        assert choose_variant(alone, None, f"r{number}").variant == "champion"


def test_a_flag_can_override_the_weight_per_request() -> None:
    policy = RoutingPolicy("canary", 0, has_challenger=True)
    assert choose_variant(policy, "key", "r", challenger_weight=100).variant == "challenger"


def test_shadow_answers_with_the_champion_and_shadows_the_configured_fraction() -> None:
    policy = RoutingPolicy("shadow", 0, has_challenger=True, shadow_fraction=0.25)
    decisions = [choose_variant(policy, None, f"request-{number}") for number in range(8000)]
    assert {decision.variant for decision in decisions} == {"champion"}
    shadowed = sum(decision.shadow for decision in decisions)
    assert abs(shadowed - 2000) < 4.5 * (8000 * 0.25 * 0.75) ** 0.5


def test_ab_records_its_experiment_and_canary_does_not() -> None:
    ab = RoutingPolicy("ab", 50, True, experiment_id="e1")
    canary = RoutingPolicy("canary", 50, True, experiment_id="e1")
    assert choose_variant(ab, "k", "r").experiment_id == "e1"
    assert choose_variant(canary, "k", "r").experiment_id is None


def test_the_log_keeps_a_hash_of_the_routing_key_not_the_key() -> None:
    hashed = hash_routing_key("alice@example.com")
    assert hashed == hash_routing_key("alice@example.com") and "alice" not in hashed
    assert hash_routing_key(None) is None
