"""The GitHub client against the local stand-in for GitHub's REST API (tests/support/github_api.py)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import urllib3.util.retry
from support.github_api import FakeGitHub

from {{ cookiecutter.package_name }}.io.github import GitHubClient, GitHubError

pytestmark = pytest.mark.unit

REPOSITORY = "example-org/income-classifier"
TOKEN = "ghs_test-token-0123456789"
HEAD = "promote/staging"
BASE = "env/staging"
MARKER = "<!-- model-evidence -->"
DUPLICATE_PULL_REQUEST = {
    "message": "Validation Failed",
    "errors": [
        {
            "resource": "PullRequest",
            "code": "custom",
            "message": "A pull request already exists for example-org:promote/staging.",
        }
    ],
}


@pytest.fixture
def server() -> Iterator[FakeGitHub]:
    with FakeGitHub(repository=REPOSITORY, token=TOKEN) as fake:
        yield fake


def make_client(api_url: str, repository: str = REPOSITORY, token: str = TOKEN) -> GitHubClient:
    """A client whose retries back off 10 ms, so they take milliseconds."""
    return GitHubClient(api_url, repository, token, backoff_seconds=0.01)


@pytest.fixture
def client(server: FakeGitHub) -> GitHubClient:
    return make_client(server.url)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses of urllib3's retry (Retry-After, backoff, rate-limit reset), recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(urllib3.util.retry.time, "sleep", recorded.append)
    return recorded


def raw_request(
    server: FakeGitHub, method: str, path: str, payload: object = None, token: str | None = TOKEN
) -> tuple[int, dict]:
    """Call the stand-in without the client, to pin what it accepts."""
    headers = {"Accept": "application/vnd.github+json", "User-Agent": "tests"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(server.url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


# Configuration


def test_from_environment_reads_api_url_repository_token_and_backoff() -> None:
    client = GitHubClient.from_environment(
        {
            "GITHUB_API_URL": "https://ghe.example.com/api/v3/",
            "GITHUB_REPOSITORY": REPOSITORY,
            "GITHUB_TOKEN": TOKEN,
            "GITHUB_RETRY_BACKOFF": "0.01",
        }
    )
    assert client.api_url == "https://ghe.example.com/api/v3"
    assert (client.repository, client.owner, client.token) == (REPOSITORY, "example-org", TOKEN)
    assert client.backoff_seconds == 0.01


def test_from_environment_defaults_to_github_com_and_falls_back_to_gh_token() -> None:
    client = GitHubClient.from_environment({"GITHUB_REPOSITORY": REPOSITORY, "GH_TOKEN": TOKEN})
    assert client.api_url == "https://api.github.com"
    assert client.token == TOKEN


@pytest.mark.parametrize("missing", ["GITHUB_REPOSITORY", "GITHUB_TOKEN"])
def test_from_environment_names_the_missing_variable(missing: str) -> None:
    environ = {"GITHUB_REPOSITORY": REPOSITORY, "GITHUB_TOKEN": TOKEN}
    del environ[missing]
    with pytest.raises(GitHubError, match=missing):
        GitHubClient.from_environment(environ)


def test_from_environment_rejects_a_malformed_repository_or_backoff() -> None:
    with pytest.raises(GitHubError, match="GITHUB_REPOSITORY='income-classifier'"):
        GitHubClient.from_environment({"GITHUB_REPOSITORY": "income-classifier", "GITHUB_TOKEN": TOKEN})
    with pytest.raises(GitHubError, match="GITHUB_RETRY_BACKOFF='soon'"):
        GitHubClient.from_environment(
            {"GITHUB_REPOSITORY": REPOSITORY, "GITHUB_TOKEN": TOKEN, "GITHUB_RETRY_BACKOFF": "soon"}
        )


def test_importing_the_client_leaves_pygithub_unloaded_until_a_request_is_made() -> None:
    # Commands that call no API (promote --no-pr) import this module; PyGithub takes about a second to load.
    probe = f"import sys, {GitHubClient.__module__}; print('github' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"


def test_token_is_never_shown_in_repr_or_error_messages(server: FakeGitHub) -> None:
    wrong = make_client(server.url, token="ghs_wrong-secret")
    with pytest.raises(GitHubError) as raised:
        wrong.find_open_pull_request(HEAD, BASE)
    assert "ghs_wrong-secret" not in repr(wrong)
    assert "ghs_wrong-secret" not in str(raised.value)


def test_requests_carry_the_documented_headers(server: FakeGitHub, client: GitHubClient) -> None:
    client.create_pull_request("Promote", HEAD, BASE, "body")
    [request] = server.requests_to("POST", r"/pulls$")
    scheme, _, token = request.headers["Authorization"].partition(" ")
    assert (scheme.lower(), token) in {("bearer", TOKEN), ("token", TOKEN)}
    assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert request.headers["User-Agent"]
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.json == {"title": "Promote", "head": HEAD, "base": BASE, "body": "body", "draft": False}


# Pull requests


def test_upsert_pull_request_creates_once_then_updates_the_same_pull_request(
    server: FakeGitHub, client: GitHubClient
) -> None:
    first, created_first = client.upsert_pull_request("Promote v1", HEAD, BASE, "first")
    second, created_second = client.upsert_pull_request("Promote v2", HEAD, BASE, "second")

    assert (created_first, created_second) == (True, False)
    assert second["number"] == first["number"]
    assert (second["title"], second["body"]) == ("Promote v2", "second")
    assert all(r.path.startswith(f"/repos/{REPOSITORY}/") for r in server.requests)
    [pull] = server.open_pull_requests(head=HEAD, base=BASE)
    assert (pull["title"], pull["body"]) == ("Promote v2", "second")
    assert len(server.requests_to("POST", r"/pulls$")) == 1
    assert len(server.requests_to("PATCH", rf"/pulls/{first['number']}$")) == 1
    [lookup, *_] = server.requests_to("GET", r"/pulls$")
    assert lookup.query["head"] == f"example-org:{HEAD}"


def test_upsert_pull_request_updates_the_pull_request_a_concurrent_run_opened(
    server: FakeGitHub, client: GitHubClient
) -> None:
    # The other run opens its pull request after our lookup answered: the lookup is stale, the create a 422.
    theirs = server.add_pull_request(HEAD, BASE, title="Opened by the other run")
    server.fail_next("GET", r"/pulls$", 200, body=[])

    pull, created = client.upsert_pull_request("Promote v3", HEAD, BASE, "ours")

    assert created is False
    assert pull["number"] == theirs["number"]
    [only] = server.open_pull_requests(head=HEAD, base=BASE)
    assert (only["title"], only["body"]) == ("Promote v3", "ours")
    assert len(server.requests_to("GET", r"/pulls$")) == 2


def test_upsert_pull_request_treats_an_injected_duplicate_422_as_the_race(
    server: FakeGitHub, client: GitHubClient
) -> None:
    server.fail_next("POST", r"/pulls$", 422, body=DUPLICATE_PULL_REQUEST)
    server.fail_next("GET", r"/pulls$", 200, body=[])
    theirs = server.add_pull_request(HEAD, BASE)

    pull, created = client.upsert_pull_request("Promote", HEAD, BASE, "ours")

    assert (created, pull["number"]) == (False, theirs["number"])
    assert len(server.open_pull_requests(head=HEAD, base=BASE)) == 1


def test_upsert_pull_request_opens_a_new_one_after_the_previous_was_merged(
    server: FakeGitHub, client: GitHubClient
) -> None:
    first, _ = client.upsert_pull_request("Promote v1", HEAD, BASE, "")
    server.merge_pull_request(first["number"])

    second, created = client.upsert_pull_request("Promote v2", HEAD, BASE, "")

    assert created is True
    assert second["number"] != first["number"]


# Retries


def test_a_server_error_is_retried_until_the_pull_request_is_created(
    server: FakeGitHub, client: GitHubClient
) -> None:
    server.fail_next("POST", r"/pulls$", 500)

    pull = client.create_pull_request("Promote", HEAD, BASE, "")

    assert len(server.requests_to("POST", r"/pulls$")) == 2
    assert [p["number"] for p in server.open_pull_requests()] == [pull["number"]]


def test_persistent_server_errors_give_up_after_max_attempts(
    server: FakeGitHub, client: GitHubClient
) -> None:
    server.fail_next("POST", r"/pulls$", 502, times=100)

    with pytest.raises(GitHubError, match=r"gave up after 4 attempts; last status 502"):
        client.create_pull_request("Promote", HEAD, BASE, "")

    assert len(server.requests_to("POST", r"/pulls$")) == 4
    assert server.open_pull_requests() == []


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()))}),
        (429, {"Retry-After": "0"}),
    ],
    ids=["primary-rate-limit", "too-many-requests"],
)
def test_a_rate_limited_request_is_retried(
    server: FakeGitHub, client: GitHubClient, status: int, headers: dict[str, str]
) -> None:
    server.fail_next("POST", r"/pulls$", status, headers=headers, body={"message": "API rate limit exceeded"})

    client.create_pull_request("Promote", HEAD, BASE, "")

    assert len(server.requests_to("POST", r"/pulls$")) == 2


def test_retry_waits_follow_the_server_but_never_exceed_a_minute(
    server: FakeGitHub, client: GitHubClient, waits: list[float]
) -> None:
    server.fail_next("POST", r"/pulls$", 429, headers={"Retry-After": "7"})
    server.fail_next("POST", r"/pulls$", 403, headers={"Retry-After": "3600"})

    client.create_pull_request("Promote", HEAD, BASE, "")

    assert waits == [7.0, 60.0]


def test_server_errors_back_off_exponentially(
    server: FakeGitHub, client: GitHubClient, waits: list[float]
) -> None:
    server.fail_next("POST", r"/pulls$", 503, times=3)

    client.create_pull_request("Promote", HEAD, BASE, "")

    # urllib3 retries the first failure at once, then waits backoff * 2 ** (failures - 1).
    assert waits == pytest.approx([client.backoff_seconds * 2, client.backoff_seconds * 4])
    assert len(server.requests_to("POST", r"/pulls$")) == 4


def test_a_secondary_rate_limit_waits_a_minute_then_retries(
    server: FakeGitHub, client: GitHubClient, waits: list[float]
) -> None:
    server.fail_next(
        "PATCH", r"/pulls/\d+$", 403, body={"message": "You have exceeded a secondary rate limit."}
    )
    pull = server.add_pull_request(HEAD, BASE)

    updated = client.update_pull_request(pull["number"], "Promote", "again")

    assert waits == [60.0]
    assert updated["body"] == "again"
    assert len(server.requests_to("PATCH", r"/pulls/\d+$")) == 2


def test_a_rate_limit_resetting_after_more_than_a_minute_fails_at_once_naming_the_reset(
    server: FakeGitHub, client: GitHubClient, waits: list[float]
) -> None:
    reset = int(time.time()) + 3600
    server.fail_next(
        "GET",
        r"/pulls$",
        403,
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
        body={"message": "API rate limit exceeded for installation ID 42."},
    )

    with pytest.raises(GitHubError) as raised:
        client.find_open_pull_request(HEAD, BASE)

    expected = datetime.fromtimestamp(reset, UTC).strftime("%H:%M:%S UTC")
    assert f"re-run the job after {expected}" in str(raised.value)
    assert raised.value.status == 403
    assert (waits, len(server.requests)) == ([], 1)


def test_a_persistent_rate_limit_gives_up_after_max_attempts(
    server: FakeGitHub, client: GitHubClient, waits: list[float]
) -> None:
    server.fail_next(
        "POST", r"/comments$", 429, times=100, headers={"Retry-After": "1"}, body={"message": "Too many"}
    )
    pull = server.add_pull_request(HEAD, BASE)

    with pytest.raises(GitHubError, match=r"gave up after 4 attempts; last status 429: Too many"):
        client.upsert_comment(pull["number"], MARKER, "Evidence")

    assert waits == [1.0, 1.0, 1.0]
    assert len(server.requests_to("POST", r"/comments$")) == 4


def test_an_unreachable_api_is_retried_then_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api_url = f"http://127.0.0.1:{port}"
    client = make_client(api_url)

    with pytest.raises(GitHubError, match=rf"gave up after 4 attempts; could not connect to {api_url}"):
        client.find_open_pull_request(HEAD, BASE)


# Failures a person must fix


def test_a_rejected_token_is_reported_as_such(server: FakeGitHub) -> None:
    client = make_client(server.url, token="expired")
    with pytest.raises(GitHubError, match="token was rejected") as raised:
        client.upsert_pull_request("Promote", HEAD, BASE, "")
    assert raised.value.status == 401
    assert len(server.requests) == 1


def test_forbidden_pull_request_names_the_permission_and_the_repository_setting(
    server: FakeGitHub, client: GitHubClient
) -> None:
    server.fail_next("POST", r"/pulls$", 403, body={"message": "Resource not accessible by integration"})
    with pytest.raises(GitHubError) as raised:
        client.create_pull_request("Promote", HEAD, BASE, "")
    message = str(raised.value)
    assert "permissions: pull-requests: write" in message
    assert "Allow GitHub Actions to create and approve pull requests" in message
    assert "Resource not accessible by integration" in message
    assert len(server.requests_to("POST", r"/pulls$")) == 1


def test_forbidden_release_names_contents_write(server: FakeGitHub, client: GitHubClient) -> None:
    server.fail_next("POST", r"/releases$", 403, body={"message": "Resource not accessible by integration"})
    with pytest.raises(GitHubError, match="permissions: contents: write"):
        client.create_release("v1.0.0", "main", "v1.0.0", "")


def test_an_unknown_repository_names_github_repository(server: FakeGitHub) -> None:
    client = make_client(server.url, "example-org/typo")
    with pytest.raises(GitHubError, match="GITHUB_REPOSITORY=example-org/typo was not found"):
        client.find_open_pull_request(HEAD, BASE)


def test_a_head_branch_that_was_not_pushed_quotes_the_api_and_the_likely_cause(server: FakeGitHub) -> None:
    server.branches = {BASE}
    client = make_client(server.url)
    with pytest.raises(GitHubError) as raised:
        client.upsert_pull_request("Promote", HEAD, BASE, "")
    message = str(raised.value)
    assert "Validation Failed (PullRequest head invalid)" in message
    assert f"the head branch '{HEAD}' was not pushed" in message
    assert raised.value.status == 422


# Sticky comments


def test_upsert_comment_posts_once_then_edits_the_same_comment_across_pages(server: FakeGitHub) -> None:
    server.page_size_cap = 2
    client = make_client(server.url)
    pull = server.add_pull_request(HEAD, BASE)
    for index in range(4):
        server.add_comment(pull["number"], f"review comment {index}")

    first = client.upsert_comment(pull["number"], MARKER, f"{MARKER}\nEvidence for version 1")
    for index in range(4, 7):
        server.add_comment(pull["number"], f"review comment {index}")
    second = client.upsert_comment(pull["number"], MARKER, f"{MARKER}\nEvidence for version 2")

    assert second["id"] == first["id"]
    carrying = [c for c in server.comments_on(pull["number"]) if MARKER in c["body"]]
    assert [c["body"] for c in carrying] == [f"{MARKER}\nEvidence for version 2"]
    assert len(server.requests_to("POST", r"/comments$")) == 1
    assert len(server.requests_to("PATCH", rf"/issues/comments/{first['id']}$")) == 1
    # First call reads 2 pages of other comments; the second finds the marker on page 3 and stops there.
    pages = [r.query.get("page", "1") for r in server.requests_to("GET", r"/comments$")]
    assert pages == ["1", "2", "1", "2", "3"]


def test_upsert_comment_prepends_a_marker_the_body_lacks(server: FakeGitHub, client: GitHubClient) -> None:
    pull = server.add_pull_request(HEAD, BASE)
    comment = client.upsert_comment(pull["number"], "model-evidence", "Evidence")
    again = client.upsert_comment(pull["number"], "model-evidence", "Evidence, updated")
    assert comment["body"] == "<!-- model-evidence -->\nEvidence"
    assert (again["id"], again["body"]) == (comment["id"], "<!-- model-evidence -->\nEvidence, updated")


def test_upsert_comment_refuses_to_follow_a_next_page_on_another_host(
    server: FakeGitHub, client: GitHubClient
) -> None:
    pull = server.add_pull_request(HEAD, BASE)
    comments = f"/repos/{REPOSITORY}/issues/{pull['number']}/comments"
    with FakeGitHub(repository=REPOSITORY, token=TOKEN) as elsewhere:
        for other_host in ("https://elsewhere.example", elsewhere.url):
            server.fail_next(
                "GET",
                r"/comments$",
                200,
                headers={"Link": f'<{other_host}{comments}?page=2>; rel="next"'},
                body=[{"id": 999, "body": "a review comment"}],
            )
            with pytest.raises(GitHubError, match="not following it with the token"):
                client.upsert_comment(pull["number"], MARKER, "Evidence")
        assert elsewhere.requests == []
    assert server.requests_to("POST", r"/comments$") == []


# Releases


def test_create_release_twice_returns_the_existing_release(server: FakeGitHub, client: GitHubClient) -> None:
    first = client.create_release("model-v3", "main", "Model version 3", "notes")
    second = client.create_release("model-v3", "main", "Model version 3", "notes")

    assert second["id"] == first["id"]
    assert [r["tag_name"] for r in server.releases.values()] == ["model-v3"]
    assert server.requests_to("GET", r"/releases/tags/model-v3$")
    assert first["draft"] is False and first["prerelease"] is False


# The stand-in itself


def test_stand_in_refuses_a_pull_request_without_base(server: FakeGitHub) -> None:
    status, body = raw_request(server, "POST", f"/repos/{REPOSITORY}/pulls", {"title": "t", "head": HEAD})
    assert status == 422
    assert body["errors"] == [{"resource": "PullRequest", "code": "missing_field", "field": "base"}]


def test_stand_in_refuses_a_head_filter_without_the_owner(server: FakeGitHub) -> None:
    status, body = raw_request(server, "GET", f"/repos/{REPOSITORY}/pulls?head={HEAD}")
    assert (status, body["message"]) == (422, "Validation Failed")


def test_stand_in_refuses_a_second_open_pull_request_for_the_same_branches(server: FakeGitHub) -> None:
    payload = {"title": "t", "head": HEAD, "base": BASE}
    assert raw_request(server, "POST", f"/repos/{REPOSITORY}/pulls", payload)[0] == 201
    status, body = raw_request(server, "POST", f"/repos/{REPOSITORY}/pulls", payload)
    assert status == 422
    assert body["errors"][0]["message"] == f"A pull request already exists for example-org:{HEAD}."


@pytest.mark.parametrize(
    ("token", "path", "expected"),
    [
        (None, f"/repos/{REPOSITORY}/pulls", (401, "Bad credentials")),
        ("wrong", f"/repos/{REPOSITORY}/pulls", (401, "Bad credentials")),
        (TOKEN, "/repos/someone-else/income-classifier/pulls", (404, "Not Found")),
        (TOKEN, f"/repos/{REPOSITORY}/deployments", (404, "Not Found")),
    ],
    ids=["no-token", "wrong-token", "other-repository", "unknown-endpoint"],
)
def test_stand_in_answers_like_github(
    server: FakeGitHub, token: str | None, path: str, expected: tuple[int, str]
) -> None:
    status, body = raw_request(server, "GET", path, token=token)
    assert (status, body["message"]) == expected
