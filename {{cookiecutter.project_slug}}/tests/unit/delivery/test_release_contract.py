"""release.yaml as a typed contract: what a hand edit may break is refused with the key."""

from __future__ import annotations

import pytest
import yaml

from {{ cookiecutter.package_name }}.contracts.release import (
    ImageReference,
    ModelReference,
    Release,
    ReleaseError,
    parse_release,
)

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
CHALLENGER = ModelReference(
    name="income-classifier",
    version=4,
    artifact_digest="sha256:" + "d" * 64,
    source_sha="e" * 40,
    data_digest="c" * 64,
)


def release_text(**changes) -> str:
    document = yaml.safe_load(Release.create(**FACTS).to_yaml())
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        if document[section] is None:
            document[section] = {}
        document[section][key] = value
    return yaml.safe_dump(document)


def test_release_exposes_its_facts_by_name() -> None:
    image = ImageReference(repository="ghcr.io/acme/income", digest="sha256:" + "f" * 64)
    release = Release.create(
        **FACTS, strategy="canary", challenger=CHALLENGER, challenger_weight=10, image=image
    )
    assert (release.model, release.version, release.challenger, release.challenger_weight) == (
        "income-classifier",
        3,
        4,
        10,
    )
    assert release.challenger_digest == CHALLENGER.artifact_digest
    assert release.image.reference == "ghcr.io/acme/income@sha256:" + "f" * 64
    assert parse_release(release.to_yaml(), "release.yaml") == release


def test_a_new_split_keeps_everything_else() -> None:
    release = Release.create(**FACTS, strategy="canary")
    split = release.with_rollout(challenger=CHALLENGER, weight=25)
    assert (split.version, split.challenger, split.challenger_weight) == (3, 4, 25)
    promoted = split.with_rollout(champion=CHALLENGER)
    assert (promoted.version, promoted.artifact_digest) == (4, CHALLENGER.artifact_digest)
    assert promoted.challenger is None
    assert (promoted.promoted_from, promoted.policy_pack, promoted.strategy) == ("main", "standard", "canary")
    with pytest.raises(ReleaseError, match="there is no challenger"):
        release.with_rollout(weight=10)


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
        ({"rollout__challenger": 5}, "rollout.challenger is 5 but challenger_model names version None"),
        ({"image__repository": "ghcr.io/acme/x", "image__digest": "latest"}, "image.digest"),
    ],
)
def test_invalid_release_names_the_key(changes: dict, expected: str) -> None:
    with pytest.raises(ReleaseError) as caught:
        parse_release(release_text(**changes), "env/staging:release.yaml")
    assert str(caught.value).startswith("env/staging:release.yaml: not a valid release")
    assert expected in str(caught.value)


def test_creating_an_invalid_release_is_refused_before_anything_is_written() -> None:
    with pytest.raises(ReleaseError, match="challenger_weight"):
        Release.create(**FACTS, challenger=CHALLENGER, challenger_weight=101)
