"""GitHub REST API: the pull requests, sticky comments and releases the delivery workflows write.

PyGithub makes the calls and retries server errors, rate limits and dropped connections with exponential
backoff (its urllib3 retry, honouring Retry-After and the rate-limit reset, never waiting more than a minute).
This module decides which calls to make so that a re-run changes the same pull request, comment or release,
and turns the failures a person must fix (token, permissions, repository name, rejected input) into a
GitHubError naming the likely cause. The token is sent only to the configured API host and never appears in
a message, a log line or a repr.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from {{ cookiecutter.package_name }}.errors import ProjectError

# PyGithub logs every failed attempt at INFO; the command prints one actionable line instead.
logging.getLogger("github").setLevel(logging.WARNING)

if TYPE_CHECKING:
    from github.GithubException import GithubException
    from github.PullRequest import PullRequest
    from github.Repository import Repository

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
MAX_WAIT_SECONDS = 60
REQUEST_TIMEOUT_SECONDS = 30
PAGE_SIZE = 100
RETRIED_STATUSES = (*range(500, 600), 429)  # PyGithub's retry adds the 403s that are rate limits
USER_AGENT = __name__.split(".")[0] + "-delivery"
REPOSITORY_PATTERN = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
PULL_REQUEST_SETTING = (
    'with GITHUB_TOKEN the repository setting "Allow GitHub Actions to create and approve pull requests" '
    "(Settings > Actions > General) must also be on"
)

_Result = TypeVar("_Result")


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
    """One endpoint call and what it needs from the token and the repository, used to explain its failure."""

    method: str
    endpoint: str
    permission: str
    missing: str = ""
    invalid: str = ""
    opens_pull_request: bool = False
    follows_pages: bool = False


@dataclass(frozen=True)
class GitHubClient:
    """One repository on one GitHub host, reached with one token.

    `max_attempts` counts the first try; `backoff_seconds` is urllib3's backoff factor (waits of 0, 2, 4 ...
    times it).
    """

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

        GitHub Actions sets GITHUB_API_URL and GITHUB_REPOSITORY in every job; the token (the job's
        GITHUB_TOKEN or one minted for a GitHub App) must be passed to the step's environment explicitly.
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

        The listing gives PyGithub an incomplete object; its raw_data reads the pull request itself (one GET).
        """
        pull = self._open_pull_request(head, base)
        if pull is None:
            return None
        number = pull.number
        return self._call(
            _Operation("GET", f"pulls/{number}", "pull-requests: read", missing=f"pull request #{number}"),
            lambda _: _expect(pull.raw_data, "number", "a pull request"),
        )

    def create_pull_request(self, title: str, head: str, base: str, body: str) -> dict:
        """Open a (non-draft) pull request from branch `head` into `base`."""
        operation = _Operation(
            "POST",
            "pulls",
            "pull-requests: write",
            missing=f"the branch {head!r} or {base!r}",
            invalid=(
                f"the head branch {head!r} was not pushed, a pull request from {head!r} into {base!r} "
                f"is already open, the base branch {base!r} does not exist, or there are no commits "
                f"between them"
            ),
            opens_pull_request=True,
        )
        return self._call(
            operation,
            lambda repository: _expect(
                repository.create_pull(base=base, head=head, title=title, body=body, draft=False).raw_data,
                "number",
                "a pull request",
            ),
        )

    def update_pull_request(self, number: int, title: str, body: str) -> dict:
        """Replace the title and description of pull request `number`."""

        def update(repository: Repository) -> dict:
            repository.get_pull(number).edit(title=title, body=body)
            # edit() leaves raw_data as it was before the change, so read the pull request again.
            return _expect(repository.get_pull(number).raw_data, "number", "a pull request")

        operation = _Operation(
            "PATCH", f"pulls/{number}", "pull-requests: write", missing=f"pull request #{number}"
        )
        return self._call(operation, update)

    def upsert_pull_request(self, title: str, head: str, base: str, body: str) -> tuple[dict, bool]:
        """Update the open pull request from `head` into `base`, or open one; returns (pull request, created).

        Two runs racing to open the same pull request end with one: the loser's 422 "already exists" makes
        it find and update the winner's.
        """
        existing = self._open_pull_request(head, base)
        if existing is None:
            try:
                return self.create_pull_request(title, head, base, body), True
            except GitHubError as error:
                if not _reports_duplicate(error):
                    raise
                existing = self._open_pull_request(head, base)
                if existing is None:
                    raise
        return self.update_pull_request(existing.number, title, body), False

    def _open_pull_request(self, head: str, base: str) -> PullRequest | None:
        """The newest open pull request from `head` into `base`, as listed (reading it costs no request).

        The API filters by head only when it carries the owner prefix (OWNER:BRANCH); without it the filter
        is silently ignored, so the prefix is added here.
        """
        qualified_head = head if ":" in head else f"{self.owner}:{head}"
        operation = _Operation(
            "GET", "pulls", "pull-requests: read", invalid="the head filter must be OWNER:BRANCH"
        )
        return self._call(
            operation,
            lambda repository: next(
                iter(repository.get_pulls(state="open", head=qualified_head, base=base)), None
            ),
        )

    # Comments

    def upsert_comment(self, number: int, marker: str, body: str) -> dict:
        """Write the one comment on issue or pull request `number` that carries `marker`, editing it if found.

        The written body always contains the marker (prepended as an HTML comment line when absent), so the
        next call finds the same comment. The listing stops at the first page holding the marker.
        """
        if not marker.strip() or "\n" in marker:
            raise ValueError(f"marker must be a non-empty single line, got {marker!r}")
        text = body if marker in body else f"{_marker_line(marker)}\n{body}"
        comments = f"issues/{number}/comments"
        found = self._call(
            _Operation(
                "GET",
                comments,
                "issues: read",
                missing=f"issue or pull request #{number}",
                follows_pages=True,
            ),
            lambda repository: next(
                (c for c in repository.get_issue(number).get_comments() if marker in (c.body or "")), None
            ),
        )
        if found is None:
            return self._call(
                _Operation("POST", comments, "issues: write", missing=f"issue or pull request #{number}"),
                lambda repository: _expect(
                    repository.get_issue(number).create_comment(text).raw_data, "id", "a comment"
                ),
            )

        def edit(repository: Repository) -> dict:
            found.edit(text)
            # edit() leaves raw_data as it was before the change, so read the comment again.
            return _expect(repository.get_issue(number).get_comment(found.id).raw_data, "id", "a comment")

        comment_id = found.id
        operation = _Operation(
            "PATCH", f"issues/comments/{comment_id}", "issues: write", missing=f"comment {comment_id}"
        )
        return self._call(operation, edit)

    # Releases

    def create_release(self, tag: str, target: str, name: str, body: str) -> dict:
        """Publish release `tag` at commit or branch `target`; an existing release for the tag is returned."""
        create = _Operation(
            "POST",
            "releases",
            "contents: write",
            invalid=f"the tag {tag!r} is not a valid name or {target!r} is not a branch or commit",
        )
        try:
            release = self._call(
                create,
                lambda repository: repository.create_git_release(
                    tag, name=name, message=body, draft=False, prerelease=False, target_commitish=target
                ),
            )
        except GitHubError as error:
            if not _reports_duplicate(error):
                raise
            lookup = _Operation(
                "GET",
                f"releases/tags/{tag}",
                "contents: read",
                missing=f"a published release for tag {tag!r}",
            )
            release = self._call(lookup, lambda repository: repository.get_release(tag))
        return _expect(release.raw_data, "id", "a release")

    # Transport

    @cached_property
    def _repository(self) -> Repository:
        """The repository as a lazy PyGithub object: building it sends no request.

        PyGithub is imported here, not with this module, because importing it takes about a second that
        commands calling no API should not pay.
        """
        from github import Auth, Github, GithubRetry

        retry = GithubRetry(
            total=self.max_attempts - 1,
            status_forcelist=list(RETRIED_STATUSES),
            allowed_methods=None,  # every verb, as a duplicate pull request or release is detected
            raise_on_status=False,  # the last answer becomes a GithubException carrying its status and body
            backoff_factor=self.backoff_seconds,
            backoff_max=MAX_WAIT_SECONDS,
            retry_after_max=MAX_WAIT_SECONDS,
            max_rate_limit_wait=MAX_WAIT_SECONDS,
        )
        client = Github(
            auth=Auth.Token(self.token),
            base_url=self.api_url,
            timeout=REQUEST_TIMEOUT_SECONDS,
            user_agent=USER_AGENT,
            per_page=PAGE_SIZE,
            retry=retry,
            # PyGithub spaces requests (0.25 s) and writes (1 s) for clients sending many; a job sends a
            # handful, and a secondary rate limit is retried after a minute anyway.
            seconds_between_requests=None,
            seconds_between_writes=None,
            lazy=True,
            api_version=API_VERSION,
        )
        return client.get_repo(self.repository)

    def _call(self, operation: _Operation, action: Callable[[Repository], _Result]) -> _Result:
        """Run `action` on the repository; what GitHub or the network refused becomes a GitHubError."""
        import requests
        from github.GithubException import GithubException

        try:
            return action(self._repository)
        except GithubException as error:
            raise self._failure(operation, error) from error
        except AssertionError as error:
            if not operation.follows_pages:
                raise
            # PyGithub asserts that a next-page link stays on the API host before sending the token there.
            raise GitHubError(
                f"GitHub API {self._where(operation)} pointed the next page to {error} outside "
                f"{self.api_url}; not following it with the token (check GITHUB_API_URL)"
            ) from error
        except requests.RequestException as error:
            raise GitHubError(
                f"GitHub API {self._where(operation)} gave up after {self.max_attempts} attempts; could "
                f"not connect to {self.api_url} ({_reason(error)}) (check GITHUB_API_URL and the runner's "
                f"network)"
            ) from error

    def _where(self, operation: _Operation) -> str:
        return f"{operation.method} /repos/{self.repository}/{operation.endpoint}"

    def _failure(self, operation: _Operation, error: GithubException) -> GitHubError:
        """The error for an answer retrying did not or cannot fix, worded as what to change."""
        from github.GithubException import RateLimitExceededExceedsMaxWait

        status, data, headers = error.status, error.data, error.headers or {}
        message = _api_message(data)
        where = self._where(operation)
        if isinstance(error, RateLimitExceededExceedsMaxWait):
            return GitHubError(
                f"GitHub API {where} answered {status}: the token's rate limit allows the next request in "
                f"{error.wait:.0f} s, longer than the {MAX_WAIT_SECONDS} s this client waits; re-run the job "
                f"after {_reset_time(headers) or 'the limit resets'}",
                status=status,
                payload=data,
            )
        if _is_retried(status, headers, message):
            reset = _reset_time(headers)
            if data is None and reset:
                message = "rate limit exhausted"  # the retry consumed the body of a rate-limited 403
            hint = f"the rate limit resets at {reset}" if reset else "GitHub is failing or rate limiting"
            return GitHubError(
                f"GitHub API {where} gave up after {self.max_attempts} attempts; last status {status}: "
                f"{message} ({hint}; re-run the job later)",
                status=status,
                payload=data,
            )
        if status == 401:
            cause = (
                "the token was rejected (Bad credentials): GITHUB_TOKEN (or GH_TOKEN) is expired, revoked, "
                f"or not a token for {self.api_url}; pass the job's GITHUB_TOKEN or a fresh GitHub App token"
            )
        elif status == 403:
            cause = (
                f"the token lacks a permission ({message}): give the job "
                f"`permissions: {operation.permission}` (or the GitHub App that permission)"
            )
            if operation.opens_pull_request:
                cause += f"; {PULL_REQUEST_SETTING}"
        elif status == 404:
            cause = (
                f"repository GITHUB_REPOSITORY={self.repository} was not found at {self.api_url} "
                f"or is not visible to the token"
            )
            if operation.missing:
                cause += f", or {operation.missing} does not exist"
        elif status == 422:
            cause = f"GitHub rejected the request: {_api_details(data)}"
            if operation.invalid:
                cause += f"; likely {operation.invalid}"
        else:
            cause = f"unexpected answer: {message}"
        return GitHubError(f"GitHub API {where} answered {status}: {cause}", status=status, payload=data)


