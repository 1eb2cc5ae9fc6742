"""Many POSTs to a service on 127.0.0.1, over a few keep-alive connections at once."""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def post_many(
    port: int, requests: list[tuple[str, Any, dict[str, str]]], concurrency: int = 8
) -> list[Answer | None]:
    """POST each (path, document, headers) over `concurrency` keep-alive connections; the answers in
    the order of the requests. A request that fails at the connection level (the server went away)
    answers None."""
    answers: list[Answer | None] = [None] * len(requests)

    def client(offset: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            for index in range(offset, len(requests), concurrency):
                path, document, headers = requests[index]
                try:
                    connection.request(
                        "POST",
                        path,
                        body=orjson.dumps(document),
                        headers={"Content-Type": "application/json", **headers},
                    )
                    response = connection.getresponse()
                    answers[index] = Answer(
                        response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
                    )
                except (OSError, http.client.HTTPException):
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(offset,)) for offset in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def post_feedback(port: int, labels: list[dict], token: str, per_request: int = 500) -> None:
    """POST `labels` ({"request_id", "label"[, "row"]} each) to /feedback with the bearer `token`,
    `per_request` a request, one request at a time; every request must be accepted."""
    auth = {"Authorization": f"Bearer {token}"}
    requests = [
        ("/feedback", labels[start : start + per_request], auth)
        for start in range(0, len(labels), per_request)
    ]
    answers = post_many(port, requests, concurrency=1)
    refused = [
        answer.body if answer else None for answer in answers if answer is None or answer.status != 200
    ]
    assert not refused, refused[:1]
