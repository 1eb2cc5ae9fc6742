from __future__ import annotations

import pytest
import yaml

from {{ cookiecutter.package_name }}.contracts.release import Release, ReleaseError, parse_release
from {{ cookiecutter.package_name }}.delivery.desired_state import render

pytestmark = pytest.mark.unit

RELEASE = Release.create(
    environment="staging",
    model="income-classifier",
    version=3,
    artifact_digest="sha256:" + "a" * 64,
    source_sha="b" * 40,
    data_digest="c" * 64,
    promoted_from="main",
    policy_pack="standard",
)


def test_release_round_trips_through_yaml() -> None:
    assert parse_release(RELEASE.to_yaml(), "release.yaml") == RELEASE


def test_release_file_names_champion_and_digest() -> None:
    document = yaml.safe_load(RELEASE.to_yaml())
    assert document["rollout"]["champion"] == 3
    assert document["model"]["artifact_digest"] == RELEASE.artifact_digest


def test_rendering_is_deterministic() -> None:
    summary = "# Evidence\n"
    first = render(RELEASE, "rollout: {}\n", "# card\n", summary, "name: deploy\n")
    second = render(RELEASE, "rollout: {}\n", "# card\n", summary, "name: deploy\n")
    assert first == second
    assert set(first) == {
        "release.yaml",
        "environment.yaml",
        "MODEL_CARD.md",
        "EVIDENCE.md",
        ".github/workflows/deploy.yml",
    }


@pytest.mark.parametrize("text", ["", "environment: staging\n", "model: [1, 2]\n", "{not yaml"])
def test_invalid_release_is_named(text: str) -> None:
    with pytest.raises(ReleaseError, match=r"env/staging:release\.yaml: not a valid release"):
        parse_release(text, "env/staging:release.yaml")


def test_a_rollout_body_carries_the_report_and_stays_within_githubs_limit() -> None:
    from {{ cookiecutter.package_name }}.commands.delivery import rollout_body

    after = RELEASE.with_rollout()
    assert "## Monitoring" not in rollout_body(RELEASE, after)
    short = "## Monitoring of staging: **rollback**\n\n- error rate of the challenger is 0.250\n"
    assert rollout_body(RELEASE, after, short).endswith("\n---\n\n" + short)
    # A report with a huge drift table is cut at a line, below the 65,536 characters GitHub accepts.
    table = "".join(
        f"| feature_{index} | numeric | 2000 | 0.010 | 0.500 |  | no |\n" for index in range(5000)
    )
    body = rollout_body(RELEASE, after, short + table)
    assert len(body) < 65_536 and short in body
    kept = body.split("\n---\n\n", 1)[1].split("\n\n(cut here")[0]
    assert (short + table).startswith(kept + "\n")
    assert body.endswith("(cut here: the whole report is the run's artifact)\n")