def _marker_line(marker: str) -> str:
    return marker if marker.lstrip().startswith("<!--") else f"<!-- {marker} -->"


def _expect(data: dict, key: str, description: str) -> dict:
    """`data` when it looks like the object asked for; a server that is not the API root answers otherwise."""
    if not isinstance(data, dict) or key not in data:
        raise GitHubError(
            f"GitHub answered without {description}: {str(data)[:200]!r} "
            f"(is GITHUB_API_URL the API root, e.g. https://api.github.com?)"
        )
    return data


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    """A response header by case-insensitive name (PyGithub lower-cases some header maps, not others)."""
    for key, value in headers.items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _is_retried(status: int, headers: Mapping[str, Any], message: str) -> bool:
    """Whether the retry policy retries this answer, so receiving it means the attempts ran out."""
    if status in RETRIED_STATUSES:
        return True
    if status != 403:
        return False
    rate_limited = _header(headers, "X-RateLimit-Remaining") == "0" or _header(headers, "Retry-After")
    return bool(rate_limited) or "rate limit" in message.lower()


def _reset_time(headers: Mapping[str, Any]) -> str:
    """When an exhausted rate limit resets (X-RateLimit-Reset, UTC), or "" when the answer does not say."""
    reset = _header(headers, "X-RateLimit-Reset")
    if _header(headers, "X-RateLimit-Remaining") != "0" or not reset or not reset.isdigit():
        return ""
    return datetime.fromtimestamp(int(reset), UTC).strftime("%H:%M:%S UTC")


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


def _reason(error: BaseException) -> str:
    """The innermost cause of a requests failure (urllib3 wraps it in MaxRetryError, requests wraps that)."""
    reason: BaseException = error
    while True:
        inner = getattr(reason, "reason", None)
        if not isinstance(inner, BaseException):
            inner = reason.args[0] if reason.args and isinstance(reason.args[0], BaseException) else None
        if inner is None or inner is reason:
            return str(reason) or type(reason).__name__
        reason = inner
