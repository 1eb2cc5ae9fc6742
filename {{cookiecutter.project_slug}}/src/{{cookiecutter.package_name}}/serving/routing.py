"""Which variant answers a request: direct, canary, shadow or ab, as release.yaml says.

Assignment is a stable hash of the routing key (or of the request id when there is none) into
10,000 buckets, so a key keeps its variant for as long as the weight does not change, in every
replica and across restarts. The challenger's weight is an argument of `choose_variant`, so a
feature flag can supply it per request instead of release.yaml.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from {{ cookiecutter.package_name }}.serving.model import CHALLENGER, CHAMPION

BUCKETS = 10_000


@dataclass(frozen=True)
class RoutingPolicy:
    """The split as configured: release.yaml's strategy and weight, the environment's extras."""

    strategy: str
    challenger_weight: int
    has_challenger: bool
    shadow_fraction: float = 1.0
    experiment_id: str | None = None


@dataclass(frozen=True)
class Decision:
    variant: str
    shadow: bool
    experiment_id: str | None


def bucket(key: str, salt: str = "") -> int:
    """A stable bucket in 0..9,999 for `key` (sha256, so uniform and identical in every process)."""
    digest = hashlib.sha256(f"{salt}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def hash_routing_key(key: str | None) -> str | None:
    """What the prediction log keeps of a routing key: enough to group rows, not the key itself."""
    return None if key is None else hashlib.sha256(key.encode()).hexdigest()[:16]


def choose_variant(
    policy: RoutingPolicy,
    routing_key: str | None,
    request_id: str,
    challenger_weight: int | None = None,
    challenger_enabled: bool = True,
) -> Decision:
    """The variant that answers, whether the challenger also scores in shadow, and the experiment id.

    `challenger_weight` (percent) overrides the policy's weight, e.g. from a feature flag;
    `challenger_enabled` False (the kill switch) sends everything to the champion, shadow included.
    """
    weight = policy.challenger_weight if challenger_weight is None else challenger_weight
    key = routing_key if routing_key is not None else request_id
    if not policy.has_challenger or policy.strategy == "direct" or not challenger_enabled:
        return Decision(CHAMPION, False, None)
    if policy.strategy == "shadow":
        shadow = bucket(request_id, "shadow") < round(policy.shadow_fraction * BUCKETS)
        return Decision(CHAMPION, shadow, None)
    salt = (policy.experiment_id or "") if policy.strategy == "ab" else ""
    variant = CHALLENGER if bucket(key, salt) < weight * BUCKETS // 100 else CHAMPION
    return Decision(variant, False, policy.experiment_id if policy.strategy == "ab" else None)
