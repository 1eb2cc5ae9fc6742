"""The service's real application under a real uvicorn on 127.0.0.1, in a thread of the test process.

For the tests that control what the models do (a stand-in pipeline, or a registered one made to fail
on purpose): everything else is the service as `serve` runs it, reached over real HTTP.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import uvicorn

READY_TIMEOUT_SECONDS = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_app_in_thread(app, is_ready: Callable[[int], bool]) -> tuple[int, Callable[[], None]]:
    """Start `app` on a free port; wait until `is_ready(port)`; returns (port, stop). `stop` returns
    once uvicorn has shut down, the application's lifespan included."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join(20)

    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not _ready(is_ready, port):
        if not thread.is_alive() or time.monotonic() > deadline:
            stop()
            raise AssertionError(f"the service on port {port} did not become ready")
        time.sleep(0.05)
    return port, stop


def _ready(is_ready: Callable[[int], bool], port: int) -> bool:
    try:
        return is_ready(port)
    except OSError:
        return False
