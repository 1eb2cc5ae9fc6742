"""The service's Prometheus metrics, on a registry of its own (no process-wide globals).

Names follow Prometheus conventions: counters end in `_total`, durations are `_seconds`, labels are
few and of low cardinality (endpoint, variant, status, label, kind).

With more than one worker process (`serving.workers`), the server sets `PROMETHEUS_MULTIPROC_DIR`
before the workers start: each worker then writes its values to files there, and /metrics, whichever
worker answers it, sums every worker's files (prometheus-client's multiprocess mode). In that mode the
process collectors (CPU, memory, open files, garbage collection) are left out: prometheus-client
cannot aggregate them across processes, and one worker's figures would pass for the service's. Run
one worker per replica (the default) when those resource metrics matter.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    generate_latest,
    multiprocess,
    platform_collector,
    process_collector,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SCORE_BUCKETS = tuple(step / 10 for step in range(1, 11))
NO_VARIANT = "none"
MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_mode() -> bool:
    """Whether this process is one of several workers sharing their metrics through files."""
    return bool(os.environ.get(MULTIPROCESS_DIRECTORY))


class ServiceMetrics:
    """Every metric the service exports; `render()` is the /metrics body."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.multiprocess = multiprocess_mode()
        self.registry = CollectorRegistry()
        if not self.multiprocess:
            process_collector.ProcessCollector(registry=self.registry)
            platform_collector.PlatformCollector(registry=self.registry)
            gc_collector.GCCollector(registry=self.registry)
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by endpoint, variant and status code",
            ["endpoint", "variant", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from request received to response ready, by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.scores = Histogram(
            "prediction_score",
            "Positive-class probability of each scored row, by variant",
            ["variant"],
            buckets=SCORE_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "predictions",
            "Rows scored, by variant and predicted label (shadow rows under the challenger)",
            ["variant", "label"],
            registry=self.registry,
        )
        self.errors = Counter(
            "prediction_errors", "Requests refused or failed, by kind", ["kind"], registry=self.registry
        )
        self.model_info = Gauge(
            "model_info",
            "The versions served: 1 per variant",
            ["variant", "version", "strategy"],
            registry=self.registry,
            # Every worker serves the same versions: one series per variant, from the live workers.
            multiprocess_mode="livemax",
        )
        self.shadow_disagreements = Counter(
            "shadow_disagreements",
            "Rows whose shadow challenger label differs from the champion's",
            registry=self.registry,
        )
        self.feedback = Counter(
            "feedback_received",
            "Labels received on /feedback, by variant",
            ["variant"],
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "model_batch_rows",
            "Rows per model call (micro-batching)",
            ["variant"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048),
            registry=self.registry,
        )

    def render(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        # A fresh registry per scrape: the collector reads every worker's files as they are now.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)


def mark_worker_dead(pid: int | None = None) -> None:
    """Drop an ended worker's live gauges (model_info) from the multiprocess files; its counters stay."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(pid if pid is not None else os.getpid())
