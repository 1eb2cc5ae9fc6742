"""The feedback store keeps served requests once and joins the labels to them."""

from __future__ import annotations

from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.io.feedback import FeedbackStore, ServedRequest, resolve_database_url

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
