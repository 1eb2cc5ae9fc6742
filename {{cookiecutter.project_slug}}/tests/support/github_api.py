"""A local stand-in for the part of GitHub's REST API the delivery workflows use.

It is strict where GitHub is strict and stricter where GitHub is silently lenient, so a client that passes
against it sends requests GitHub accepts: every request must carry the token, name the configured
repository and match a documented endpoint shape; anything else is answered with GitHub's status and error
body (401 "Bad credentials", 404 "Not Found", 422 "Validation Failed" with an `errors` list).

Endpoints (all under /repos/OWNER/NAME):
    GET, POST    /pulls                        PATCH, GET  /pulls/N
    GET, POST    /issues/N/comments            PATCH, GET  /issues/comments/ID
    GET, POST    /releases                     GET         /releases/tags/TAG

Lists are paginated like GitHub's (per_page up to 100, page, a Link header with rel="next" and rel="last");
`page_size_cap` shrinks pages further so a test can exercise pagination with a handful of items.
`fail_next` injects answers (a 500, a rate limit, a stale empty list) ahead of the normal handling.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

DOCUMENTATION_URL = "https://docs.github.com/rest"
SUPPORTED_API_VERSIONS = frozenset({"2022-11-28", "2026-03-10"})
RECORDED_HEADERS = ("Authorization", "Accept", "Content-Type", "User-Agent", "X-GitHub-Api-Version")
BOT_USER = {"login": "github-actions[bot]", "type": "Bot"}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it; `json` is the decoded body (None when there was none)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]


@dataclass
class _Fault:
    method: str
    path_pattern: re.Pattern[str]
    status: int
    times: int
    headers: dict[str, str]
    body: Any


@dataclass
class _Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class _Refusal(Exception):
    """Raised by an endpoint to answer with a GitHub error instead of its normal result."""

    def __init__(self, status: int, message: str, errors: list | None = None) -> None:
        super().__init__(message)
        body: dict[str, Any] = {"message": message, "documentation_url": DOCUMENTATION_URL}
        if errors is not None:
            body["errors"] = errors
        self.answer = _Answer(status, body)


def _validation_failed(*errors: dict) -> _Refusal:
    return _Refusal(422, "Validation Failed", list(errors))


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeGitHub/1.0"

    def do_GET(self) -> None:
        self.server.fake.handle(self)  # type: ignore[attr-defined]

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def log_message(self, *args: Any) -> None:
        """Keep test output quiet."""


class FakeGitHub:
    """GitHub's REST API for one repository, in memory, on 127.0.0.1 and an ephemeral port.

    `branches`: the branches that exist (None accepts any branch name). `page_size_cap`: the largest page
    served, whatever per_page asks for. State is public for assertions: `pull_requests` and `releases`
    by number/id, `comments` by id, `requests` in arrival order.
    """

    def __init__(
        self,
        repository: str = "example-org/income-classifier",
        token: str = "test-token",
        *,
        branches: set[str] | None = None,
        page_size_cap: int | None = None,
        default_branch: str = "main",
    ) -> None:
        self.owner, self.name = repository.split("/")
        self.expected_token = token
        self.branches = branches
        self.page_size_cap = page_size_cap
        self.default_branch = default_branch
        self.pull_requests: dict[int, dict] = {}
        self.comments: dict[int, dict] = {}
        self.releases: dict[int, dict] = {}
        self.requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._next_number = 1
        self._next_id = 1001
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle

    def start(self) -> FakeGitHub:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-github", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeGitHub is not started: call start() or use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def repository(self) -> str:
        return f"{self.owner}/{self.name}"

    # Test helpers

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """Answer the next `times` requests whose method and path (re.search, no query) match with `status`.

        `body` defaults to GitHub's {"message": reason phrase}; any status works, e.g. 200 with body=[] for
        a stale list.
        """
        if body is None:
            body = {"message": HTTPStatus(status).phrase, "documentation_url": DOCUMENTATION_URL}
        with self._lock:
            self._faults.append(
                _Fault(method.upper(), re.compile(path_regex), status, times, dict(headers or {}), body)
            )

    def add_pull_request(self, head: str, base: str, title: str = "Opened elsewhere", body: str = "") -> dict:
        """Open a pull request directly, as another run or a person would."""
        with self._lock:
            return copy.deepcopy(self._open_pull_request(title, head, base, body, draft=False))

    def add_comment(self, number: int, body: str) -> dict:
        """Comment on issue or pull request `number` directly, as another user would."""
        with self._lock:
            self._issue(number)
            return copy.deepcopy(self._add_comment(number, body))

    def merge_pull_request(self, number: int) -> None:
        with self._lock:
            pull = self.pull_requests[number]
            pull.update(state="closed", merged=True, merged_at=_now(), closed_at=_now())

    def open_pull_requests(self, head: str | None = None, base: str | None = None) -> list[dict]:
        """Open pull requests, optionally from branch `head` (no owner prefix) and into `base`."""
        with self._lock:
            return [
                copy.deepcopy(pull)
                for pull in self.pull_requests.values()
                if pull["state"] == "open"
                and (head is None or pull["head"]["ref"] == head)
                and (base is None or pull["base"]["ref"] == base)
            ]

    def comments_on(self, number: int) -> list[dict]:
        with self._lock:
            return [copy.deepcopy(c) for c in self.comments.values() if c["issue_number"] == number]

    def requests_to(self, method: str, path_regex: str) -> list[RecordedRequest]:
        """Recorded requests with this method whose path matches `path_regex` (re.search)."""
        with self._lock:
            pattern = re.compile(path_regex)
            return [r for r in self.requests if r.method == method.upper() and pattern.search(r.path)]

    # Request handling

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        """Record, authenticate, route and answer one request (called on the server's threads)."""
        target = urlsplit(handler.path)
        query = dict(parse_qsl(target.query, keep_blank_values=True))
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            payload: Any = json.loads(raw) if raw else None
            parse_error = False
        except ValueError:
            payload, parse_error = raw.decode("utf-8", errors="replace"), True
        method = handler.command
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    method=method,
                    path=target.path,
                    query=query,
                    json=payload,
                    headers={
                        name: handler.headers[name] for name in RECORDED_HEADERS if name in handler.headers
                    },
                )
            )
            answer = self._injected(method, target.path)
            if answer is None:
                try:
                    self._check_headers(handler)
                    if parse_error:
                        raise _Refusal(400, "Problems parsing JSON")
                    answer = self._route(method, target.path, query, payload)
                except _Refusal as refusal:
                    answer = refusal.answer
        self._reply(handler, answer)

    def _injected(self, method: str, path: str) -> _Answer | None:
        for fault in self._faults:
            if fault.method == method and fault.path_pattern.search(path):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return _Answer(fault.status, copy.deepcopy(fault.body), dict(fault.headers))
        return None

    def _check_headers(self, handler: BaseHTTPRequestHandler) -> None:
        scheme, _, token = (handler.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() not in ("bearer", "token") or token != self.expected_token:
            raise _Refusal(401, "Bad credentials")
        if not handler.headers.get("User-Agent"):
            # GitHub refuses anonymous clients outright.
            raise _Refusal(403, "Request forbidden by administrative rules. Please set a User-Agent header.")
        version = handler.headers.get("X-GitHub-Api-Version")
        if version is not None and version not in SUPPORTED_API_VERSIONS:
            raise _Refusal(400, f"API version {version} is not supported.")

    def _route(self, method: str, path: str, query: dict[str, str], payload: Any) -> _Answer:
        parts = [unquote(part) for part in path.split("/")]
        if (
            len(parts) < 5
            or parts[:2] != ["", "repos"]
            or parts[2].lower() != self.owner.lower()
            or parts[3].lower() != self.name.lower()
        ):
            raise _Refusal(404, "Not Found")
        match (method, parts[4:]):
            case ("GET", ["pulls"]):
                return self._list_pull_requests(self.url + path, query)
            case ("POST", ["pulls"]):
                return self._create_pull_request(_json_object(payload))
            case ("GET", ["pulls", number]):
                return _Answer(200, self._pull_request(number))
            case ("PATCH", ["pulls", number]):
                return self._update_pull_request(self._pull_request(number), _json_object(payload))
            case ("GET", ["issues", number, "comments"]):
                self._issue(number)
                comments = [c for c in self.comments.values() if c["issue_number"] == int(number)]
                return _paginate(comments, self.url + path, query, self.page_size_cap)
            case ("POST", ["issues", number, "comments"]):
                self._issue(number)
                fields = _validated(_json_object(payload), "IssueComment", required={"body": str})
                return _Answer(201, self._add_comment(int(number), fields["body"]))
            case ("GET", ["issues", "comments", comment_id]):
                return _Answer(200, self._comment(comment_id))
            case ("PATCH", ["issues", "comments", comment_id]):
                comment = self._comment(comment_id)
                fields = _validated(_json_object(payload), "IssueComment", required={"body": str})
                comment.update(body=fields["body"], updated_at=_now())
                return _Answer(200, comment)
            case ("GET", ["releases"]):
                newest_first = sorted(self.releases.values(), key=lambda r: r["id"], reverse=True)
                return _paginate(newest_first, self.url + path, query, self.page_size_cap)
            case ("POST", ["releases"]):
                return self._create_release(_json_object(payload))
            case ("GET", ["releases", "tags", tag]):
                for release in self.releases.values():
                    if release["tag_name"] == tag and not release["draft"]:
                        return _Answer(200, release)
                raise _Refusal(404, "Not Found")
        raise _Refusal(404, "Not Found")

    # Pull requests

    def _list_pull_requests(self, page_url: str, query: dict[str, str]) -> _Answer:
        state = query.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise _validation_failed({"resource": "PullRequest", "field": "state", "code": "invalid"})
        head = query.get("head")
        if head is not None and ":" not in head:
            # GitHub silently ignores a head filter without the OWNER: prefix and lists every pull request,
            # so a client relying on it would update somebody else's pull request. Refuse it here instead.
            raise _validation_failed(
                {
                    "resource": "PullRequest",
                    "field": "head",
                    "code": "invalid",
                    "message": "head must be OWNER:BRANCH",
                }
            )
        base = query.get("base")
        pulls = [
            pull
            for pull in sorted(self.pull_requests.values(), key=lambda p: p["number"], reverse=True)
            if (state == "all" or pull["state"] == state)
            and (head is None or pull["head"]["label"].lower() == head.lower())
            and (base is None or pull["base"]["ref"] == base)
        ]
        return _paginate(pulls, page_url, query, self.page_size_cap)

    def _create_pull_request(self, payload: dict) -> _Answer:
        fields = _validated(
            payload,
            "PullRequest",
            required={"title": str, "head": str, "base": str},
            optional={"body": (str, type(None)), "draft": bool, "maintainer_can_modify": bool},
        )
        head = self._own_branch(fields["head"])
        invalid = [
            {"resource": "PullRequest", "field": name, "code": "invalid"}
            for name, branch in (("head", head), ("base", fields["base"]))
            if self.branches is not None and branch not in self.branches
        ]
        if invalid:
            raise _validation_failed(*invalid)
        if head == fields["base"]:
            message = f"No commits between {fields['base']} and {head}"
            raise _validation_failed({"resource": "PullRequest", "code": "custom", "message": message})
        self._refuse_duplicate(head, fields["base"])
        pull = self._open_pull_request(
            fields["title"], head, fields["base"], fields.get("body"), fields.get("draft", False)
        )
        return _Answer(201, pull)

    def _update_pull_request(self, pull: dict, payload: dict) -> _Answer:
        fields = _validated(
            payload,
            "PullRequest",
            optional={"title": str, "body": (str, type(None)), "state": str, "base": str},
        )
        state = fields.get("state", pull["state"])
        if state not in ("open", "closed"):
            raise _validation_failed({"resource": "PullRequest", "field": "state", "code": "invalid"})
        if state == "open" and pull["state"] == "closed":
            if pull["merged"]:
                message = "state cannot be changed. The pull request cannot be reopened (it was merged)."
                raise _validation_failed({"resource": "PullRequest", "code": "custom", "message": message})
            self._refuse_duplicate(pull["head"]["ref"], fields.get("base", pull["base"]["ref"]))
        if "base" in fields:
            pull["base"] = {"ref": fields["base"], "label": f"{self.owner}:{fields['base']}"}
        for name in ("title", "body"):
            if name in fields:
                pull[name] = fields[name]
        pull.update(state=state, updated_at=_now(), closed_at=None if state == "open" else _now())
        return _Answer(200, pull)

    def _own_branch(self, head: str) -> str:
        """The branch name of a head given as BRANCH or OWNER:BRANCH (forks are not modelled)."""
        owner, _, branch = head.rpartition(":")
        if owner and owner.lower() != self.owner.lower():
            raise _validation_failed({"resource": "PullRequest", "field": "head", "code": "invalid"})
        return branch

    def _refuse_duplicate(self, head: str, base: str) -> None:
        for pull in self.pull_requests.values():
            if pull["state"] == "open" and pull["head"]["ref"] == head and pull["base"]["ref"] == base:
                message = f"A pull request already exists for {self.owner}:{head}."
                raise _validation_failed({"resource": "PullRequest", "code": "custom", "message": message})

    def _open_pull_request(self, title: str, head: str, base: str, body: str | None, draft: bool) -> dict:
        number = self._take_number()
        html_url = f"https://github.com/{self.repository}/pull/{number}"
        pull = {
            "id": self._take_id(),
            "number": number,
            "url": f"{self.url}/repos/{self.repository}/pulls/{number}",
            "html_url": html_url,
            "state": "open",
            "title": title,
            "body": body,
            "draft": draft,
            "merged": False,
            "merged_at": None,
            "closed_at": None,
            "created_at": _now(),
            "updated_at": _now(),
            "user": dict(BOT_USER),
            "head": {"ref": head, "label": f"{self.owner}:{head}"},
            "base": {"ref": base, "label": f"{self.owner}:{base}"},
        }
        self.pull_requests[number] = pull
        return pull

    def _pull_request(self, number: str) -> dict:
        if not number.isdigit() or int(number) not in self.pull_requests:
            raise _Refusal(404, "Not Found")
        return self.pull_requests[int(number)]

    # Comments

    def _issue(self, number: str | int) -> None:
        """Pull requests are the only issues modelled; commenting on another number is a 404."""
        if not str(number).isdigit() or int(number) not in self.pull_requests:
            raise _Refusal(404, "Not Found")

    def _add_comment(self, number: int, body: str) -> dict:
        comment_id = self._take_id()
        comment = {
            "id": comment_id,
            "issue_number": number,
            "body": body,
            "url": f"{self.url}/repos/{self.repository}/issues/comments/{comment_id}",
            "html_url": f"https://github.com/{self.repository}/pull/{number}#issuecomment-{comment_id}",
            "issue_url": f"{self.url}/repos/{self.repository}/issues/{number}",
            "user": dict(BOT_USER),
            "created_at": _now(),
            "updated_at": _now(),
        }
        self.comments[comment_id] = comment
        return comment

    def _comment(self, comment_id: str) -> dict:
        if not comment_id.isdigit() or int(comment_id) not in self.comments:
            raise _Refusal(404, "Not Found")
        return self.comments[int(comment_id)]

    # Releases

    def _create_release(self, payload: dict) -> _Answer:
        fields = _validated(
            payload,
            "Release",
            required={"tag_name": str},
            optional={
                "target_commitish": str,
                "name": (str, type(None)),
                "body": (str, type(None)),
                "draft": bool,
                "prerelease": bool,
                "make_latest": str,
                "generate_release_notes": bool,
            },
        )
        tag = fields["tag_name"]
        if not tag.strip():
            raise _validation_failed({"resource": "Release", "code": "invalid", "field": "tag_name"})
        if any(release["tag_name"] == tag for release in self.releases.values()):
            raise _validation_failed({"resource": "Release", "code": "already_exists", "field": "tag_name"})
        target = fields.get("target_commitish", self.default_branch)
        is_commit = re.fullmatch(r"[0-9a-f]{40}", target) is not None
        if self.branches is not None and not is_commit and target not in self.branches:
            raise _validation_failed({"resource": "Release", "code": "invalid", "field": "target_commitish"})
        release_id = self._take_id()
        release = {
            "id": release_id,
            "tag_name": tag,
            "target_commitish": target,
            "name": fields.get("name"),
            "body": fields.get("body"),
            "draft": fields.get("draft", False),
            "prerelease": fields.get("prerelease", False),
            "url": f"{self.url}/repos/{self.repository}/releases/{release_id}",
            "html_url": f"https://github.com/{self.repository}/releases/tag/{tag}",
            "upload_url": f"https://uploads.github.com/repos/{self.repository}/releases/{release_id}/assets",
            "assets": [],
            "author": dict(BOT_USER),
            "created_at": _now(),
            "published_at": None if fields.get("draft") else _now(),
        }
        self.releases[release_id] = release
        return _Answer(201, release)

    # Plumbing

    def _take_number(self) -> int:
        number, self._next_number = self._next_number, self._next_number + 1
        return number

    def _take_id(self) -> int:
        identifier, self._next_id = self._next_id, self._next_id + 1
        return identifier

    def _reply(self, handler: BaseHTTPRequestHandler, answer: _Answer) -> None:
        data = b"" if answer.body is None else json.dumps(answer.body).encode("utf-8")
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Content-Length": str(len(data)),
            "X-GitHub-Api-Version-Selected": "2022-11-28",
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": "4999",
        }
        headers.update(answer.headers)
        handler.send_response(answer.status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)


