"""The prediction log: every scored row appended as one JSON line, off the request path.

Handlers hand records to `append` (a queue put, no I/O); one writer thread writes them in order and
flushes after each drain, so a row is on disk moments after it was answered. `close` drains what is
queued before returning, which is what makes a SIGTERM lose no answered row. Files rotate by size:
`predictions-<UTC time>-<pid>-<sequence>.jsonl`, readable in bulk by any JSON Lines reader.

What a record keeps of a person is decided here too, on the writer thread (`RecordPrivacy`):
project.yaml's personal columns are hashed with a keyed hash or dropped, routing keys are hashed
(keyed when a key is set), and each sensitive feature is also kept as its fairness group.

Retention and erasure (`purge_chunks`, `erase_rows`) change chunks under an exclusive `flock`, and a
writer that finds its chunk replaced or deleted starts a new one, so a running service loses no row
to a purge or an erasure made beside it. Every deletion is appended to `deletions.jsonl`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

try:  # POSIX; elsewhere purges and erasures must not run beside a live service
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

from {{ cookiecutter.package_name }}.errors import ConfigError

_STOP = object()
CHUNK_PATTERN = "predictions-*.jsonl"
DELETIONS_FILE = "deletions.jsonl"
MISSING_GROUP = "missing"
HASH_HEX_CHARACTERS = 32


def _lock(handle) -> None:
    if fcntl is not None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)


def _unlock(handle) -> None:
    if fcntl is not None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def fairness_group(value: Any) -> str:
    """A value as the evidence bundle's fairness audit groups it: missing as "missing", else its text.

    The same rule as training's sensitive columns (`fillna("missing")`, then `astype(str)`), so live
    fairness compares like with like.
    """
    return MISSING_GROUP if value is None else str(value)


@dataclass(frozen=True)
class RecordPrivacy:
    """What the prediction log keeps of personal data; `apply` runs on the writer thread.

    `personal_data` is "hash" (HMAC-SHA256 with `key`, 128 bits in hex, null kept as null) or
    "drop". Routing keys arrive already hashed (unkeyed, see serving.routing); with a key they are
    hashed again with it, so the log cannot be searched with guessed keys by anyone without the key.
    """

    personal_columns: frozenset[str] = frozenset()
    personal_data: str = "drop"
    sensitive_columns: tuple[str, ...] = ()
    key: bytes | None = None

    def __post_init__(self) -> None:
        if self.personal_data not in {"hash", "drop"}:
            raise ValueError(f"personal_data must be 'hash' or 'drop', got {self.personal_data!r}")
        if self.personal_data == "hash" and self.personal_columns and not self.key:
            raise ValueError("personal_data 'hash' needs a key")

    def hash_value(self, column: str, value: Any) -> str | None:
        if value is None:
            return None
        message = column.encode() + b"\0" + orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()[:HASH_HEX_CHARACTERS]

    def routing_key_hash(self, unkeyed: str | None) -> str | None:
        """The hash written for a routing key whose unkeyed hash is `unkeyed`."""
        if unkeyed is None or not self.key:
            return unkeyed
        return hmac.new(self.key, b"routing\0" + unkeyed.encode(), hashlib.sha256).hexdigest()[
            :HASH_HEX_CHARACTERS
        ]

    def apply(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record as written: personal columns hashed or dropped, groups of sensitive features."""
        features = record.get("features")
        if isinstance(features, dict):
            if self.sensitive_columns:
                record["groups"] = {
                    column: fairness_group(features[column])
                    for column in self.sensitive_columns
                    if column in features
                }
            if self.personal_columns:
                kept = {}
                for column, value in features.items():
                    if column not in self.personal_columns:
                        kept[column] = value
                    elif self.personal_data == "hash":
                        kept[column] = self.hash_value(column, value)
                record["features"] = kept
        if "routing_key_hash" in record and self.key:
            record["routing_key_hash"] = self.routing_key_hash(record["routing_key_hash"])
        return record


def record_privacy(data, log_settings, environ: Mapping[str, str]) -> RecordPrivacy:
    """The privacy of one environment's log: project.yaml's `data` and `serving.prediction_log`.

    Raises ConfigError naming the variable when personal columns are to be hashed and the key
    variable is unset, so the service refuses to start rather than log raw values.
    """
    key = environ.get(log_settings.hash_key_env, "").encode() or None
    personal = frozenset(data.personal_columns)
    if log_settings.personal_data == "hash" and personal and key is None:
        raise ConfigError(
            f"serving.prediction_log.personal_data is 'hash' but the environment variable "
            f"{log_settings.hash_key_env} (the hash key) is not set: set it from a secret, or choose 'drop'"
        )
    return RecordPrivacy(
        personal_columns=personal,
        personal_data=log_settings.personal_data,
        sensitive_columns=tuple(data.sensitive_features),
        key=key,
    )


