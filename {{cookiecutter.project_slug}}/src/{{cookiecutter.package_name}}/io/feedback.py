"""The feedback store: which requests were served by which variant, and the labels that come back.

Any SQLAlchemy URL works (SQLite by default). Two tables: `served_requests` (one row per answered
request: environment, variant, version, experiment id, rows, the routing key's hash) and `feedback`
(one row per label received, with the row index inside its request). Joining them is what an
experiment report and the monitoring read. `purge_before` and `erase` delete by age and by subject
(retention and erasure); only portable SQL is used, so SQLite and PostgreSQL behave alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

from {{ cookiecutter.package_name }}.config.environment import FEEDBACK_DATABASE_URL_ENV

METADATA = MetaData()
SERVED_REQUESTS = Table(
    "served_requests",
    METADATA,
    Column("request_id", String(64), primary_key=True),
    Column("served_at", DateTime(timezone=True), nullable=False),
    Column("environment", String(64), nullable=False),
    Column("variant", String(16), nullable=False),
    Column("model_version", Integer, nullable=False),
    Column("experiment_id", String(128)),
    Column("rows", Integer, nullable=False),
    Column("routing_key_hash", String(64), index=True),
)
IN_CLAUSE_SIZE = 500
# Replicas starting together on an empty PostgreSQL database would race to create the same tables
# (a unique violation in its catalog): the schema is created under this transaction-scoped lock.
SCHEMA_LOCK = 0x6D6C6F7073
FEEDBACK = Table(
    "feedback",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False, index=True),
    Column("row", Integer, nullable=False),
    Column("label", JSON, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class ServedRequest:
    request_id: str
    environment: str
    variant: str
    model_version: int
    experiment_id: str | None
    rows: int
    routing_key_hash: str | None = None


def resolve_database_url(url: str, root: Path) -> str:
    """A relative SQLite path made absolute against the project root; other URLs unchanged."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        if not path.is_absolute():
            return str(parsed.set(database=str(root / path)))
    return url


def store_url(configured: str, root: Path, environ: Mapping[str, str]) -> str:
    """The feedback store's URL: `FEEDBACK_DATABASE_URL_ENV` when set (a Secret: a PostgreSQL URL carries
    a password), else `serving.feedback_database_url`; a relative SQLite path made absolute."""
    return resolve_database_url(environ.get(FEEDBACK_DATABASE_URL_ENV) or configured, root)


def create_sqlite_directory(url: str) -> None:
    """The directory of a SQLite store's file, made when missing (the service creates its store, as
    it creates its log directory); other URLs are left alone."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


class FeedbackStore:
    """One engine for the process; tables are created on first use."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        try:
            self._create_schema()
        except (OperationalError, ProgrammingError) as error:
            # Another process (a second worker on one SQLite file) created a table between our check
            # and our CREATE: the schema is there now, and a second pass finds it.
            if "already exists" not in str(error) and "duplicate column" not in str(error):
                raise
            self._create_schema()

    def _create_schema(self) -> None:
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
            METADATA.create_all(connection)
            self._add_missing_columns(connection)

    @staticmethod
    def _add_missing_columns(connection: Connection) -> None:
        """Bring a store made by an earlier version up to date (the one column added since)."""
        columns = {column["name"] for column in inspect(connection).get_columns("served_requests")}
        if "routing_key_hash" not in columns:
            connection.execute(text("ALTER TABLE served_requests ADD COLUMN routing_key_hash VARCHAR(64)"))

    def close(self) -> None:
        self.engine.dispose()

    def record_requests(self, requests: list[ServedRequest]) -> None:
        """Remember served requests (one per request id; a repeated id is ignored)."""
        if not requests:
            return
        now = datetime.now(UTC)
        with self.engine.begin() as connection:
            known = {
                row[0]
                for row in connection.execute(
                    select(SERVED_REQUESTS.c.request_id).where(
                        SERVED_REQUESTS.c.request_id.in_([item.request_id for item in requests])
                    )
                )
            }
            fresh = {item.request_id: item for item in requests if item.request_id not in known}
            if fresh:
                connection.execute(
                    insert(SERVED_REQUESTS),
                    [{**item.__dict__, "served_at": now} for item in fresh.values()],
                )

    def served(self, request_id: str) -> ServedRequest | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(SERVED_REQUESTS).where(SERVED_REQUESTS.c.request_id == request_id)
            ).first()
        if row is None:
            return None
        return ServedRequest(
            row.request_id,
            row.environment,
            row.variant,
            row.model_version,
            row.experiment_id,
            row.rows,
            row.routing_key_hash,
        )

    def add_feedback(self, items: list[tuple[str, int, Any]]) -> None:
        """Store (request_id, row, label) triples in one transaction."""
        now = datetime.now(UTC)
        with self.engine.begin() as connection:
            connection.execute(
                insert(FEEDBACK),
                [
                    {"request_id": request_id, "row": row, "label": label, "received_at": now}
                    for request_id, row, label in items
                ],
            )

    def feedback(self) -> list[dict[str, Any]]:
        """Every label received, joined with the request it is for."""
        query = select(
            FEEDBACK.c.request_id,
            FEEDBACK.c.row,
            FEEDBACK.c.label,
            SERVED_REQUESTS.c.variant,
            SERVED_REQUESTS.c.model_version,
            SERVED_REQUESTS.c.experiment_id,
        ).join(SERVED_REQUESTS, SERVED_REQUESTS.c.request_id == FEEDBACK.c.request_id, isouter=True)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def purge_before(self, before: datetime) -> dict[str, int]:
        """Delete served requests served and labels received before `before`; counts by table."""
        with self.engine.begin() as connection:
            labels = connection.execute(delete(FEEDBACK).where(FEEDBACK.c.received_at < before)).rowcount
            served = connection.execute(
                delete(SERVED_REQUESTS).where(SERVED_REQUESTS.c.served_at < before)
            ).rowcount
        return {"feedback": labels, "served_requests": served}

    def erase(self, request_ids: set[str], routing_key_hashes: set[str]) -> dict[str, int]:
        """Delete one subject's served requests and labels, found by request id or routing key hash.

        Both, because either record may be gone: the log rows (which give the request ids) may have
        been purged while a late label remains, and requests stored before the hash was recorded
        have none.
        """
        with self.engine.begin() as connection:
            ids = set(request_ids)
            for part in _chunks(sorted(routing_key_hashes)):
                ids.update(
                    row[0]
                    for row in connection.execute(
                        select(SERVED_REQUESTS.c.request_id).where(
                            SERVED_REQUESTS.c.routing_key_hash.in_(part)
                        )
                    )
                )
            labels = served = 0
            for part in _chunks(sorted(ids)):
                labels += connection.execute(delete(FEEDBACK).where(FEEDBACK.c.request_id.in_(part))).rowcount
                served += connection.execute(
                    delete(SERVED_REQUESTS).where(SERVED_REQUESTS.c.request_id.in_(part))
                ).rowcount
        return {"feedback": labels, "served_requests": served}

    def counts(self) -> dict[str, int]:
        """Rows per table (what a retention or erasure report compares against)."""
        with self.engine.connect() as connection:
            return {
                table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                for table in (FEEDBACK, SERVED_REQUESTS)
            }


def _chunks(values: list[str]) -> list[list[str]]:
    """Values in groups small enough for any database's IN clause."""
    return [values[start : start + IN_CLAUSE_SIZE] for start in range(0, len(values), IN_CLAUSE_SIZE)]
