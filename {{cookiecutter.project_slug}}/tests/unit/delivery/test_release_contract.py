"""release.yaml as a typed contract: what a hand edit may break is refused with the key."""

from __future__ import annotations

import pytest
import yaml

from {{ cookiecutter.package_name }}.contracts.release import Release, ReleaseError, parse_release

pytestmark = pytest.mark.unit

FACTS = {
    "environment": "staging",
    "model": "income-classifier",
    "version": 3,
    "artifact_digest": "sha256:" + "a" * 64,
    "source_sha": "b" * 40,
    "data_digest": "c" * 64,
    "promoted_from": "main",
    "policy_pack": "standard",
}


def release_text(**changes) -> str:
    document = yaml.safe_load(Release.create(**FACTS).to_yaml())
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        document[section][key] = value
    return yaml.safe_dump(document)


def test_release_exposes_its_facts_by_name() -> None:
    release = Release.create(**FACTS, strategy="canary", challenger=4, challenger_weight=10)
    assert (release.model, release.version, release.challenger, release.challenger_weight) == (
        "income-classifier",
        3,
        4,
        10,
    )
    assert parse_release(release.to_yaml(), "release.yaml") == release


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"rollout__strategy": "blue-green"}, "rollout.strategy"),
        ({"rollout__challenger_weight": 140}, "rollout.challenger_weight"),
        ({"rollout__challenger": 3}, "challenger 3 is the champion itself"),
        ({"rollout__challenger_weight": 20}, "there is no challenger"),
        ({"rollout__champion": 2}, "rollout.champion is 2 but model.version is 3"),
        ({"model__artifact_digest": "md5:abc"}, "model.artifact_digest"),
        ({"model__version": 0}, "model.version"),
    ],
)
def test_invalid_release_names_the_key(changes: dict, expected: str) -> None:
    with pytest.raises(ReleaseError) as caught:
        parse_release(release_text(**changes), "env/staging:release.yaml")
    assert str(caught.value).startswith("env/staging:release.yaml: not a valid release")
    assert expected in str(caught.value)


def test_creating_an_invalid_release_is_refused_before_anything_is_written() -> None:
    with pytest.raises(ReleaseError, match="challenger_weight"):
        Release.create(**FACTS, challenger=4, challenger_weight=101)
