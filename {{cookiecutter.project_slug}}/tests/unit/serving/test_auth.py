"""Bearer tokens guard the state-changing paths (and, when asked, the prediction paths); deadlines bound
requests."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from {{ cookiecutter.package_name }}.config.environment import ServingAuth
from {{ cookiecutter.package_name }}.errors import ConfigError
from {{ cookiecutter.package_name }}.serving.auth import (
    AccessRules,
    BearerAuth,
    RequestDeadline,
    access_rules,
    presented_token,
)
from {{ cookiecutter.package_name }}.serving.metrics import ServiceMetrics

pytestmark = pytest.mark.unit

FEEDBACK_TOKEN = "feedback-secret-1"
PREDICTION_TOKEN = "prediction-secret-2"
ENVIRON = {"MLOPS_FEEDBACK_TOKEN": FEEDBACK_TOKEN, "MLOPS_PREDICTION_TOKEN": PREDICTION_TOKEN}


async def answering_app(scope, receive, send) -> None:
    """The app behind the middleware: answers 200 with the path."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["path"].encode()})


def call(app, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request through an ASGI app: (status, headers, body)."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()],
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    body = b"".join(message.get("body", b"") for message in sent[1:])
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


def guarded(protect_predictions: bool, metrics: ServiceMetrics | None = None) -> BearerAuth:
    rules = access_rules(ServingAuth(protect_predictions=protect_predictions), ENVIRON)
    return BearerAuth(answering_app, rules, metrics)


@pytest.mark.parametrize("path", ["/feedback", "/predict", "/invocations"])
@pytest.mark.parametrize(
    ("authorization", "accepted"),
    [
        (None, False),
        ("Bearer wrong-token", False),
        ("Basic " + FEEDBACK_TOKEN, False),
        ("Bearer " + FEEDBACK_TOKEN, "feedback"),
        ("Bearer " + PREDICTION_TOKEN, "prediction"),
    ],
)
def test_each_protected_path_accepts_only_its_own_token(path, authorization, accepted) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    status, answer_headers, body = call(guarded(protect_predictions=True), path, headers)
    own = "feedback" if path == "/feedback" else "prediction"
    if accepted == own:
        assert status == 200 and body == path.encode()
    else:
        assert status == 401
        assert answer_headers["www-authenticate"].startswith("Bearer")
        assert orjson.loads(body)["error"]["kind"] == "unauthorized"


@pytest.mark.parametrize(
    "path", ["/predict", "/invocations", "/metrics", "/health/live", "/health/ready", "/info"]
)
def test_open_paths_need_no_token_when_predictions_are_not_protected(path) -> None:
    assert call(guarded(protect_predictions=False), path)[0] == 200


@pytest.mark.parametrize("path", ["/metrics", "/health/live", "/health/ready"])
def test_probes_and_scrapes_stay_open_when_predictions_are_protected(path) -> None:
    assert call(guarded(protect_predictions=True), path)[0] == 200


def test_feedback_needs_a_token_even_when_predictions_are_open() -> None:
    assert call(guarded(protect_predictions=False), "/feedback")[0] == 401


def test_a_refusal_never_echoes_the_token_and_is_counted() -> None:
    metrics = ServiceMetrics()
    status, headers, body = call(
        guarded(True, metrics), "/feedback", {"Authorization": "Bearer " + PREDICTION_TOKEN}
    )
    assert status == 401
    assert PREDICTION_TOKEN not in body.decode() and PREDICTION_TOKEN not in str(headers)
    call(guarded(True, metrics), "/predict")
    rendered = metrics.render().decode()
    assert 'prediction_errors_total{kind="unauthorized"} 2.0' in rendered
    assert 'http_requests_total{endpoint="/feedback",status="401",variant="none"} 1.0' in rendered
    assert 'http_requests_total{endpoint="/predict",status="401",variant="none"} 1.0' in rendered


def test_any_of_several_comma_separated_tokens_is_accepted_for_rotation() -> None:
    rules = access_rules(ServingAuth(), {"MLOPS_FEEDBACK_TOKEN": "old-token, new-token"})
    app = BearerAuth(answering_app, rules)
    assert call(app, "/feedback", {"Authorization": "Bearer old-token"})[0] == 200
    assert call(app, "/feedback", {"Authorization": "Bearer new-token"})[0] == 200
    assert call(app, "/feedback", {"Authorization": "Bearer other"})[0] == 401


def test_an_unset_token_variable_of_a_protected_path_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="MLOPS_FEEDBACK_TOKEN"):
        access_rules(ServingAuth(), {})
    with pytest.raises(ConfigError, match="TEAM_PREDICT_TOKEN"):
        access_rules(
            ServingAuth(protect_predictions=True, prediction_token_env="TEAM_PREDICT_TOKEN"),
            {"MLOPS_FEEDBACK_TOKEN": "x"},
        )
    rules = access_rules(ServingAuth(protect_predictions=False), {"MLOPS_FEEDBACK_TOKEN": "x"})
    assert rules.protects("/feedback") and not rules.protects("/predict")


def test_the_bearer_scheme_is_case_insensitive_and_other_schemes_present_no_token() -> None:
    assert presented_token([(b"authorization", b"bearer abc")]) == b"abc"
    assert presented_token([(b"authorization", b"Basic abc")]) is None
    assert presented_token([]) is None
    assert AccessRules({"/feedback": (b"abc",)}).allows("/feedback", b"abc")


async def slow_app(scope, receive, send) -> None:
    await asyncio.sleep(5)
    await answering_app(scope, receive, send)


def test_a_request_past_its_deadline_is_a_counted_504() -> None:
    metrics = ServiceMetrics()
    status, _, body = call(RequestDeadline(slow_app, 0.05, metrics), "/predict")
    assert status == 504 and orjson.loads(body)["error"]["kind"] == "request_timeout"
    assert 'prediction_errors_total{kind="request_timeout"} 1.0' in metrics.render().decode()
    assert call(RequestDeadline(answering_app, 0.5, metrics), "/predict")[0] == 200


def test_probes_and_scrapes_are_not_bounded_by_the_deadline() -> None:
    assert call(RequestDeadline(slow_app_briefly, 0.01), "/health/ready")[0] == 200
    assert call(RequestDeadline(slow_app_briefly, 0.01), "/predict")[0] == 504


async def slow_app_briefly(scope, receive, send) -> None:
    await asyncio.sleep(0.1)
    await answering_app(scope, receive, send)
