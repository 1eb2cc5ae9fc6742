"""Ship the prediction log's chunks to the tracking server, and fetch every replica's chunks back.

Each replica writes its own log directory (in Kubernetes an `emptyDir`, gone with the pod). `ship`
uploads the chunks that changed since it last ran to one MLflow run per environment (tagged
`mlops.prediction_log`), under `prediction-log/<replica>/`, so several replicas never write the same
artifact. `fetch` downloads every replica's chunks into a directory that `monitor`, `feedback export`
and `experiment report` read like a local log. The tracking server the workflows already reach is
the only shared store needed; no chunk is lost when a pod goes, once it was shipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from {{ cookiecutter.package_name }}.config import ProjectConfig
from {{ cookiecutter.package_name }}.errors import ProjectError
from {{ cookiecutter.package_name }}.io.prediction_log import CHUNK_PATTERN
from {{ cookiecutter.package_name }}.io.registry import Registry

RUN_TAG = "mlops.prediction_log"
ARTIFACT_DIRECTORY = "prediction-log"
LEDGER = "shipped.json"
# After SIGTERM the shipper waits this long for the service to write out its last rows, well inside
# the pod's terminationGracePeriodSeconds.
FINAL_SHIP_DELAY_SECONDS = 10
REPLICA = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")


class ShippingError(ProjectError):
    """The log could not be shipped or fetched; nothing local was changed."""


@dataclass(frozen=True)
class Shipped:
    run_id: str | None  # None: nothing was ever shipped
    replica: str
    chunks: list[str]  # names uploaded this time
    unchanged: int


def replica_name(environ=os.environ) -> str:
    """This replica's name: the pod's (HOSTNAME in Kubernetes), else the machine's."""
    name = environ.get("HOSTNAME") or socket.gethostname()
    if not REPLICA.match(name):
        raise ShippingError(f"replica name {name!r} is not usable as an artifact directory (HOSTNAME)")
    return name


def log_run(registry: Registry, environment: str, create: bool) -> str | None:
    """The id of the environment's log run in the project's experiment (created when asked)."""
    client = registry.client
    experiment = client.get_experiment_by_name(registry.config.mlflow.experiment)
    if experiment is None and not create:
        return None
    if experiment is None:
        registry._ensure_experiment()
        experiment = client.get_experiment_by_name(registry.config.mlflow.experiment)
    found = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{environment}'", max_results=1
    )
    if found:
        return found[0].info.run_id
    if not create:
        return None
    run = client.create_run(
        experiment.experiment_id,
        tags={RUN_TAG: environment, "mlflow.runName": f"prediction-log-{environment}"},
    )
    return run.info.run_id


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ship(config: ProjectConfig, environment: str, directory: Path, replica: str | None = None) -> Shipped:
    """Upload this replica's chunks that changed since the last ship; a grown chunk is uploaded again."""
    directory = Path(directory)
    replica = replica or replica_name()
    chunks = sorted(directory.glob(CHUNK_PATTERN))
    ledger_path = directory / LEDGER
    ledger = json.loads(ledger_path.read_text(encoding="utf-8")) if ledger_path.is_file() else {}
    # A chunk purged or erased here since: what was shipped stays shipped, the ledger forgets it.
    ledger = {name: digest for name, digest in ledger.items() if (directory / name).is_file()}
    changed = [path for path in chunks if ledger.get(path.name) != _digest(path)]
    with Registry(config) as registry:
        run_id = log_run(registry, environment, create=bool(changed))
        uploaded = []
        for path in changed:
            digest = _digest(path)
            with tempfile.TemporaryDirectory() as scratch:
                # A snapshot: the writer may append while the upload runs; the next ship sends the rest.
                snapshot = Path(scratch) / path.name
                shutil.copyfile(path, snapshot)
                try:
                    registry.client.log_artifact(run_id, str(snapshot), f"{ARTIFACT_DIRECTORY}/{replica}")
                except Exception as error:
                    raise ShippingError(f"shipping {path.name} to run {run_id} failed: {error}") from None
            ledger[path.name] = digest
            uploaded.append(path.name)
            temporary = ledger_path.with_suffix(".tmp")
            temporary.write_text(json.dumps(ledger, sort_keys=True), encoding="utf-8")
            temporary.replace(ledger_path)  # one chunk shipped, one line of the ledger: never both lost
    return Shipped(run_id, replica, uploaded, len(chunks) - len(changed))


def fetch(config: ProjectConfig, environment: str, directory: Path) -> list[Path]:
    """Download every replica's shipped chunks into `directory` as `predictions-<replica>--<chunk>`.

    Files fetched before are replaced by their newer copy. Returns the files written.
    """
    directory = Path(directory)
    with Registry(config) as registry:
        run_id = log_run(registry, environment, create=False)
        if run_id is None:
            raise ShippingError(
                f"no prediction log of {environment} was shipped to {config.tracking_uri} yet "
                "(`records ship` runs beside each replica)"
            )
        client = registry.client
        written = []
        with tempfile.TemporaryDirectory() as scratch:
            local = Path(client.download_artifacts(run_id, ARTIFACT_DIRECTORY, scratch))
            directory.mkdir(parents=True, exist_ok=True)
            for replica in sorted(item for item in local.iterdir() if item.is_dir()):
                for chunk in sorted(replica.glob(CHUNK_PATTERN)):
                    name = chunk.name.removeprefix("predictions-")
                    target = directory / f"predictions-{replica.name}--{name}"
                    temporary = target.with_suffix(".part")
                    shutil.copyfile(chunk, temporary)
                    temporary.replace(target)
                    written.append(target)
    stamp = datetime.now(UTC).isoformat()
    with (directory / "fetched.jsonl").open("a", encoding="utf-8") as ledger:
        ledger.write(json.dumps({"time": stamp, "run_id": run_id, "files": len(written)}) + "\n")
    return written
