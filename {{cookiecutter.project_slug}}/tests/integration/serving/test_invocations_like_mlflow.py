"""/invocations answers exactly what `mlflow models serve` answers for the same model and rows."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from serving_support import Answer, Service, Workspace, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mlflow_server(workspace: Workspace, tmp_path_factory: pytest.TempPathFactory):
    """`mlflow models serve` of the champion, one worker, the local environment (no network)."""
    port = free_port()
    model_uri = f"models:/{workspace.config.mlflow.registered_model}/{workspace.champion}"
    log = (tmp_path_factory.mktemp("mlflow-serve") / "stderr.txt").open("wb")
    # mlflow starts `uvicorn` from PATH: the interpreter's own scripts directory comes first.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    environment = {**os.environ, "MLFLOW_TRACKING_URI": workspace.config.tracking_uri, "PATH": path}
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local"]
    process = subprocess.Popen(
        [*command, "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        cwd=workspace.root,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    server = Service(process, port, workspace.root)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, f"mlflow models serve exited with {process.returncode}"
        try:
            if server.get("/ping").status == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        server.stop()
        pytest.fail("mlflow models serve did not answer /ping within 120 s")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def service(workspace: Workspace, service_factory):
    return service_factory(workspace.release("direct"))


def payloads(rows: list[dict]) -> dict[str, dict]:
    columns = list(rows[0])
    return {
        "dataframe_split": {
            "dataframe_split": {"columns": columns, "data": [list(row.values()) for row in rows]}
        },
        "dataframe_records": {"dataframe_records": rows},
        "instances": {"instances": rows},
    }


@pytest.mark.parametrize("form", ["dataframe_split", "dataframe_records", "instances"])
def test_invocations_equal_mlflow_models_serve(
    workspace: Workspace, service, mlflow_server, form: str
) -> None:
    rows = [row for row in workspace.rows if None not in row.values()][:80]
    document = payloads(rows)[form]
    theirs: Answer = mlflow_server.post("/invocations", document)
    ours: Answer = service.post("/invocations", document)
    assert theirs.status == 200, theirs.body[:500]
    assert ours.status == 200, ours.body[:500]
    assert ours.json() == theirs.json()
