"""One pass over the prediction log of a time window, in bounded memory.

The log is read file by file and line by line (files last written before the window opened are
skipped unread); records are folded in chunks into counts that are exact (bin
and category counts, requests, errors, labelled rows) and into seeded uniform samples of fixed size
(the numeric values and scores the KS tests need, the latencies the quantiles need). The cost is one
JSON parse per record read and the memory does not grow with the log.

Besides the fields the service writes today, a record may carry `status` (the HTTP status of its
request) and `latency_ms` (the request's latency): when present, error rates and latency quantiles
per variant are computed from them; a failed request is one record with `row` 0, its `status` and
no `score`.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from {{ cookiecutter.package_name }}.governance.profile import bin_counts
from {{ cookiecutter.package_name }}.serving.model import CHAMPION

LOG_PATTERN = "predictions-*.jsonl"
CHUNK_ROWS = 20_000
SAMPLE_ROWS = 5_000
LATENCY_SAMPLE = 20_000
SHADOW_PAIRS_PENDING = 100_000
MISSING_GROUP = "missing"
LabelKey = tuple[str, int]


def fairness_group(value: Any) -> str:
    """A sensitive value as the evidence bundle's audit groups it: missing as "missing", else its
    text (training's `fillna("missing")` then `astype(str)`). Records that carry `groups` (the
    service's own grouping, kept even when the column itself is personal) are read from there."""
    return MISSING_GROUP if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def parse_time(text: Any) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime (a time without offset is taken as UTC)."""
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def log_files(directory: Path, since: datetime) -> list[Path]:
    """The log files that may hold records of the window, oldest first.

    A file last written before the window opened holds none of its records and is skipped unread.
    A file's name says when it was opened, but not when its records were answered (the writer
    drains a queue), so newer files are always read and filtered by each record's time.
    """
    return [
        path
        for path in sorted(Path(directory).glob(LOG_PATTERN))
        if datetime.fromtimestamp(path.stat().st_mtime, UTC) >= since
    ]


def read_window(
    directory: Path, since: datetime, until: datetime, environment: str
) -> Iterator[dict[str, Any]]:
    """Every record of `environment` with since <= time < until; unreadable lines are counted, not fatal."""
    for path in log_files(directory, since):
        with path.open("rb") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    yield {"__invalid__": str(path.name)}
                    continue
                if record.get("environment") != environment:
                    continue
                moment = parse_time(record.get("time"))
                if moment is None or not since <= moment < until:
                    continue
                yield record


@dataclass
class VariantTraffic:
    requests: int = 0
    rows: int = 0
    errors: int = 0
    with_status: int = 0
    versions: Counter = field(default_factory=Counter)
    latency_heap: list[tuple[float, float]] = field(default_factory=list)

    @property
    def latencies(self) -> list[float]:
        return [latency for _, latency in self.latency_heap]


class WindowStatistics:
    """Everything `monitor` needs from one window of the log, accumulated record by record."""

    def __init__(
        self,
        profile: dict,
        labels: dict[LabelKey, Any],
        sensitive: list[str],
        random_state: int = 0,
        sample_rows: int = SAMPLE_ROWS,
        unmeasured: frozenset[str] = frozenset(),
        pair_shadow: bool = True,
    ) -> None:
        self.profile = profile
        # personal columns reach the log hashed or not at all: their drift cannot be measured
        measured = {name: item for name, item in profile["features"].items() if name not in unmeasured}
        self.numeric = [name for name, item in measured.items() if item["kind"] == "numeric"]
        self.categorical = [name for name, item in measured.items() if item["kind"] == "categorical"]
        self.unmeasured = sorted(set(profile["features"]) - set(measured))
        self.labels = labels
        self.sensitive = sensitive
        self.sample_rows = sample_rows
        self.rng = np.random.default_rng(random_state)
        self.traffic: dict[str, VariantTraffic] = defaultdict(VariantTraffic)
        self.shadow = VariantTraffic()
        self.invalid_lines = 0
        self.records = 0
        self.first_time: str | None = None
        self.last_time: str | None = None
        self.numeric_counts = {
            name: np.zeros(len(profile["features"][name]["edges"]) + 1, dtype=np.int64)
            for name in self.numeric
        }
        self.numeric_missing = dict.fromkeys(self.numeric, 0)
        self.category_counts: dict[str, Counter] = {name: Counter() for name in self.categorical}
        self.score_counts = np.zeros(len(profile["score"]["edges"]) + 1, dtype=np.int64)
        columns = [*self.numeric, "__score__"]
        self.sample = np.empty((0, len(columns)))
        self.sample_priorities = np.empty(0)
        self.sample_columns = columns
        self.labelled: list[dict[str, Any]] = []
        # answers waiting for their shadow twin: kept only where shadow scoring happens (a dict of
        # every answered row would also cost the garbage collector on large windows)
        self.pair_shadow = pair_shadow
        self.pending_pairs: dict[LabelKey, Any] = {}
        self.pairs = 0
        self.agreements = 0
        self._chunk: list[dict[str, Any]] = []

    # -- folding records -----------------------------------------------------------------------------
    def add(self, record: dict[str, Any]) -> None:
        if "__invalid__" in record:
            self.invalid_lines += 1
            return
        self.records += 1
        time = record.get("time")
        self.first_time = time if self.first_time is None else min(self.first_time, time)
        self.last_time = time if self.last_time is None else max(self.last_time, time)
        shadow = bool(record.get("shadow"))
        variant = str(record.get("variant", "unknown"))
        traffic = self.shadow if shadow else self.traffic[variant]
        if record.get("row", 0) == 0:
            traffic.requests += 1
            self._count_request(traffic, record)
        if record.get("score") is None:
            return  # a failed request: no answer to measure
        traffic.rows += 1
        traffic.versions[record.get("model_version")] += 1
        key = (str(record.get("request_id")), int(record.get("row", 0)))
        if shadow or self.pair_shadow:
            self._pair(key, record, shadow)
        if key in self.labels:
            features = record.get("features") or {}
            groups = record.get("groups") or {}
            self.labelled.append(
                {
                    "variant": variant,
                    "shadow": shadow,
                    "score": float(record["score"]),
                    "prediction": record.get("label"),
                    "label": self.labels[key],
                    **{
                        f"sensitive:{name}": groups[name]
                        if name in groups
                        else fairness_group(features.get(name))
                        for name in self.sensitive
                    },
                }
            )
        if not shadow:
            self._chunk.append(record)
            if len(self._chunk) >= CHUNK_ROWS:
                self.flush()

    def _count_request(self, traffic: VariantTraffic, record: dict[str, Any]) -> None:
        status = record.get("status")
        if isinstance(status, int):
            traffic.with_status += 1
            traffic.errors += status >= 500
        latency = record.get("latency_ms")
        if isinstance(latency, int | float) and math.isfinite(latency):
            # bottom-k sample by random priority (a heap of the k smallest): uniform over the
            # window's requests, fixed size, O(log k) per request
            entry = (-float(self.rng.random()), float(latency))
            if len(traffic.latency_heap) < LATENCY_SAMPLE:
                heapq.heappush(traffic.latency_heap, entry)
            elif entry > traffic.latency_heap[0]:
                heapq.heapreplace(traffic.latency_heap, entry)

    def _pair(self, key: LabelKey, record: dict[str, Any], shadow: bool) -> None:
        """Agreement of a shadow answer with the answer the client got for the same row."""
        other = self.pending_pairs.pop(key, None)
        if other is not None and other[0] != shadow:
            self.pairs += 1
            self.agreements += other[1] == record.get("label")
            return
        self.pending_pairs[key] = (shadow, record.get("label"))
        if len(self.pending_pairs) > SHADOW_PAIRS_PENDING:
            self.pending_pairs.pop(next(iter(self.pending_pairs)))

    def flush(self) -> None:
        """Fold the buffered answered rows into the counts and the samples."""
        if not self._chunk:
            return
        frame = pd.DataFrame.from_records([record.get("features") or {} for record in self._chunk])
        # score drift compares the champion with its own held-out scores; a challenger's are its own
        scores = np.asarray(
            [record["score"] if record.get("variant") == CHAMPION else math.nan for record in self._chunk],
            dtype=float,
        )
        self._chunk = []
        columns = []
        for name in self.numeric:
            values = (
                pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
                if name in frame
                else np.full(len(frame), np.nan)
            )
            self.numeric_counts[name] += bin_counts(values, self.profile["features"][name]["edges"])
            self.numeric_missing[name] += int(np.isnan(values).sum())
            columns.append(values)
        for name in self.categorical:
            if name in frame:
                values = frame[name].astype("string").fillna("")
                self.category_counts[name].update(values.value_counts().to_dict())
        self.score_counts += bin_counts(scores, self.profile["score"]["edges"])
        columns.append(scores)
        block = np.column_stack(columns)
        priorities = self.rng.random(len(block))
        merged = np.vstack([self.sample, block])
        merged_priorities = np.concatenate([self.sample_priorities, priorities])
        if len(merged) > self.sample_rows:
            keep = np.argpartition(merged_priorities, self.sample_rows)[: self.sample_rows]
            merged, merged_priorities = merged[keep], merged_priorities[keep]
        self.sample, self.sample_priorities = merged, merged_priorities

    # -- reading the results -------------------------------------------------------------------------
    def sample_of(self, column: str) -> np.ndarray:
        values = self.sample[:, self.sample_columns.index(column)] if len(self.sample) else np.empty(0)
        return values[np.isfinite(values)]

    def labelled_frame(self) -> pd.DataFrame:
        columns = [
            "variant",
            "shadow",
            "score",
            "prediction",
            "label",
            *(f"sensitive:{name}" for name in self.sensitive),
        ]
        return pd.DataFrame.from_records(self.labelled, columns=columns)
