"""The prediction log: every scored row appended as one JSON line, off the request path.

Handlers hand records to `append` (a queue put, no I/O); one writer thread writes them in order and
flushes after each drain, so a row is on disk moments after it was answered. `close` drains what is
queued before returning, which is what makes a SIGTERM lose no answered row. Files rotate by size:
`predictions-<UTC time>-<sequence>.jsonl`, readable in bulk by any JSON Lines reader.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

_STOP = object()


class PredictionLog:
    """Appends records to rotated JSON Lines files in `directory`, from a thread of its own."""

    def __init__(
        self,
        directory: Path,
        max_file_bytes: int = 64 * 1024 * 1024,
        on_written: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_file_bytes = max_file_bytes
        self._on_written = on_written
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
        return sorted(self.directory.glob("predictions-*.jsonl"))

    def _open_next(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._sequence += 1
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = self.directory / f"predictions-{stamp}-{os.getpid()}-{self._sequence:04d}.jsonl"
        self._handle = path.open("ab")
        self._size = 0

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
            try:
                self._write(records)
                self._handle.flush()
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
    for path in sorted(Path(directory).glob("predictions-*.jsonl")):
        with path.open("rb") as handle:
            records.extend(orjson.loads(line) for line in handle if line.strip())
    return records
