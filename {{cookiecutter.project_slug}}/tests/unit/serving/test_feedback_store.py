"""The feedback store keeps served requests once, joins the labels to them, and deletes by age and by
subject."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text, update

from {{ cookiecutter.package_name }}.config.environment import FEEDBACK_DATABASE_URL_ENV
from {{ cookiecutter.package_name }}.io.feedback import (
    FEEDBACK,
    SERVED_REQUESTS,
    FeedbackStore,
    ServedRequest,
    resolve_database_url,
    store_url,
)

pytestmark = pytest.mark.unit


def test_feedback_joins_the_request_it_is_for(tmp_path) -> None:
    store = FeedbackStore(f"sqlite:///{tmp_path / 'feedback.db'}")
    served = ServedRequest("r1", "staging", "challenger", 3, "exp", 2)
    store.record_requests([served])
    store.record_requests([served])  # a repeated id is ignored
    store.add_feedback([("r1", 1, 0), ("r1", 0, 1)])
    assert store.served("r1") == served and store.served("r2") is None
    joined = sorted(store.feedback(), key=lambda item: item["row"])
    assert [(item["row"], item["label"], item["variant"], item["model_version"]) for item in joined] == [
        (0, 1, "challenger", 3),
        (1, 0, "challenger", 3),
    ]
    store.close()


def test_a_relative_sqlite_path_is_relative_to_the_project_root() -> None:
    root = Path("/project")
    assert resolve_database_url("sqlite:///feedback.db", root) == "sqlite:////project/feedback.db"
    assert resolve_database_url("sqlite:////data/f.db", root) == "sqlite:////data/f.db"
    assert resolve_database_url("postgresql://u@h/db", root) == "postgresql://u@h/db"


def served_at(store: FeedbackStore, request_id: str, moment: datetime) -> None:
    """Backdate a served request and its labels (what time would have done)."""
    with store.engine.begin() as connection:
        connection.execute(
            update(SERVED_REQUESTS).where(SERVED_REQUESTS.c.request_id == request_id).values(served_at=moment)
        )
        connection.execute(
            update(FEEDBACK).where(FEEDBACK.c.request_id == request_id).values(received_at=moment)
        )


def test_purge_deletes_exactly_the_rows_older_than_the_limit(tmp_path) -> None:
    store = FeedbackStore(f"sqlite:///{tmp_path / 'feedback.db'}")
    store.record_requests([ServedRequest(f"r{n}", "staging", "champion", 1, None, 1) for n in range(4)])
    store.add_feedback([(f"r{n}", 0, 1) for n in range(4)])
    now = datetime.now(UTC)
    served_at(store, "r0", now - timedelta(days=40))
    served_at(store, "r1", now - timedelta(days=31))
    served_at(store, "r2", now - timedelta(days=29))
    assert store.purge_before(now - timedelta(days=30)) == {"feedback": 2, "served_requests": 2}
    assert sorted(item["request_id"] for item in store.feedback()) == ["r2", "r3"]
    assert store.served("r1") is None and store.served("r2") is not None
    store.close()


def test_erase_removes_a_subjects_requests_by_id_or_hash_and_nothing_else(tmp_path) -> None:
    store = FeedbackStore(f"sqlite:///{tmp_path / 'feedback.db'}")
    store.record_requests(
        [
            ServedRequest("a1", "staging", "champion", 1, None, 1, "hash-a"),
            ServedRequest("a2", "staging", "champion", 1, None, 1),  # stored before hashes were kept
            ServedRequest("b1", "staging", "champion", 1, None, 1, "hash-b"),
            ServedRequest("n1", "staging", "champion", 1, None, 1),
        ]
    )
    store.add_feedback([("a1", 0, 1), ("a2", 0, 0), ("b1", 0, 1), ("n1", 0, 0), ("a1", 0, 0)])
    assert store.erase({"a2"}, {"hash-a"}) == {"feedback": 3, "served_requests": 2}
    assert sorted(item["request_id"] for item in store.feedback()) == ["b1", "n1"]
    assert store.counts() == {"feedback": 2, "served_requests": 2}
    assert store.served("b1").routing_key_hash == "hash-b"
    store.close()


def test_a_store_made_before_routing_hashes_were_kept_gains_the_column(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE served_requests (request_id VARCHAR(64) PRIMARY KEY, "
                "served_at DATETIME NOT NULL, environment VARCHAR(64) NOT NULL, "
                "variant VARCHAR(16) NOT NULL, model_version INTEGER NOT NULL, experiment_id VARCHAR(128), "
                "rows INTEGER NOT NULL)"
            )
        )
    engine.dispose()
    store = FeedbackStore(url)
    store.record_requests([ServedRequest("r1", "staging", "champion", 1, None, 1, "h")])
    assert store.served("r1").routing_key_hash == "h"
    store.close()


def test_the_store_url_from_the_environment_replaces_the_settings_one() -> None:
    root = Path("/project")
    secret = "postgresql+psycopg://feedback:pw@db/feedback"
    assert store_url("sqlite:///feedback.db", root, {FEEDBACK_DATABASE_URL_ENV: secret}) == secret
    assert store_url("sqlite:///feedback.db", root, {}) == "sqlite:////project/feedback.db"
