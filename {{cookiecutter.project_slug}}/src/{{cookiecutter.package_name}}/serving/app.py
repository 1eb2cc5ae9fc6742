"""The HTTP service: a Starlette app of small async handlers over one `PredictionService`.

The service object holds everything the handlers share (models, batchers, metrics, the prediction
log, the feedback store); the lifespan starts it and stops it, so nothing lives in module globals.
Models are loaded in the background after start-up: /health/live answers at once, /health/ready
is 503 until both versions are loaded and their digests verified. Feature flags (serving/flags.py)
are evaluated once per request, before routing, with the routing key as the targeting key.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from {{ cookiecutter.package_name }}.io.feedback import FeedbackStore, ServedRequest, create_sqlite_directory
from {{ cookiecutter.package_name }}.io.prediction_log import PredictionLog, RecordPrivacy
from {{ cookiecutter.package_name }}.serving.auth import AccessRules, BearerAuth, RequestDeadline
from {{ cookiecutter.package_name }}.serving.batching import MicroBatcher, QueueFull, scoring_executor
from {{ cookiecutter.package_name }}.serving.flags import DEFAULT_POLL_INTERVAL_MS, RequestFlags, ServiceFlags
from {{ cookiecutter.package_name }}.serving.metrics import NO_VARIANT, ServiceMetrics
from {{ cookiecutter.package_name }}.serving.model import CHALLENGER, CHAMPION, Scores, ServedModel
from {{ cookiecutter.package_name }}.serving.routing import RoutingPolicy, choose_variant, hash_routing_key
from {{ cookiecutter.package_name }}.serving.schema import InvalidInput, rows_from_invocation, rows_from_records

REQUEST_ID_HEADER = "X-Request-ID"
ROUTING_KEY_HEADER = "X-Routing-Key"
RECENT_REQUESTS = 100_000
RETRY_AFTER_SECONDS = "1"


def json_response(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


class ModelFailure(Exception):
    """The model raised while scoring valid rows: a 500, counted under the variant that failed."""

    def __init__(self, variant: str, error: BaseException) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.variant = variant


@dataclass(frozen=True)
class ServiceOptions:
    """What the service needs besides the models: its environment, limits and where it writes."""

    environment: str
    policy: RoutingPolicy
    max_request_rows: int
    max_body_bytes: int
    batch_window_seconds: float
    predict_batch_rows: int
    max_queued_rows: int
    prediction_log_dir: Path
    prediction_log_max_bytes: int
    feedback_url: str
    flags: dict[str, Any]  # kept for callers that still pass it; the live values come from flag_file
    flag_file: Path | None = None  # the environment's flagd file; None: every flag has its default
    flag_poll_interval_ms: int = DEFAULT_POLL_INTERVAL_MS
    access: AccessRules = field(default_factory=AccessRules)
    record_privacy: RecordPrivacy | None = None
    request_timeout_seconds: float | None = None


class PredictionService:
    """Loads the variants, scores through their batchers, and records every answered row."""

    def __init__(self, options: ServiceOptions, load_models: Callable[[], dict[str, ServedModel]]) -> None:
        self.options = options
        self._load_models = load_models
        self.metrics = ServiceMetrics()
        self.flags = ServiceFlags(options.flag_file, options.flag_poll_interval_ms)
        self._explainer = None
        self.models: dict[str, ServedModel] = {}
        self.batchers: dict[str, MicroBatcher] = {}
        self.ready = False
        self.failure: str | None = None
        self.on_failure: Callable[[str], None] | None = None
        self.log: PredictionLog | None = None
        self.store: FeedbackStore | None = None
        self._recent: OrderedDict[str, ServedRequest] = OrderedDict()
        self._background: set[asyncio.Task] = set()
        self._loading: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        await asyncio.to_thread(self.flags.start)
        await asyncio.to_thread(create_sqlite_directory, self.options.feedback_url)
        self.store = FeedbackStore(self.options.feedback_url)
        self.log = PredictionLog(
            self.options.prediction_log_dir,
            self.options.prediction_log_max_bytes,
            self._remember_served,
            privacy=self.options.record_privacy,
        )
        self._loading = asyncio.get_running_loop().create_task(self._load())

    async def _load(self) -> None:
        try:
            models = await asyncio.to_thread(self._load_models)
        except Exception as error:
            self.failure = str(error) or type(error).__name__
            if self.on_failure is not None:
                self.on_failure(self.failure)
            return
        self._executor = scoring_executor()
        for variant, model in models.items():
            batcher = MicroBatcher(
                model.score,
                window_seconds=self.options.batch_window_seconds,
                max_batch_rows=self.options.predict_batch_rows,
                max_queued_rows=self.options.max_queued_rows,
                name=variant,
                on_batch=self.metrics.batch_rows.labels(variant).observe,
                executor=self._executor,
            )
            batcher.start()
            self.batchers[variant] = batcher
            self.metrics.model_info.labels(variant, str(model.version), self.options.policy.strategy).set(1)
        self.models = models
        self.ready = True

    async def stop(self) -> None:
        """Finish in-flight shadow work and batches, then write the log out and close the store."""
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loading
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        for batcher in self.batchers.values():
            await batcher.stop()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        if self.log is not None:
            self.log.close()
        if self.store is not None:
            self.store.close()
        self.flags.stop()

    # -- scoring ---------------------------------------------------------------------------------
    async def score(
        self, rows: list[list[Any]], routing_key: str | None, endpoint: str, started: float | None = None
    ) -> tuple[str, str, ServedModel, Scores, RequestFlags]:
        """Route, score and log `rows`; returns the request id, variant, model, scores and flags.

        `started` (perf_counter) is when the request arrived: the log records each request's status
        and latency from it, a failed one as a single record without a score, so monitoring can judge
        a canary's error rate and p99.
        """
        started = time.perf_counter() if started is None else started
        request_id = uuid.uuid4().hex
        policy = self.options.policy
        routed = policy.has_challenger and policy.strategy != "direct"
        flags = self.flags.evaluate(
            routing_key if routing_key is not None else request_id,
            routing=routed,
            weight=policy.strategy in ("canary", "ab"),
            explain=endpoint == "/predict",
        )
        decision = choose_variant(
            policy,
            routing_key,
            request_id,
            challenger_weight=flags.challenger_weight,
            challenger_enabled=flags.challenger_enabled,
        )
        model = self.models[decision.variant]
        served = ServedRequest(
            request_id,
            self.options.environment,
            decision.variant,
            model.version,
            decision.experiment_id,
            len(rows),
        )
        key_hash = hash_routing_key(routing_key)
        try:
            scores = await self.batchers[decision.variant].score(rows)
        except QueueFull:
            raise
        except Exception as error:
            self._record_failure(served, model, key_hash, endpoint, 500, started)
            raise ModelFailure(decision.variant, error) from error
        self._recent[request_id] = served
        if len(self._recent) > RECENT_REQUESTS:
            self._recent.popitem(last=False)
        self._record(served, model, rows, scores, key_hash, endpoint, shadow=False, started=started)
        if decision.shadow and CHALLENGER in self.batchers:
            task = asyncio.get_running_loop().create_task(
                self._score_shadow(served, rows, scores, key_hash, endpoint)
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return request_id, decision.variant, model, scores, flags

    async def explain(self, rows: list[list[Any]]):
        """SHAP contributions of the champion for `rows`, off the event loop (shap loads on first use)."""

        def run():
            if self._explainer is None:
                from {{ cookiecutter.package_name }}.serving.explain import RowExplainer

                champion = self.models[CHAMPION]
                self._explainer = RowExplainer(champion.pipeline, list(champion.schema.columns))
            return self._explainer.explain(rows)

        return await asyncio.to_thread(run)

    async def _score_shadow(
        self,
        served: ServedRequest,
        rows: list[list[Any]],
        answered: Scores,
        key_hash: str | None,
        endpoint: str,
    ) -> None:
        """The challenger scores the same rows after the answer; nothing here reaches the client."""
        started = time.perf_counter()
        try:
            scores = await self.batchers[CHALLENGER].score(rows)
        except Exception:
            self.metrics.errors.labels("shadow_failure").inc()
            self._record_failure(
                served, self.models[CHALLENGER], key_hash, endpoint, 500, started, shadow=True
            )
            return
        disagreements = sum(a != b for a, b in zip(scores.labels, answered.labels, strict=True))
        if disagreements:
            self.metrics.shadow_disagreements.inc(disagreements)
        self._record(
            served, self.models[CHALLENGER], rows, scores, key_hash, endpoint, shadow=True, started=started
        )

    def _record_failure(
        self,
        served: ServedRequest,
        model: ServedModel,
        key_hash: str | None,
        endpoint: str,
        status: int,
        started: float,
        shadow: bool = False,
    ) -> None:
        """One record for a request the model failed: its status and latency, no score."""
        self.log.append(
            [
                {
                    "request_id": served.request_id,
                    "row": 0,
                    "time": datetime.now(UTC).isoformat(),
                    "environment": served.environment,
                    "endpoint": endpoint,
                    "variant": model.variant,
                    "model_version": model.version,
                    "shadow": shadow,
                    "experiment_id": served.experiment_id,
                    "routing_key_hash": key_hash,
                    "features": {},
                    "score": None,
                    "label": None,
                    "status": status,
                    "latency_ms": (time.perf_counter() - started) * 1000,
                }
            ]
        )

    def _record(
        self,
        served: ServedRequest,
        model: ServedModel,
        rows: list[list[Any]],
        scores: Scores,
        key_hash: str | None,
        endpoint: str,
        shadow: bool,
        started: float,
    ) -> None:
        variant = model.variant
        latency_ms = (time.perf_counter() - started) * 1000
        for score, label in zip(scores.scores, scores.labels, strict=True):
            self.metrics.scores.labels(variant).observe(float(score))
            self.metrics.predictions.labels(variant, str(label)).inc()
        now = datetime.now(UTC).isoformat()
        columns = model.schema.columns
        self.log.append(
            {
                "request_id": served.request_id,
                "row": index,
                "time": now,
                "environment": served.environment,
                "endpoint": endpoint,
                "variant": variant,
                "model_version": model.version,
                "shadow": shadow,
                "experiment_id": served.experiment_id,
                "routing_key_hash": key_hash,
                "features": dict(zip(columns, row, strict=True)),
                "score": float(score),
                "label": label,
                "status": 200,
                "latency_ms": latency_ms,
            }
            for index, (row, score, label) in enumerate(zip(rows, scores.scores, scores.labels, strict=True))
        )

    def _remember_served(self, records: list[dict[str, Any]]) -> None:
        """Runs on the log's thread: store each answered request once, for /feedback to find."""
        # The log's (keyed) routing-key hash goes with the request, so erasure finds its later labels.
        requests = [
            replace(served, routing_key_hash=record["routing_key_hash"])
            for record in records
            if record["row"] == 0
            and not record["shadow"]
            and (served := self._recent.get(record["request_id"])) is not None
        ]
        self.store.record_requests(requests)

    def find_served(self, request_id: str) -> ServedRequest | None:
        return self._recent.get(request_id) or self.store.served(request_id)

    # -- description -----------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        policy = self.options.policy
        return {
            "environment": self.options.environment,
            "ready": self.ready,
            "strategy": policy.strategy,
            "challenger_weight": policy.challenger_weight,
            "shadow_fraction": policy.shadow_fraction if policy.strategy == "shadow" else None,
            "experiment_id": policy.experiment_id if policy.strategy == "ab" else None,
            "models": {
                variant: {
                    "version": model.version,
                    "artifact_digest": model.artifact_digest,
                    "columns": list(model.schema.columns),
                    "classes": model.classes,
                    "compiled_preprocessing": model.compiled is not None,
                }
                for variant, model in self.models.items()
            },
            "flags": self.flags.describe(),
            "limits": {
                "max_batch_rows": self.options.max_request_rows,
                "max_body_bytes": self.options.max_body_bytes,
                "batch_window_ms": self.options.batch_window_seconds * 1000,
            },
        }