def _json_object(payload: Any) -> dict:
    if not isinstance(payload, dict):
        raise _Refusal(400, "Problems parsing JSON")
    return payload


def _validated(
    payload: dict,
    resource: str,
    required: dict[str, type | tuple[type, ...]] | None = None,
    optional: dict[str, type | tuple[type, ...]] | None = None,
) -> dict:
    """The payload's known fields, or a 422 listing each missing or wrongly typed one."""
    errors = []
    for name, kind in (required or {}).items():
        if name not in payload:
            errors.append({"resource": resource, "code": "missing_field", "field": name})
        elif not isinstance(payload[name], kind):
            errors.append({"resource": resource, "code": "invalid", "field": name})
    for name, kind in (optional or {}).items():
        if name in payload and not isinstance(payload[name], kind):
            errors.append({"resource": resource, "code": "invalid", "field": name})
    if errors:
        raise _validation_failed(*errors)
    known = {**(required or {}), **(optional or {})}
    return {name: value for name, value in payload.items() if name in known}


def _paginate(items: list[dict], page_url: str, query: dict[str, str], page_size_cap: int | None) -> _Answer:
    """One page of `items` as GitHub serves it, with a Link header (next, last) while more pages remain."""
    per_page = _positive_int(query.get("per_page"), default=30, largest=100)
    if page_size_cap is not None:
        per_page = min(per_page, page_size_cap)
    page = _positive_int(query.get("page"), default=1, largest=None)
    last_page = max(1, -(-len(items) // per_page))
    answer = _Answer(200, items[(page - 1) * per_page : page * per_page])
    if page < last_page:
        links = [(page + 1, "next"), (last_page, "last")]
        answer.headers["Link"] = ", ".join(
            f'<{page_url}?{urlencode({**query, "page": number})}>; rel="{relation}"'
            for number, relation in links
        )
    return answer


def _positive_int(text: str | None, default: int, largest: int | None) -> int:
    """GitHub ignores a per_page or page that is not a positive integer."""
    if text is None or not text.isdigit() or int(text) < 1:
        return default
    return min(int(text), largest) if largest else int(text)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
