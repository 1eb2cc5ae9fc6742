"""Feature flags of the service: OpenFeature with the flagd provider, in-process, reading one file.

Each environment has `flags/<env>.flagd.json` (flagd's flag-definition format), kept in git and
rendered into the environment branch by promotion. The provider polls the file, so an edit applies
within `poll_interval_ms` without a restart. Every request evaluates its flags once, with its
routing key (or its request id) as the targeting key, so `fractional` rules are sticky per key.

The flags the service reads:

- `challenger-enabled` (boolean, default on): the kill switch. Off, no request reaches the
  challenger, in any strategy, shadow included.
- `challenger-weight` (integer, percent): when present and ENABLED, the challenger weight that
  applies to this request instead of release.yaml's. Its value is evaluated per routing key, so a
  `fractional` rule over a `challenger` variant worth 100 and a `champion` variant worth 0 makes
  flagd itself the splitter (the share is the fractional weight); a plain default variant of, say,
  25 sets the weight for everyone and the router's own hash splits. Absent or DISABLED (the
  generated file ships it DISABLED), release.yaml's weight holds.
- `explain-predictions` (boolean, default off): `/predict` answers carry per-row SHAP
  contributions for the rows the champion scored.

flagd reports a broken flag only when it is evaluated (a `defaultVariant` missing from `variants`
loads silently), so `validate_flag_file` checks a file the way CI needs: `mlops flags --check`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from itertools import count
from pathlib import Path
from typing import Any

from {{ cookiecutter.package_name }}.errors import ProjectError

FLAGS_DIR = "flags"
FLAG_FILE_SUFFIX = ".flagd.json"
CHALLENGER_ENABLED = "challenger-enabled"
CHALLENGER_WEIGHT = "challenger-weight"
EXPLAIN_PREDICTIONS = "explain-predictions"
DEFAULT_POLL_INTERVAL_MS = 500
STATES = ("ENABLED", "DISABLED")
# What flagd accepts in a flag: any other key makes the whole file fail to load.
FLAG_KEYS = ("state", "variants", "defaultVariant", "targeting", "metadata", "source", "selector")
PERCENT_TOTAL = 100
# The type each flag the service reads must have: what the OpenFeature client is asked for.
SERVICE_FLAG_TYPES = {
    CHALLENGER_ENABLED: "boolean",
    CHALLENGER_WEIGHT: "integer",
    EXPLAIN_PREDICTIONS: "boolean",
}
_domains = count()


class FlagFileError(ProjectError):
    """A flag file is missing, not JSON, or holds a flag that flagd would fail to evaluate."""


def flag_file_path(environment: str) -> Path:
    """Where an environment's flag file lives, relative to the project root."""
    return Path(FLAGS_DIR) / f"{environment}{FLAG_FILE_SUFFIX}"


# -- validation ----------------------------------------------------------------------------------
def _value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _returned_variants(
    rule: Any, evaluators: dict[str, Any], where: str, problems: list[str]
) -> Iterator[str]:
    """The variant names a targeting rule can return: `if` arms and `fractional` buckets, recursively.

    Conditions are not followed (a string compared with `==` names no variant); `$ref` is resolved
    against the file's `$evaluators`, as flagd does.
    """
    if isinstance(rule, str):
        yield rule
        return
    if not isinstance(rule, dict) or len(rule) != 1:
        return
    ((operator, arguments),) = rule.items()
    if operator == "$ref":
        if arguments not in evaluators:
            problems.append(f"{where}: targeting refers to unknown evaluator {arguments!r}")
            return
        yield from _returned_variants(evaluators[arguments], evaluators, where, problems)
        return
    if not isinstance(arguments, list):
        return
    if operator == "if":
        arms = [arguments[i] for i in range(1, len(arguments), 2)]
        if len(arguments) % 2 == 1:
            arms.append(arguments[-1])
        for arm in arms:
            yield from _returned_variants(arm, evaluators, where, problems)
    elif operator == "fractional":
        buckets = arguments[1:] if arguments and not isinstance(arguments[0], list) else arguments
        total = 0
        for bucket in buckets:
            if not isinstance(bucket, list) or len(bucket) != 2 or not isinstance(bucket[0], str):
                problems.append(
                    f"{where}: fractional bucket {bucket!r} is not [variant, weight] (a variant name and "
                    "an integer percent)"
                )
                continue
            variant, weight = bucket
            if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
                problems.append(
                    f"{where}: fractional bucket {variant!r} has weight {weight!r}, expected an integer >= 0"
                )
                continue
            total += weight
            yield variant
        if buckets and total != PERCENT_TOTAL:
            problems.append(
                f"{where}: fractional weights add up to {total}, expected {PERCENT_TOTAL} "
                "(each bucket is a percent)"
            )