async def read_json(request: Request, limit: int) -> Any:
    """The request body as JSON: application/json, at most `limit` bytes, valid JSON."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise InvalidInput(
            f"Content-Type must be application/json, got {content_type or 'none'!r}",
            status=415,
            kind="wrong_content_type",
        )
    declared = request.headers.get("content-length")
    too_large = InvalidInput(
        f"the body is larger than serving.max_body_bytes ({limit} bytes)", status=413, kind="body_too_large"
    )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidInput(f"the body is not valid JSON: {error}", status=400, kind="invalid_json") from None


class _Outcome:
    """What a handler tells the metrics wrapper about the request it answered."""

    __slots__ = ("variant",)

    def __init__(self) -> None:
        self.variant = NO_VARIANT


def create_app(service: PredictionService) -> Starlette:
    """The Starlette application serving `service`."""
    metrics = service.metrics
    options = service.options

    def measured(endpoint: str, handler):
        async def endpoint_handler(request: Request) -> Response:
            started = time.perf_counter()
            outcome = _Outcome()
            try:
                response = await handler(request, outcome)
            except InvalidInput as error:
                metrics.errors.labels(error.kind).inc()
                response = json_response(error.to_dict(), error.status)
            except QueueFull as error:
                metrics.errors.labels("queue_full").inc()
                response = json_response(
                    {"error": {"kind": "queue_full", "message": f"overloaded: {error}; retry shortly"}},
                    503,
                    {"Retry-After": RETRY_AFTER_SECONDS},
                )
            except ModelFailure as error:
                outcome.variant = error.variant
                metrics.errors.labels("model_failure").inc()
                response = json_response({"error": {"kind": "model_failure", "message": str(error)}}, 500)
            except Exception as error:
                metrics.errors.labels("internal").inc()
                response = json_response(
                    {"error": {"kind": "internal", "message": f"{type(error).__name__}: {error}"}}, 500
                )
            metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
            metrics.requests.labels(endpoint, outcome.variant, str(response.status_code)).inc()
            return response

        return endpoint_handler

    def require_ready() -> None:
        if not service.ready:
            raise InvalidInput(
                "the models are not loaded yet" if service.failure is None else service.failure,
                status=503,
                kind="not_ready",
            )

    async def predict(request: Request, outcome: _Outcome) -> Response:
        started = time.perf_counter()
        require_ready()
        document = await read_json(request, options.max_body_bytes)
        if not isinstance(document, dict) or "instances" not in document:
            raise InvalidInput('the body must be an object {"instances": [{column: value, ...}, ...]}')
        rows = rows_from_records(
            document["instances"], service.models[CHAMPION].schema, options.max_request_rows, "instances"
        )
        request_id, variant, model, scores, flags = await service.score(
            rows, request.headers.get(ROUTING_KEY_HEADER), "/predict", started
        )
        outcome.variant = variant
        predictions = [
            {"label": label, "score": float(score), "variant": variant, "model_version": model.version}
            for score, label in zip(scores.scores, scores.labels, strict=True)
        ]
        answer = {"request_id": request_id, "predictions": predictions}
        if flags.explain_predictions and variant == CHAMPION:
            answer["explanation"] = await explained(rows, predictions)
        return json_response(answer, headers={REQUEST_ID_HEADER: request_id})

    async def explained(rows: list[list[Any]], predictions: list[dict[str, Any]]) -> dict[str, Any]:
        """Add each row's contributions to its prediction; a failed explanation keeps the answer."""
        try:
            explanations = await service.explain(rows)
        except Exception as error:
            metrics.errors.labels("explanation_failure").inc()
            return {"error": f"{type(error).__name__}: {error}"}
        for prediction, contributions in zip(predictions, explanations.contributions, strict=True):
            prediction["contributions"] = contributions
        return explanations.summary()

    async def invocations(request: Request, outcome: _Outcome) -> Response:
        started = time.perf_counter()
        require_ready()
        document = await read_json(request, options.max_body_bytes)
        rows = rows_from_invocation(document, service.models[CHAMPION].schema, options.max_request_rows)
        request_id, variant, _, scores, _ = await service.score(
            rows, request.headers.get(ROUTING_KEY_HEADER), "/invocations", started
        )
        outcome.variant = variant
        return json_response({"predictions": scores.labels}, headers={REQUEST_ID_HEADER: request_id})

    async def feedback(request: Request, outcome: _Outcome) -> Response:
        require_ready()
        document = await read_json(request, options.max_body_bytes)
        items = document if isinstance(document, list) else [document]
        if not items:
            raise InvalidInput("the body holds no feedback", kind="empty_batch")
        classes = service.models[CHAMPION].classes
        accepted, variants = [], []
        for index, item in enumerate(items):
            if not isinstance(item, dict) or "request_id" not in item or "label" not in item:
                raise InvalidInput(
                    f"feedback {index}: expected an object with request_id and label", row=index
                )
            request_id, label, row = item["request_id"], item["label"], item.get("row", 0)
            served = service.find_served(str(request_id))
            if served is None:
                raise InvalidInput(
                    f"feedback {index}: unknown request_id {request_id!r}",
                    status=404,
                    kind="unknown_request",
                    row=index,
                    column="request_id",
                )
            if isinstance(label, bool) or label not in classes:
                raise InvalidInput(
                    f"feedback {index}: label {label!r} is not one of the target's classes {classes}",
                    kind="invalid_label",
                    row=index,
                    column="label",
                )
            if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < served.rows:
                raise InvalidInput(
                    f"feedback {index}: row {row!r} is not a row of request {request_id} "
                    f"(0..{served.rows - 1})",
                    row=index,
                    column="row",
                )
            accepted.append((served.request_id, row, label))
            variants.append(served.variant)
        await asyncio.to_thread(service.store.add_feedback, accepted)
        for variant in variants:
            metrics.feedback.labels(variant).inc()
        return json_response({"accepted": len(accepted)})

    async def live(request: Request, outcome: _Outcome) -> Response:
        return json_response({"status": "live"})

    async def ready(request: Request, outcome: _Outcome) -> Response:
        if service.ready:
            versions = {variant: model.version for variant, model in service.models.items()}
            return json_response({"status": "ready", "versions": versions})
        status = "failed" if service.failure else "loading"
        return json_response({"status": status, "error": service.failure}, 503)

    async def metrics_text(request: Request, outcome: _Outcome) -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    async def info(request: Request, outcome: _Outcome) -> Response:
        return json_response(service.info())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    routes = [
        Route("/predict", measured("/predict", predict), methods=["POST"]),
        Route("/invocations", measured("/invocations", invocations), methods=["POST"]),
        Route("/feedback", measured("/feedback", feedback), methods=["POST"]),
        Route("/health/live", measured("/health/live", live), methods=["GET"]),
        Route("/health/ready", measured("/health/ready", ready), methods=["GET"]),
        Route("/metrics", measured("/metrics", metrics_text), methods=["GET"]),
        Route("/info", measured("/info", info), methods=["GET"]),
    ]
    middleware = [
        Middleware(BearerAuth, rules=options.access, metrics=metrics),
        Middleware(RequestDeadline, seconds=options.request_timeout_seconds, metrics=metrics),
    ]
    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
