"""Who may call the service, and for how long a request may run: two small ASGI middlewares.

`BearerAuth` requires `Authorization: Bearer <token>` on the paths that change state (always) and on
the prediction paths when the environment says so. Tokens come from environment variables (a
Kubernetes Secret in the manifests), never from a file in git; each variable may hold several tokens
separated by commas, so a token can be rotated without downtime. Tokens are compared in constant
time and never logged or echoed. /metrics and the health endpoints are never protected: probes and
scrapers must reach them, and they say nothing secret.

`RequestDeadline` answers 504 when a request has not been answered within the environment's
`serving.request_timeout_seconds`, so a slow client or a stuck model call cannot hold a connection
(and its memory) forever.
"""

from __future__ import annotations

import asyncio
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from {{ cookiecutter.package_name }}.errors import ConfigError
from {{ cookiecutter.package_name }}.serving.metrics import NO_VARIANT

STATE_CHANGING_PATHS = ("/feedback",)
PREDICTION_PATHS = ("/predict", "/invocations")
PROBE_PATHS = ("/health/live", "/health/ready", "/metrics")
_BEARER = re.compile(r"^Bearer[ ]+([^ ].*)$", re.IGNORECASE)


@dataclass(frozen=True)
class AccessRules:
    """Path -> the tokens accepted there (any one of them). A path absent from `tokens` is open."""

    tokens: Mapping[str, tuple[bytes, ...]] = field(default_factory=dict)

    def protects(self, path: str) -> bool:
        return path in self.tokens

    def allows(self, path: str, presented: bytes | None) -> bool:
        """True when `path` is open or `presented` is one of its tokens (constant-time comparisons)."""
        accepted = self.tokens.get(path)
        if accepted is None:
            return True
        if presented is None:
            return False
        matched = False
        for token in accepted:  # compare with every token, so the time says nothing about which
            matched |= hmac.compare_digest(presented, token)
        return matched


def _tokens_from(variable: str, environ: Mapping[str, str], needed_by: str) -> tuple[bytes, ...]:
    tokens = tuple(part.strip().encode() for part in environ.get(variable, "").split(",") if part.strip())
    if not tokens:
        raise ConfigError(
            f"{needed_by} requires a bearer token, but the environment variable {variable} is not set "
            f"(set it, e.g. from a Kubernetes Secret; several tokens may be separated by commas)"
        )
    return tokens


def access_rules(auth, environ: Mapping[str, str]) -> AccessRules:
    """The rules of one environment's `serving.auth` settings, tokens read from `environ`.

    Raises ConfigError naming the variable when a protected path has no token, so the service
    refuses to start rather than start open.
    """
    tokens: dict[str, tuple[bytes, ...]] = {}
    feedback = _tokens_from(auth.feedback_token_env, environ, ", ".join(STATE_CHANGING_PATHS))
    for path in STATE_CHANGING_PATHS:
        tokens[path] = feedback
    if auth.protect_predictions:
        predictions = _tokens_from(
            auth.prediction_token_env,
            environ,
            f"{', '.join(PREDICTION_PATHS)} (serving.auth.protect_predictions is true)",
        )
        for path in PREDICTION_PATHS:
            tokens[path] = predictions
    return AccessRules(tokens)


def presented_token(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    for name, value in headers:
        if name.lower() == b"authorization":
            match = _BEARER.match(value.decode("latin-1"))
            return match.group(1).strip().encode("latin-1") if match else None
    return None


async def _send_json(send, status: int, document: dict, headers: list[tuple[bytes, bytes]]) -> None:
    body = orjson.dumps(document)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _count(metrics, path: str, status: int, kind: str) -> None:
    """Count a refusal under the service's existing counters (errors by kind, requests by status)."""
    if metrics is None:
        return
    metrics.errors.labels(kind).inc()
    metrics.requests.labels(path, NO_VARIANT, str(status)).inc()


class BearerAuth:
    """Refuses a protected path without one of its tokens: 401, `WWW-Authenticate: Bearer`, JSON body.

    `metrics` is the service's `ServiceMetrics` (optional): a refusal is counted as
    `prediction_errors_total{kind="unauthorized"}` and in `http_requests_total` with status 401.
    """

    def __init__(self, app, rules: AccessRules, metrics=None) -> None:
        self.app = app
        self.rules = rules
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not self.rules.protects(scope["path"]):
            await self.app(scope, receive, send)
            return
        token = presented_token(scope.get("headers", []))
        if self.rules.allows(scope["path"], token):
            await self.app(scope, receive, send)
            return
        _count(self.metrics, scope["path"], 401, "unauthorized")
        reason = "no bearer token" if token is None else "the bearer token is not valid here"
        challenge = b'Bearer error="invalid_token"' if token is not None else b"Bearer"
        await _send_json(
            send,
            401,
            {
                "error": {
                    "kind": "unauthorized",
                    "message": f"{scope['path']} requires a bearer token: {reason}",
                }
            },
            [(b"www-authenticate", challenge)],
        )


class RequestDeadline:
    """Answers 504 (JSON, counted as `kind="request_timeout"`) when a request outlives `seconds`.

    The handler is cancelled; if it had already started its answer, the connection is closed
    instead, since a status can no longer be sent. Probes and scrapes (`PROBE_PATHS`) are not
    bounded: they do no work a client controls, and a probe answered 504 would restart the pod.
    """

    def __init__(
        self, app, seconds: float | None, metrics=None, exempt: tuple[str, ...] = PROBE_PATHS
    ) -> None:
        self.app = app
        self.seconds = seconds
        self.metrics = metrics
        self.exempt = exempt

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not self.seconds or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            _count(self.metrics, scope["path"], 504, "request_timeout")
            if started:
                raise
            await _send_json(
                send,
                504,
                {
                    "error": {
                        "kind": "request_timeout",
                        "message": f"not answered within serving.request_timeout_seconds ({self.seconds} s)",
                    }
                },
                [],
            )
