"""Bearer tokens on the real service: each rule (no token, wrong token, right token) on each protected
endpoint.

/feedback always needs its token; /predict and /invocations need theirs when the environment sets
serving.auth.protect_predictions; /metrics and the health endpoints stay open. A protected endpoint
whose token variable is unset stops `serve` before it listens.
"""

from __future__ import annotations

import contextlib

import pytest
from serving_support import Workspace, start_service

pytestmark = pytest.mark.integration

FEEDBACK_TOKEN = "access-test-feedback-token"
PREDICTION_TOKEN = "access-test-prediction-token"


@contextlib.contextmanager
def environment_variables(**values: str | None):
    """Set (or, with None, unset) environment variables while a service starts; restored afterwards."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in values.items():
            if value is None:
                patch.delenv(name, raising=False)
            else:
                patch.setenv(name, value)
        yield


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def protected(workspace: Workspace, service_factory):
    with environment_variables(MLOPS_FEEDBACK_TOKEN=FEEDBACK_TOKEN, MLOPS_PREDICTION_TOKEN=PREDICTION_TOKEN):
        return service_factory(
            workspace.release("direct"), {"serving": {"auth": {"protect_predictions": True}}}
        )


@pytest.fixture(scope="module")
def open_predictions(workspace: Workspace, service_factory):
    with environment_variables(MLOPS_FEEDBACK_TOKEN=FEEDBACK_TOKEN, MLOPS_PREDICTION_TOKEN=None):
        return service_factory(workspace.release("direct"))


def documents(workspace: Workspace, service) -> dict[str, object]:
    """A valid body for each protected endpoint (the feedback is for a request answered just now)."""
    answered = service.post("/predict", {"instances": workspace.rows[:2]}, bearer(PREDICTION_TOKEN))
    assert answered.status == 200, answered.body
    return {
        "/predict": {"instances": workspace.rows[:2]},
        "/invocations": {"dataframe_records": workspace.rows[:2]},
        "/feedback": {"request_id": answered.json()["request_id"], "label": 1},
    }


@pytest.mark.parametrize("path", ["/predict", "/invocations", "/feedback"])
def test_each_protected_endpoint_refuses_a_missing_or_wrong_token_and_accepts_its_own(
    workspace: Workspace, protected, path: str
) -> None:
    document = documents(workspace, protected)[path]
    own, other = (
        (FEEDBACK_TOKEN, PREDICTION_TOKEN) if path == "/feedback" else (PREDICTION_TOKEN, FEEDBACK_TOKEN)
    )
    before = protected.metrics().get('prediction_errors_total{kind="unauthorized"}', 0)
    for headers in ({}, bearer("not-the-token"), bearer(other), {"Authorization": own}):
        refused = protected.post(path, document, headers)
        assert refused.status == 401, (headers, refused.body)
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert refused.json()["error"]["kind"] == "unauthorized"
        assert own.encode() not in refused.body and other.encode() not in refused.body
    accepted = protected.post(path, document, bearer(own))
    assert accepted.status == 200, accepted.body
    samples = protected.metrics()
    assert samples['prediction_errors_total{kind="unauthorized"}'] == before + 4
    assert samples['http_requests_total{endpoint="' + path + '",status="401",variant="none"}'] >= 4


def test_probes_and_metrics_stay_open_and_say_nothing_secret(protected) -> None:
    for path in ("/health/live", "/health/ready", "/metrics"):
        answer = protected.get(path)
        assert answer.status == 200, path
        assert FEEDBACK_TOKEN.encode() not in answer.body and PREDICTION_TOKEN.encode() not in answer.body
    assert FEEDBACK_TOKEN not in (protected.directory / "stderr.txt").read_text()


def test_predictions_are_open_unless_protected_but_feedback_never_is(
    workspace: Workspace, open_predictions
) -> None:
    answered = open_predictions.post("/predict", {"instances": workspace.rows[:1]})
    assert answered.status == 200
    assert open_predictions.post("/invocations", {"dataframe_records": workspace.rows[:1]}).status == 200
    label = {"request_id": answered.json()["request_id"], "label": 0}
    assert open_predictions.post("/feedback", label).status == 401
    assert open_predictions.post("/feedback", label, bearer(FEEDBACK_TOKEN)).status == 200


def refusal(workspace: Workspace, directory, settings: dict, **variables: str | None) -> str:
    """What `serve` said when it refused to start (a service that starts anyway is stopped, and fails)."""
    with environment_variables(**variables):
        try:
            service = start_service(workspace, directory, workspace.release("direct"), settings)
        except AssertionError as error:
            return str(error)
    service.stop()
    pytest.fail(f"serve started with {variables}")


@pytest.mark.parametrize(
    ("settings", "variables", "named"),
    [
        ({}, {"MLOPS_FEEDBACK_TOKEN": ""}, "MLOPS_FEEDBACK_TOKEN"),
        (
            {
                "serving": {
                    "auth": {"protect_predictions": True, "prediction_token_env": "TEAM_PREDICT_TOKEN"}
                }
            },
            {"MLOPS_FEEDBACK_TOKEN": FEEDBACK_TOKEN, "TEAM_PREDICT_TOKEN": None},
            "TEAM_PREDICT_TOKEN",
        ),
    ],
)
def test_serve_refuses_to_start_when_a_protected_endpoints_token_is_unset(
    workspace: Workspace, tmp_path, settings, variables, named
) -> None:
    message = refusal(workspace, tmp_path / "refused", settings, **variables)
    assert "exited with 2" in message and named in message
    assert "Traceback" not in message
