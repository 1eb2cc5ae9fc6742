"""The promotion gate: the Rego rules evaluated in-process (regopy) against a candidate.

The installed policy directory holds `promotion.rego` (the rules, `package promotion`, the same for
every pack) and `thresholds.yaml` (the pack: its name and limits, passed to the rules as
`data.thresholds`). The rules decide; this module only loads them, checks they can be evaluated, and
turns the engine's answer into a `Decision`.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from regopy import Input, Interpreter, LogLevel, RegoError

from {{ cookiecutter.package_name }}.config.thresholds import Thresholds, load_thresholds
from {{ cookiecutter.package_name }}.errors import ConfigError, ProjectError

RULES_FILE = "promotion.rego"
THRESHOLDS_FILE = "thresholds.yaml"
QUERY = "decision = data.promotion"

# rego-cpp reports errors as an S-expression: (error <n>:<file>|<offset>|<length> (errormsg <n>:<text>) ...)
ENGINE_ERROR = re.compile(r"\(error \d+:[^|\n]*\|(\d+)\|")
ENGINE_MESSAGE = re.compile(r"\(errormsg (\d+):")


class PolicyError(ProjectError):
    """A policy pack is missing, unreadable or invalid, or the engine could not evaluate it."""


@dataclass(frozen=True)
class Policy:
    """The installed rules and the pack whose limits they read as data."""

    rules: str
    limits: Thresholds
    rules_path: Path
    thresholds_path: Path

    @property
    def pack(self) -> str:
        return self.limits.pack

    @property
    def thresholds(self) -> dict:
        """The pack as the rules read it (`data.thresholds`)."""
        return self.limits.to_policy_data()


@dataclass(frozen=True)
class Decision:
    """The gate's answer for one environment: allowed only when there is no deny reason.

    Besides the rules' answer it records what was decided on: the model version, the pack (named by
    the pack's own data), the champion comparison and the warnings about the evidence.
    """

    environment: str
    allow: bool
    reasons: list[str]
    notes: list[str]
    limits: dict
    policy_pack: str = ""
    model: dict = field(default_factory=dict)
    champion: dict | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def load_policy(policy_dir: Path, expected_pack: str | None = None) -> Policy:
    """Read and check the rules and the pack in `policy_dir`; PolicyError names the file at fault.

    With `expected_pack` (project.yaml's policy_pack), the installed pack must carry that name.
    """
    rules_path = Path(policy_dir) / RULES_FILE
    thresholds_path = Path(policy_dir) / THRESHOLDS_FILE
    rules = read_text(rules_path)
    try:
        limits = load_thresholds(thresholds_path)
    except ConfigError as error:
        raise PolicyError(str(error)) from None
    if expected_pack is not None and limits.pack != expected_pack:
        raise PolicyError(
            f"project.yaml names policy_pack {expected_pack!r} but the pack installed in "
            f"{thresholds_path} is {limits.pack!r} (its 'pack' key): set policy_pack: {limits.pack} in "
            f"project.yaml, or install the {expected_pack!r} pack's thresholds.yaml"
        )
    policy = Policy(rules=rules, limits=limits, rules_path=rules_path, thresholds_path=thresholds_path)
    compile_rules(policy)
    return policy


def evaluate(policy: Policy, input_document: dict) -> Decision:
    """Decide whether the candidate described by `input_document` may be promoted.

    Values that cannot be computed must be null (NaN and infinities are turned into null here), and
    the rules deny on them. PolicyError when the engine fails, which never counts as an allow. The
    input's `model`, `comparison` and `warnings` are recorded in the decision as they were given.
    """
    environment = input_document.get("environment") if isinstance(input_document, dict) else None
    if not isinstance(environment, str) or not environment:
        raise PolicyError(f"the promotion input needs an 'environment' name, got {environment!r}")
    interpreter = compile_rules(policy)
    interpreter.add_data({"thresholds": policy.thresholds})
    interpreter.set_input(Input(plain_json(input_document)))
    answer = query_decision(interpreter, policy.rules_path)
    reasons = sorted(answer.get("deny", []))
    return Decision(
        environment=environment,
        allow=answer.get("allow") is True and not reasons,
        reasons=reasons,
        notes=sorted(answer.get("notes", [])),
        limits=answer.get("limits", {}),
        policy_pack=policy.pack,
        model=plain_json(input_document.get("model") or {}),
        champion=plain_json(input_document.get("comparison")),
        warnings=list(input_document.get("warnings") or []),
    )


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(
            f"{path}: file not found (a policy pack holds {RULES_FILE} and {THRESHOLDS_FILE})"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError(f"{path}: cannot be read ({error})") from error


def compile_rules(policy: Policy) -> Interpreter:
    """A fresh interpreter holding the rules; a syntax error becomes PolicyError with its line."""
    interpreter = Interpreter()
    interpreter.log_level = LogLevel.NONE  # rego-cpp would print its errors on stdout; we raise them
    interpreter.strict_built_in_errors = True  # a builtin's type error fails the query, not one rule
    try:
        interpreter.add_module(RULES_FILE, policy.rules)
    except RegoError as error:
        location = error_location(str(error), policy.rules)
        raise PolicyError(f"{policy.rules_path}{location}: {engine_message(str(error))}") from error
    return interpreter


def query_decision(interpreter: Interpreter, rules_path: Path) -> dict:
    try:
        output = interpreter.query(QUERY)
    except json.JSONDecodeError as error:
        # regopy hands the engine's error text (or malformed JSON) to json.loads; keep its message
        raise PolicyError(f"{rules_path}: evaluation failed: {engine_message(error.doc)}") from error
    except RegoError as error:
        raise PolicyError(f"{rules_path}: evaluation failed: {engine_message(str(error))}") from error
    if not output.ok():
        raise PolicyError(
            f"{rules_path}: evaluation failed (a builtin got a value of the wrong type, or two rules "
            "gave one value different answers); the engine gave no detail"
        )
    if not output.results or not isinstance(output.results[0].bindings.get("decision"), dict):
        raise PolicyError(f"{rules_path}: defines no rules in 'package promotion'")
    return output.results[0].bindings["decision"]


def engine_message(text: str) -> str:
    """The engine's first error message, without its S-expression wrapping."""
    match = ENGINE_MESSAGE.search(text)
    if match:
        return text[match.end() : match.end() + int(match.group(1))]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "the engine gave no detail"


def error_location(text: str, source: str) -> str:
    """':line:column' of the engine's first error in `source`, or '' when it gives none."""
    match = ENGINE_ERROR.search(text)
    if not match:
        return ""
    before = source.encode("utf-8")[: int(match.group(1))].decode("utf-8", errors="ignore")
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    return f":{line}:{column}"


def plain_json(value: Any) -> Any:
    """`value` in the types regopy accepts: numpy scalars become int/float, NaN and infinities None."""
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, dict):
        return {str(key): plain_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(item) for item in value]
    raise PolicyError(f"the promotion input holds a {type(value).__name__}, which is not a JSON value")
