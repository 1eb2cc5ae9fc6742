"""The lifespan wrapper of the server: objects loaded with the models leave the collector's reach,
and a worker of several completes its start-up only once its models are loaded."""

from __future__ import annotations

import asyncio
import gc

import pytest

from {{ cookiecutter.package_name }}.serving.server import ServiceLifespan

pytestmark = pytest.mark.unit


class LoadingService:
    """Ready (or failed) a little after start-up, as the real service is after its models load."""

    def __init__(self, failure: str | None = None) -> None:
        self.ready = False
        self.failure = None
        self._outcome = failure
        self.stopped = False

    async def finish_loading(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._outcome is None:
            self.ready = True
        else:
            self.failure = self._outcome

    async def stop(self) -> None:
        self.stopped = True


def lifespan_app(service: LoadingService, delay: float):
    async def app(scope, receive, send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        asyncio.get_running_loop().create_task(service.finish_loading(delay))
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        await send({"type": "lifespan.shutdown.complete"})

    return app


async def run_lifespan(wrapper: ServiceLifespan, linger: float) -> list[tuple[float, str]]:
    """Drive start-up, wait `linger`, drive shutdown; the messages sent, with when they came."""
    inbox: asyncio.Queue = asyncio.Queue()
    sent: list[tuple[float, str]] = []
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def send(message) -> None:
        sent.append((loop.time() - started, message["type"]))

    await inbox.put({"type": "lifespan.startup"})
    task = loop.create_task(wrapper({"type": "lifespan"}, inbox.get, send))
    await asyncio.sleep(linger)
    await inbox.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(task, 5)
    return sent


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_what_is_loaded_with_the_models_is_frozen_once_they_are_ready(unfrozen) -> None:
    service = LoadingService()
    wrapper = ServiceLifespan(lifespan_app(service, delay=0.1), service)
    sent = asyncio.run(run_lifespan(wrapper, linger=0.3))
    assert [kind for _, kind in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert sent[0][0] < 0.05  # a single worker listens at once: /health/ready says 503 while loading
    assert gc.get_freeze_count() > 0


def test_a_worker_of_several_completes_start_up_only_when_loaded(unfrozen) -> None:
    service = LoadingService()
    wrapper = ServiceLifespan(lifespan_app(service, delay=0.2), service, hold_start_until_ready=True)
    sent = asyncio.run(run_lifespan(wrapper, linger=0.4))
    assert sent[0][1] == "lifespan.startup.complete" and sent[0][0] >= 0.2


def test_a_worker_whose_models_fail_fails_its_start_up_and_records_why(unfrozen, tmp_path) -> None:
    service = LoadingService(failure="artifact digest differs")
    failure_file = tmp_path / "failure.txt"
    wrapper = ServiceLifespan(
        lifespan_app(service, delay=0.05), service, hold_start_until_ready=True, failure_file=failure_file
    )
    sent = asyncio.run(run_lifespan(wrapper, linger=0.2))
    assert sent[0][1] == "lifespan.startup.failed"
    assert failure_file.read_text().strip() == "artifact digest differs"
    assert service.stopped and gc.get_freeze_count() == 0