def _flag_problems(name: str, flag: Any, evaluators: dict[str, Any], source: str) -> list[str]:
    where = f"{source}: flag {name!r}"
    if not isinstance(flag, dict):
        return [f"{where}: expected an object with state, variants and defaultVariant"]
    problems = []
    unknown = sorted(set(flag) - set(FLAG_KEYS))
    if unknown:
        problems.append(
            f"{where}: unknown keys {', '.join(unknown)} (flagd takes {', '.join(FLAG_KEYS)}; any other "
            "makes the whole file fail to load)"
        )
    metadata = flag.get("metadata", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(value, str | int | float | bool) for value in metadata.values()
    ):
        problems.append(f"{where}: metadata must be an object of name: string, number or boolean")
    if flag.get("state") not in STATES:
        problems.append(f"{where}: state is {flag.get('state')!r}, expected one of {', '.join(STATES)}")
    variants = flag.get("variants")
    if not isinstance(variants, dict) or not variants:
        problems.append(f"{where}: variants must be a non-empty object of name: value")
        variants = {}
    known = ", ".join(map(str, variants)) or "none"
    default = flag.get("defaultVariant")
    if "defaultVariant" not in flag:
        problems.append(f"{where}: no defaultVariant (name one of its variants: {known})")
    elif default not in variants:
        problems.append(f"{where}: defaultVariant {default!r} is not one of its variants ({known})")
    types = {_value_type(value) for value in variants.values()}
    if types == {"integer", "float"}:
        types = {"float"}
    if len(types) > 1:
        listed = ", ".join(f"{key}={value!r}" for key, value in variants.items())
        problems.append(f"{where}: variants mix value types ({listed}); give every variant the same type")
    expected = SERVICE_FLAG_TYPES.get(name)
    if expected is not None and len(types) == 1 and types != {expected}:
        problems.append(f"{where}: the service reads it as {expected}, its variants are {types.pop()}")
    if name == CHALLENGER_WEIGHT:
        for key, value in variants.items():
            if _value_type(value) == "integer" and not 0 <= value <= PERCENT_TOTAL:
                problems.append(f"{where}: variant {key!r} is {value}, expected a percent in 0..100")
    if "targeting" in flag and flag["targeting"] not in ({}, None):
        for variant in _returned_variants(flag["targeting"], evaluators, where, problems):
            if variant not in variants:
                problems.append(
                    f"{where}: targeting names variant {variant!r}, not one of its variants ({known})"
                )
    return problems


def validate_flag_document(document: Any, source: str) -> list[str]:
    """What flagd would fail on, or the service misread, in a parsed flag file; [] when none."""
    if not isinstance(document, dict) or not isinstance(document.get("flags"), dict):
        return [f"{source}: expected a JSON object whose 'flags' maps each flag name to its definition"]
    evaluators = document.get("$evaluators") or {}
    if not isinstance(evaluators, dict):
        return [f"{source}: $evaluators must be an object of name: rule"]
    problems: list[str] = []
    for name, flag in document["flags"].items():
        problems.extend(_flag_problems(name, flag, evaluators, source))
    return problems