class PredictionLog:
    """Appends records to rotated JSON Lines files in `directory`, from a thread of its own."""

    def __init__(
        self,
        directory: Path,
        max_file_bytes: int = 64 * 1024 * 1024,
        on_written: Callable[[list[dict[str, Any]]], None] | None = None,
        privacy: RecordPrivacy | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_file_bytes = max_file_bytes
        self._on_written = on_written
        self.privacy = privacy
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._sequence = 0
        self._handle = None
        self._size = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._write_forever, name="prediction-log", daemon=True)
        self._thread.start()

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Queue records for writing; returns at once."""
        self._queue.put(list(records))

    def close(self) -> None:
        """Write everything queued, then close the file."""
        self._queue.put(_STOP)
        self._thread.join()

    def files(self) -> list[Path]:
        return sorted(self.directory.glob(CHUNK_PATTERN))

    def _open_next(self) -> None:
        """Start a new chunk, locked: the writer holds the lock on its chunk while it writes."""
        if self._handle is not None:
            self._handle.close()
        self._sequence += 1
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = self.directory / f"predictions-{stamp}-{os.getpid()}-{self._sequence:04d}.jsonl"
        self._handle = path.open("ab")
        _lock(self._handle)
        self._size = 0

    def _write_drain(self, records: list[dict[str, Any]]) -> None:
        """Write one drain under the chunk's lock; a chunk replaced or deleted meanwhile is left."""
        if self._handle is not None:
            _lock(self._handle)
            if os.fstat(self._handle.fileno()).st_nlink == 0:  # erased or purged beside us
                self._handle.close()
                self._handle = None
        try:
            self._write(records)
            self._handle.flush()
        finally:
            if self._handle is not None:
                _unlock(self._handle)

    def _write(self, records: list[dict[str, Any]]) -> None:
        """Write lines, starting a new file whenever the current one reaches max_file_bytes."""
        pending: list[bytes] = []
        for record in records:
            if self._handle is None or self._size >= self.max_file_bytes:
                self._flush_lines(pending)
                self._open_next()
            line = orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
            pending.append(line)
            self._size += len(line)
        self._flush_lines(pending)

    def _flush_lines(self, lines: list[bytes]) -> None:
        if lines:
            self._handle.write(b"".join(lines))
            lines.clear()

    def _protected(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records with the privacy rules applied; one that cannot be made safe is not written."""
        kept = []
        for record in records:
            try:
                kept.append(self.privacy.apply(record))
            except Exception:
                self.failures += 1
        return kept

    def _write_forever(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            records: list[dict[str, Any]] = []
            for item in batch:
                if item is _STOP:
                    stopping = True
                else:
                    records.extend(item)
            if not records:
                continue
            if self.privacy is not None:
                records = self._protected(records)
            try:
                self._write_drain(records)
            except OSError:
                self.failures += 1
            if self._on_written is not None:
                try:
                    self._on_written(records)
                except Exception:
                    self.failures += 1
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None


def read_prediction_log(directory: Path) -> list[dict[str, Any]]:
    """Every record of a prediction log directory, oldest file first."""
    records = []
    for path in sorted(Path(directory).glob(CHUNK_PATTERN)):
        with path.open("rb") as handle:
            records.extend(orjson.loads(line) for line in handle if line.strip())
    return records


def _record_time(line: bytes) -> datetime | None:
    try:
        value = orjson.loads(line).get("time")
        moment = datetime.fromisoformat(value)
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def chunk_last_time(path: Path) -> datetime:
    """When the last row of a chunk was answered (rows are written in time order).

    Read from the chunk's last line; a chunk without a readable time falls back to its mtime.
    """
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 65_536))
        lines = [line for line in handle.read().splitlines() if line.strip()]
    moment = _record_time(lines[-1]) if lines else None
    return moment or datetime.fromtimestamp(path.stat().st_mtime, UTC)


def purge_chunks(directory: Path, before: datetime) -> list[Path]:
    """Delete every chunk whose last row is older than `before` (wholly older); returns them."""
    deleted = []
    for path in sorted(Path(directory).glob(CHUNK_PATTERN)):
        if chunk_last_time(path) >= before:
            continue
        with path.open("rb") as handle:
            _lock(handle)  # a writer still holding this chunk sees it gone and starts a new one
            path.unlink()
        deleted.append(path)
    return deleted


@dataclass(frozen=True)
class Erasure:
    """What `erase_rows` removed: rows, the chunks rewritten or deleted, and the request ids."""

    rows: int
    chunks: int
    request_ids: frozenset[str]


def erase_rows(directory: Path, routing_key_hashes: Iterable[str]) -> Erasure:
    """Remove every row whose routing_key_hash is one of `routing_key_hashes`.

    Each affected chunk is rewritten to a temporary file that replaces it (other rows kept byte for
    byte, in order); a chunk left empty is deleted.
    """
    hashes = {value.encode() for value in routing_key_hashes}
    rows, chunks, request_ids = 0, 0, set()
    for path in sorted(Path(directory).glob(CHUNK_PATTERN)):
        with path.open("rb") as handle:
            _lock(handle)
            lines = handle.read().splitlines(keepends=True)
            kept = []
            for line in lines:
                record = orjson.loads(line) if _mentions(line, hashes) else None
                if record is not None and str(record.get("routing_key_hash")).encode() in hashes:
                    request_ids.add(str(record.get("request_id")))
                else:
                    kept.append(line)
            removed = len(lines) - len(kept)
            if not removed:
                continue
            if kept:
                temporary = path.with_name(f".{path.name}.erasing")
                with temporary.open("wb") as rewritten:
                    rewritten.write(b"".join(kept))
                    rewritten.flush()
                    os.fsync(rewritten.fileno())
                os.replace(temporary, path)
            else:
                path.unlink()
        rows += removed
        chunks += 1
    return Erasure(rows, chunks, frozenset(request_ids))


def _mentions(line: bytes, hashes: set[bytes]) -> bool:
    """A cheap pre-filter before parsing: the line contains one of the hashes at all."""
    return any(value in line for value in hashes)


def record_deletion(directory: Path, action: str, rule: str, counts: Mapping[str, int]) -> dict[str, Any]:
    """Append one entry to the log directory's append-only deletions.jsonl; returns it.

    The entry says when, why (`action`, `rule`) and how many of what; never whose.
    """
    entry = {"time": datetime.now(UTC).isoformat(), "action": action, "rule": rule, "counts": dict(counts)}
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(directory / DELETIONS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, orjson.dumps(entry) + b"\n")
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return entry
