"""GitHub REST API: the pull requests, sticky comments and releases the delivery workflows write.

Standard library only, so a workflow step can call it before anything heavy is imported. Every request
retries server errors, rate limits and dropped connections with exponential backoff; the failures a person
must fix (token, permissions, repository name, rejected input) become a GitHubError naming the likely cause.
The token is sent only to the configured API URL and never appears in a message, a log line or a repr.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.utils import parsedate_to_datetime
from http.client import HTTPException
from typing import Any

from {{ cookiecutter.package_name }}.errors import ProjectError

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
MAX_WAIT_SECONDS = 60.0
REQUEST_TIMEOUT_SECONDS = 30.0
PAGE_SIZE = 100
USER_AGENT = __name__.split(".")[0] + "-delivery"
REPOSITORY_PATTERN = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
PULL_REQUEST_SETTING = (
    'with GITHUB_TOKEN the repository setting "Allow GitHub Actions to create and approve pull requests" '
    "(Settings > Actions > General) must also be on"
)

_log = logging.getLogger(__name__)


class GitHubError(ProjectError):
    """GitHub refused a request or could not be reached; the message names the likely cause.

    `status` is the HTTP status of the last answer (None when none came) and `payload` its decoded body.
    """

    def __init__(self, message: str, *, status: int | None = None, payload: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.payload = payload


@dataclass(frozen=True)
class _Operation:
    """What a request needs from the token and the repository, used to explain its failure."""

    permission: str
    missing: str = ""
    invalid: str = ""
    opens_pull_request: bool = False


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Message
    data: Any


@dataclass(frozen=True)
class GitHubClient:
    """One repository on one GitHub host, reached with one token."""

    api_url: str
    repository: str
    token: str = field(repr=False)
    max_attempts: int = 4
    backoff_seconds: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "api_url", self.api_url.rstrip("/"))
        if not self.api_url.startswith(("https://", "http://")):
            raise GitHubError(f"GITHUB_API_URL={self.api_url!r} is not an http(s) URL")
        if not REPOSITORY_PATTERN.fullmatch(self.repository):
            raise GitHubError(f"GITHUB_REPOSITORY={self.repository!r} is not of the form OWNER/NAME")
        if not self.token:
            raise GitHubError("the GitHub token is empty: set GITHUB_TOKEN (or GH_TOKEN)")
        if self.max_attempts < 1:
            raise GitHubError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.backoff_seconds < 0:
            raise GitHubError(f"backoff_seconds must not be negative, got {self.backoff_seconds}")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> GitHubClient:
        """Read GITHUB_API_URL, GITHUB_REPOSITORY, GITHUB_TOKEN (or GH_TOKEN) and GITHUB_RETRY_BACKOFF.

        GitHub Actions sets GITHUB_API_URL and GITHUB_REPOSITORY in every job; the token must be passed to
        the step's environment explicitly.
        """
        repository = environ.get("GITHUB_REPOSITORY", "").strip()
        if not repository:
            raise GitHubError(
                "GITHUB_REPOSITORY is not set: set it to OWNER/NAME (GitHub Actions sets it in every job)"
            )
        token = (environ.get("GITHUB_TOKEN") or environ.get("GH_TOKEN") or "").strip()
        if not token:
            raise GitHubError(
                "GITHUB_TOKEN is not set (nor GH_TOKEN): pass the workflow token or a GitHub App token "
                "to this step's environment as GITHUB_TOKEN"
            )
        backoff = environ.get("GITHUB_RETRY_BACKOFF", "").strip()
        try:
            backoff_seconds = float(backoff) if backoff else 1.0
        except ValueError:
            raise GitHubError(f"GITHUB_RETRY_BACKOFF={backoff!r} is not a number of seconds") from None
        return cls(
            api_url=environ.get("GITHUB_API_URL", "").strip() or DEFAULT_API_URL,
            repository=repository,
            token=token,
            backoff_seconds=backoff_seconds,
        )

    @property
    def owner(self) -> str:
        return self.repository.split("/", 1)[0]

    # Pull requests

    def find_open_pull_request(self, head: str, base: str) -> dict | None:
        """The open pull request from branch `head` into `base`, or None.

        The API filters by head only when it carries the owner prefix (OWNER:BRANCH); without it the filter
        is silently ignored, so the prefix is added here.
        """
        qualified_head = head if ":" in head else f"{self.owner}:{head}"
        query = {"head": qualified_head, "base": base, "state": "open", "per_page": PAGE_SIZE}
        answer = self._request(
            "GET",
            self._path("pulls", query=query),
            _Operation(permission="pull-requests: read", invalid="the head filter must be OWNER:BRANCH"),
        )
        pulls = _expect(answer, list, "a list of pull requests")
        return pulls[0] if pulls else None

    def create_pull_request(self, title: str, head: str, base: str, body: str) -> dict:
        """Open a (non-draft) pull request from branch `head` into `base`."""
        payload = {"title": title, "head": head, "base": base, "body": body, "draft": False}
        answer = self._request(
            "POST",
            self._path("pulls"),
            _Operation(
                permission="pull-requests: write",
                missing=f"the branch {head!r} or {base!r}",
                invalid=(
                    f"the head branch {head!r} was not pushed, a pull request from {head!r} into {base!r} "
                    f"is already open, the base branch {base!r} does not exist, or there are no commits "
                    f"between them"
                ),
                opens_pull_request=True,
            ),
            payload=payload,
        )
        return _expect(answer, dict, "a pull request")

    def update_pull_request(self, number: int, title: str, body: str) -> dict:
        """Replace the title and description of pull request `number`."""
        answer = self._request(
            "PATCH",
            self._path("pulls", str(number)),
            _Operation(permission="pull-requests: write", missing=f"pull request #{number}"),
            payload={"title": title, "body": body},
        )
        return _expect(answer, dict, "a pull request")

    def upsert_pull_request(self, title: str, head: str, base: str, body: str) -> tuple[dict, bool]:
        """Update the open pull request from `head` into `base`, or open one; returns (pull request, created).

        Two runs racing to open the same pull request end with one: the loser's 422 "already exists" makes
        it find and update the winner's.
        """
        existing = self.find_open_pull_request(head, base)
        if existing is None:
            try:
                return self.create_pull_request(title, head, base, body), True
            except GitHubError as error:
                if not _reports_duplicate(error):
                    raise
                existing = self.find_open_pull_request(head, base)
                if existing is None:
                    raise
        return self.update_pull_request(existing["number"], title, body), False

    # Comments

    def upsert_comment(self, number: int, marker: str, body: str) -> dict:
        """Write the one comment on issue or pull request `number` that carries `marker`, editing it if found.

        The written body always contains the marker (prepended as an HTML comment line when absent), so the
        next call finds the same comment.
        """
        if not marker.strip() or "\n" in marker:
            raise ValueError(f"marker must be a non-empty single line, got {marker!r}")
        text = body if marker in body else f"{_marker_line(marker)}\n{body}"
        for comment in self._comments(number):
            if marker in (comment.get("body") or ""):
                answer = self._request(
                    "PATCH",
                    self._path("issues", "comments", str(comment["id"])),
                    _Operation(permission="issues: write", missing=f"comment {comment['id']}"),
                    payload={"body": text},
                )
                return _expect(answer, dict, "a comment")
        answer = self._request(
            "POST",
            self._path("issues", str(number), "comments"),
            _Operation(permission="issues: write", missing=f"issue or pull request #{number}"),
            payload={"body": text},
        )
        return _expect(answer, dict, "a comment")

    def _comments(self, number: int) -> Iterator[dict]:
        """Every comment on issue `number`, following the Link rel="next" pages."""
        url: str | None = self._path("issues", str(number), "comments", query={"per_page": PAGE_SIZE})
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            answer = self._request(
                "GET",
                url,
                _Operation(permission="issues: read", missing=f"issue or pull request #{number}"),
            )
            yield from _expect(answer, list, "a list of comments")
            url = _next_page(answer.headers.get("Link"))
            if url and not url.startswith(self.api_url + "/"):
                raise GitHubError(
                    f"GitHub pointed the next page of comments to {url}, outside {self.api_url}; "
                    f"not following it with the token (check GITHUB_API_URL)"
                )

    # Releases

    def create_release(self, tag: str, target: str, name: str, body: str) -> dict:
        """Publish release `tag` at commit or branch `target`; an existing release for the tag is returned."""
        payload = {
            "tag_name": tag,
            "target_commitish": target,
            "name": name,
            "body": body,
            "draft": False,
            "prerelease": False,
        }
        try:
            answer = self._request(
                "POST",
                self._path("releases"),
                _Operation(
                    permission="contents: write",
                    invalid=f"the tag {tag!r} is not a valid name or {target!r} is not a branch or commit",
                ),
                payload=payload,
            )
        except GitHubError as error:
            if not _reports_duplicate(error):
                raise
            answer = self._request(
                "GET",
                self._path("releases", "tags", urllib.parse.quote(tag, safe="")),
                _Operation(permission="contents: read", missing=f"a published release for tag {tag!r}"),
            )
        return _expect(answer, dict, "a release")

    # Transport

    def _path(self, *parts: str, query: Mapping[str, Any] | None = None) -> str:
        path = f"/repos/{self.repository}/" + "/".join(parts)
        return f"{path}?{urllib.parse.urlencode(query)}" if query else path

    def _request(self, method: str, path_or_url: str, operation: _Operation, payload: Any = None) -> _Answer:
        """One API call, retried on 5xx, 429, rate-limit 403 and connection failures."""
        url = path_or_url if "://" in path_or_url else self.api_url + path_or_url
        last_problem = ""
        last_answer: _Answer | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                answer = self._send(method, url, payload)
            except (OSError, HTTPException) as error:
                last_problem = f"could not connect to {self.api_url} ({_reason(error)})"
                delay = self._backoff(attempt)
            else:
                if answer.status < 400:
                    return answer
                if not _is_retryable(answer):
                    raise self._failure(method, url, answer, operation)
                last_answer = answer
                last_problem = f"last status {answer.status}: {_api_message(answer.data)}"
                delay = max(self._backoff(attempt), _server_delay(answer.headers))
            if attempt < self.max_attempts:
                delay = min(delay, MAX_WAIT_SECONDS)
                _log.warning(
                    "GitHub API %s %s: %s; retrying in %.2f s (attempt %d of %d)",
                    method,
                    _path_of(url),
                    last_problem,
                    delay,
                    attempt,
                    self.max_attempts,
                )
                time.sleep(delay)
        hint = (
            "check GITHUB_API_URL and the runner's network"
            if last_answer is None
            else "GitHub is failing or rate limiting; re-run the job later"
        )
        raise GitHubError(
            f"GitHub API {method} {_path_of(url)} gave up after {self.max_attempts} attempts; "
            f"{last_problem} ({hint})",
            status=last_answer.status if last_answer else None,
            payload=last_answer.data if last_answer else None,
        )

    def _send(self, method: str, url: str, payload: Any) -> _Answer:
        headers = {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {self.token}",
            "User-Agent": USER_AGENT,
            "X-GitHub-Api-Version": API_VERSION,
        }
        data = None
        if payload is not None:
            data = json.dumps(payload).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=utf-8"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
                return _Answer(response.status, response.headers, _decode(response.read()))
        except urllib.error.HTTPError as error:
            with error:
                return _Answer(error.code, error.headers, _decode(error.read()))

    def _backoff(self, attempt: int) -> float:
        return self.backoff_seconds * 2 ** (attempt - 1)

    def _failure(self, method: str, url: str, answer: _Answer, operation: _Operation) -> GitHubError:
        """The error for an answer retrying cannot fix, worded as what to change."""
        message = _api_message(answer.data)
        if answer.status == 401:
            cause = (
                "the token was rejected (Bad credentials): GITHUB_TOKEN (or GH_TOKEN) is expired, revoked, "
                f"or not a token for {self.api_url}; pass the job's GITHUB_TOKEN or a fresh GitHub App token"
            )
        elif answer.status == 403:
            cause = (
                f"the token lacks a permission ({message}): give the job "
                f"`permissions: {operation.permission}` (or the GitHub App that permission)"
            )
            if operation.opens_pull_request:
                cause += f"; {PULL_REQUEST_SETTING}"
        elif answer.status == 404:
            cause = (
                f"repository GITHUB_REPOSITORY={self.repository} was not found at {self.api_url} "
                f"or is not visible to the token"
            )
            if operation.missing:
                cause += f", or {operation.missing} does not exist"
        elif answer.status == 422:
            cause = f"GitHub rejected the request: {_api_details(answer.data)}"
            if operation.invalid:
                cause += f"; likely {operation.invalid}"
        else:
            cause = f"unexpected answer: {message}"
        return GitHubError(
            f"GitHub API {method} {_path_of(url)} answered {answer.status}: {cause}",
            status=answer.status,
            payload=answer.data,
        )


def _marker_line(marker: str) -> str:
    return marker if marker.lstrip().startswith("<!--") else f"<!-- {marker} -->"


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")[:500]


def _expect(answer: _Answer, kind: type, description: str) -> Any:
    if not isinstance(answer.data, kind):
        raise GitHubError(
            f"GitHub answered {answer.status} without {description}: {str(answer.data)[:200]!r} "
            f"(is GITHUB_API_URL the API root, e.g. https://api.github.com?)"
        )
    return answer.data


def _is_retryable(answer: _Answer) -> bool:
    if answer.status >= 500 or answer.status == 429:
        return True
    if answer.status != 403:
        return False
    rate_limited = answer.headers.get("X-RateLimit-Remaining") == "0" or "Retry-After" in answer.headers
    return rate_limited or "rate limit" in _api_message(answer.data).lower()


def _server_delay(headers: Message) -> float:
    """Seconds the server asked us to wait (Retry-After, or until X-RateLimit-Reset); 0 when it did not."""
    retry_after = headers.get("Retry-After")
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(retry_after).timestamp() - time.time())
            except (TypeError, ValueError):
                return 0.0
    reset = headers.get("X-RateLimit-Reset")
    if headers.get("X-RateLimit-Remaining") == "0" and reset:
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            return 0.0
    return 0.0


def _next_page(link_header: str | None) -> str | None:
    """The rel="next" URL of a Link header, or None on the last page."""
    for part in (link_header or "").split(","):
        match = re.match(r'\s*<([^>]*)>\s*;\s*rel="([^"]*)"', part)
        if match and "next" in match.group(2).split():
            return match.group(1)
    return None


def _api_message(data: Any) -> str:
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])
    return str(data)[:200] if data else "no message"


def _api_details(data: Any) -> str:
    """The API's message followed by each entry of its `errors` list."""
    details = []
    errors = data.get("errors") if isinstance(data, dict) else None
    for error in errors if isinstance(errors, list) else []:
        if isinstance(error, dict):
            words = [str(error[key]) for key in ("resource", "field", "code") if error.get(key)]
            details.append(str(error.get("message") or " ".join(words)))
        else:
            details.append(str(error))
    message = _api_message(data)
    return f"{message} ({'; '.join(details)})" if details else message


def _reports_duplicate(error: GitHubError) -> bool:
    """Whether a 422 says the thing being created already exists (pull request, release tag)."""
    if error.status != 422 or not isinstance(error.payload, dict):
        return False
    entries = error.payload.get("errors")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and (
            entry.get("code") == "already_exists" or "already exists" in str(entry.get("message", ""))
        ):
            return True
        if isinstance(entry, str) and "already exists" in entry:
            return True
    return False


def _path_of(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None) or error
    return str(reason) or type(error).__name__