def validate_flag_file(path: Path) -> list[str]:
    """The problems of one flag file (missing, not JSON, broken flags), each naming file and flag."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [f"{path}: no such flag file"]
    except OSError as error:
        return [f"{path}: cannot be read ({error.strerror or error})"]
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        return [f"{path}: not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"]
    return validate_flag_document(document, str(path))


def read_flag_file(path: Path) -> str:
    """The text of a flag file that passed validation; a FlagFileError naming every problem otherwise."""
    problems = validate_flag_file(path)
    if problems:
        raise FlagFileError("; ".join(problems))
    return Path(path).read_text(encoding="utf-8")


def project_flag_files(root: Path, named: dict[str, Path | None], every_file: bool = True) -> list[Path]:
    """The flag files each environment names (`named`, relative to `root`), then any other in flags/."""
    files = [path if path.is_absolute() else root / path for path in named.values() if path is not None]
    if every_file:
        for path in sorted((root / FLAGS_DIR).glob(f"*{FLAG_FILE_SUFFIX}")):
            if path not in files:
                files.append(path)
    return files


def check_flag_files(
    root: Path, named: dict[str, Path | None], every_file: bool = True
) -> tuple[list[Path], list[str]]:
    """Validate the project's flag files: (the files checked, every problem, paths relative to root)."""
    files = project_flag_files(root, named, every_file)
    problems = []
    for path in files:
        shown = path.relative_to(root) if path.is_relative_to(root) else path
        problems += [problem.replace(str(path), str(shown), 1) for problem in validate_flag_file(path)]
    return files, problems


# -- evaluation ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RequestFlags:
    """The flag values one request is served with (the defaults are what a missing file means)."""

    challenger_enabled: bool = True
    challenger_weight: int | None = None
    explain_predictions: bool = False


class ServiceFlags:
    """The service's OpenFeature client over a flagd provider watching one file.

    Without a file (none configured, or the path does not exist) no provider is set: the client
    answers every flag with its default, which is `RequestFlags()`.
    """

    def __init__(self, path: Path | None, poll_interval_ms: int = DEFAULT_POLL_INTERVAL_MS) -> None:
        self.path = path
        self.poll_interval_ms = poll_interval_ms
        # One OpenFeature domain per instance: the API's registry is process-wide.
        self.domain = f"serving-{next(_domains)}"
        self._client = None
        self._provider = None

    @property
    def watching(self) -> bool:
        return self._provider is not None

    def start(self) -> None:
        """Validate the file, then bind a file-mode flagd provider and wait until it has read it."""
        from openfeature import api

        if self.path is not None and self.path.exists():
            read_flag_file(self.path)
            from openfeature.contrib.provider.flagd import FlagdProvider
            from openfeature.contrib.provider.flagd.config import ResolverType

            provider = FlagdProvider(
                resolver_type=ResolverType.FILE,
                offline_flag_source_path=str(self.path),
                deadline_ms=self.poll_interval_ms,
            )
            api.set_provider_and_wait(provider, self.domain)
            self._provider = provider
        elif self.path is not None:
            logging.getLogger(__name__).warning(
                "flag file %s does not exist: every flag has its default", self.path
            )
        self._client = api.get_client(self.domain)

    def stop(self) -> None:
        if self._provider is not None:
            self._provider.shutdown()
            self._provider = None

    def evaluate(
        self, targeting_key: str | None, routing: bool = True, weight: bool = True, explain: bool = True
    ) -> RequestFlags:
        """This request's flags, each evaluated once with `targeting_key`.

        An evaluation costs ≈ 0.1 ms, so the caller skips the flags the request cannot use (no
        challenger to route to, a strategy without a weight, an endpoint without explanations); a
        skipped flag keeps its default.
        """
        defaults = RequestFlags()
        if self._client is None or not (routing or explain):
            return defaults
        from openfeature.evaluation_context import EvaluationContext
        from openfeature.flag_evaluation import Reason

        context = EvaluationContext(targeting_key=targeting_key)
        client = self._client
        enabled, challenger_weight, explained = (
            defaults.challenger_enabled,
            None,
            defaults.explain_predictions,
        )
        if routing:
            enabled = client.get_boolean_value(CHALLENGER_ENABLED, enabled, context)
        if routing and weight:
            details = client.get_integer_details(CHALLENGER_WEIGHT, -1, context)
            # Absent, DISABLED or broken, the flag gives no weight and release.yaml's holds.
            if details.error_code is None and details.reason != Reason.DISABLED:
                challenger_weight = details.value if 0 <= details.value <= PERCENT_TOTAL else None
        if explain:
            explained = client.get_boolean_value(EXPLAIN_PREDICTIONS, explained, context)
        return RequestFlags(enabled, challenger_weight, explained)

    def describe(self) -> dict[str, Any]:
        """For /info: the file, and each flag's value for a request without a routing key."""
        return {
            "file": None if self.path is None else str(self.path),
            "watching": self.watching,
            "values": asdict(self.evaluate(None)),
        }
