"""The promotion gate: a policy pack's Rego rules evaluated in-process (regopy) against a candidate.

A policy pack is a directory holding `promotion.rego` (the rules, `package promotion`) and
`thresholds.yaml` (the limits, passed to the rules as `data.thresholds`). The rules decide; this module
only loads the pack, checks it can be evaluated, and turns the engine's answer into a `Decision`.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from regopy import Input, Interpreter, LogLevel, RegoError

from {{ cookiecutter.package_name }}.errors import ProjectError

RULES_FILE = "promotion.rego"
THRESHOLDS_FILE = "thresholds.yaml"
LIMIT_SECTIONS = ("min_metrics", "max_fairness_difference", "min_fairness_ratio", "max_regression")
QUERY = "decision = data.promotion"

# rego-cpp reports errors as an S-expression: (error <n>:<file>|<offset>|<length> (errormsg <n>:<text>) ...)
ENGINE_ERROR = re.compile(r"\(error \d+:[^|\n]*\|(\d+)\|")
ENGINE_MESSAGE = re.compile(r"\(errormsg (\d+):")


class PolicyError(ProjectError):
    """A policy pack is missing, unreadable or invalid, or the engine could not evaluate it."""


@dataclass(frozen=True)
class Policy:
    """A policy pack as read from disk: the Rego rules and the thresholds they read as data."""

    rules: str
    thresholds: dict
    rules_path: Path
    thresholds_path: Path


@dataclass(frozen=True)
class Decision:
    """The gate's answer for one environment: allowed only when there is no deny reason."""

    environment: str
    allow: bool
    reasons: list[str]
    notes: list[str]
    limits: dict

    def to_dict(self) -> dict:
        return asdict(self)


def load_policy(policy_dir: Path) -> Policy:
    """Read and check the pack in `policy_dir`; PolicyError names the file at fault."""
    rules_path = Path(policy_dir) / RULES_FILE
    thresholds_path = Path(policy_dir) / THRESHOLDS_FILE
    policy = Policy(
        rules=read_text(rules_path),
        thresholds=load_thresholds(thresholds_path),
        rules_path=rules_path,
        thresholds_path=thresholds_path,
    )
    compile_rules(policy)
    return policy


def evaluate(policy: Policy, input_document: dict) -> Decision:
    """Decide whether the candidate described by `input_document` may be promoted.

    Values that cannot be computed must be null (NaN and infinities are turned into null here), and
    the rules deny on them. PolicyError when the engine fails, which never counts as an allow.
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


def load_thresholds(path: Path) -> dict:
    """thresholds.yaml as a dict, with `default` and every environment's limits checked."""
    try:
        thresholds = yaml.safe_load(read_text(path))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise PolicyError(f"{path}: invalid YAML{where}: {problem}") from error
    if not isinstance(thresholds, dict):
        raise PolicyError(f"{path}: expected a mapping with a 'default' key, got {type(thresholds).__name__}")
    if not isinstance(thresholds.get("default"), dict):
        raise PolicyError(f"{path}: default: required mapping of limit sections is missing")
    environments = thresholds.get("environments") or {}
    if not isinstance(environments, dict):
        raise PolicyError(f"{path}: environments: expected a mapping of environment names to limits")
    scopes = {"default": thresholds["default"]}
    scopes |= {f"environments.{name}": limits for name, limits in environments.items()}
    for scope, limits in scopes.items():
        check_limits(path, scope, limits)
    return thresholds | {"environments": environments}


def check_limits(path: Path, scope: str, limits: Any) -> None:
    """Every limit must be a number: the rules would silently skip one that is not."""
    if not isinstance(limits, dict):
        raise PolicyError(f"{path}: {scope}: expected a mapping of limit sections, got {limits!r}")
    for section in LIMIT_SECTIONS:
        entries = limits.get(section, {})
        if not isinstance(entries, dict):
            raise PolicyError(f"{path}: {scope}.{section}: expected a mapping of names to numbers")
        for name, value in entries.items():
            if not is_number(value):
                raise PolicyError(f"{path}: {scope}.{section}.{name}: expected a number, got {value!r}")


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


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
