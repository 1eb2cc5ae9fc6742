"""A warm interpreter that runs each CLI call in a fresh fork: the command line without its import cost.

A CLI process spends about five seconds importing MLflow, scikit-learn, SHAP and matplotlib before it
does anything. This server imports them once, then forks for every call. The fork runs the console
script's entry point (read from pyproject.toml, as an installer would) with the caller's arguments,
working directory, environment, stdin, stdout and stderr, and reports its exit code. The client learns
the fork's process id and passes on the signals it receives, so a `serve` started this way stops on
SIGTERM as it does on its own; a client that is killed takes the fork with it. Each call is still
its own process with fresh state, and what a workflow step runs is still a command name looked up on
PATH: only the interpreter start-up is shared.

Run as `python cli_server.py SOCKET PACKAGE`; `CliServer` starts and stops it for a test session.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import pkgutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path

CLIENT = Path(__file__).with_name("cli_client.py")
# The project's heavy dependencies; importing them here is what every fork is spared.
WARM_IMPORTS = (
    "numpy",
    "pandas",
    "scipy.stats",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.pipeline",
    "matplotlib.pyplot",
    "shap",
    "fairlearn.metrics",
    "mlflow",
    "mlflow.sklearn",
    "mlflow.pyfunc",
    "mlflow.tracking",
    "mlflow.tracking.request_header.registry",
    "mlflow.tracing.export.mlflow_v3",
    "mlflow.tracing.processor.mlflow_v3",
    "mlflow.models",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.tracking.rest_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "mlflow.store.model_registry.rest_store",
    "mlflow.store.artifact.local_artifact_repo",
    "mlflow.store.artifact.mlflow_artifacts_repo",
    "opentelemetry.sdk.metrics",
    "pyarrow.pandas_compat",
    "narwhals.stable.v2",
    "skops.io",
    "regopy",
    "jinja2",
    "yaml",
    "pydantic",
    "git",
    "github",
    "email.policy",
    "netrc",
)


def _fill_caches() -> None:
    """Fill, once, the caches each fork would otherwise fill for itself: MLflow maps every installed
    distribution to its modules (about 0.7 s) the first time a process saves or loads a model."""
    from mlflow.utils import requirements_utils

    with contextlib.suppress(Exception):
        requirements_utils._init_modules_to_packages_map()
        requirements_utils._init_packages_to_modules_map()


def _warm_up(package: str) -> None:
    """Import the dependencies and every module of the package, without running any of it."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    for name in WARM_IMPORTS:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    root = importlib.import_module(package)
    for module in pkgutil.walk_packages(root.__path__, f"{package}."):
        if module.name.endswith("__main__"):
            continue
        # a module that cannot be imported early is imported by the fork instead
        with contextlib.suppress(Exception):
            importlib.import_module(module.name)
    _fill_caches()


def _receive(connection: socket.socket) -> tuple[dict, list[int]]:
    header, fds, _, _ = socket.recv_fds(connection, 8, 3)
    while len(header) < 8:
        header += connection.recv(8 - len(header))
    (size,) = struct.unpack("!Q", header)
    payload = b""
    while len(payload) < size:
        chunk = connection.recv(min(size - len(payload), 1 << 16))
        if not chunk:
            raise ConnectionError("the client went away")
        payload += chunk
    return json.loads(payload), fds


def _exit_code(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    print(value, file=sys.stderr)
    return 1


def _end_with_the_client(connection: socket.socket, reported: threading.Event) -> None:
    """The client sends nothing after its request: the connection ends only when the client does. A
    client that went away before the command reported its exit code (it was killed) takes the
    command's process group with it."""
    with contextlib.suppress(OSError):
        while connection.recv(1):
            pass
    if not reported.is_set():
        os.killpg(os.getpid(), signal.SIGKILL)


def _run_call(connection: socket.socket, listener: socket.socket) -> None:
    """In the fork: become the caller's process, run the entry point, report its exit code."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # subprocess needs to reap its own children
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    listener.close()
    request, fds = _receive(connection)
    for target, source in enumerate(fds):
        os.dup2(source, target)
        os.close(source)
    # A process group of its own, and the client told its pid: the client passes on the signals it gets.
    os.setpgid(0, 0)
    connection.sendall(struct.pack("!q", os.getpid()))
    reported = threading.Event()
    threading.Thread(target=_end_with_the_client, args=(connection, reported), daemon=True).start()
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    module_name, _, attribute = request["entry_point"].partition(":")
    # What a console script does: sys.argv holds the arguments, the entry point is called bare.
    sys.argv = [request["script"], *request["argv"]]
    try:
        entry = getattr(importlib.import_module(module_name), attribute)
        code = _exit_code(entry())
    except SystemExit as stop:
        code = _exit_code(stop.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        reported.set()
        connection.sendall(struct.pack("!i", code))
        os._exit(code)


def serve(socket_path: str, package: str) -> None:
    _warm_up(package)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forks are reaped by the kernel
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(socket_path)
        listener.listen(64)
        print("ready", flush=True)
        while True:
            connection, _ = listener.accept()
            if os.fork() == 0:
                _run_call(connection, listener)
            connection.close()


@dataclass
class CliServer:
    """Starts the server for a project's source tree; `command()` is what a console script runs."""

    source: Path
    package: str
    directory: Path
    process: subprocess.Popen | None = field(default=None, init=False)

    @property
    def socket_path(self) -> Path:
        return self.directory / "cli.sock"

    def start(self) -> CliServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        environment = {**os.environ, "PYTHONPATH": str(self.source), "MPLBACKEND": "Agg"}
        environment.pop("MLFLOW_TRACKING_URI", None)
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__)), str(self.socket_path), self.package],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env=environment,
            text=True,
        )
        if self.process.stdout.readline().strip() != "ready":
            self.stop()
            raise RuntimeError(f"the CLI server did not start (exit {self.process.returncode})")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def command(self, script: str, entry_point: str) -> list[str]:
        """The argument vector that runs console script `script` (`module:function`) through this server."""
        return [sys.executable, "-I", "-S", str(CLIENT), str(self.socket_path), script, entry_point]


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
