"""The candidate against an environment's champion, on the candidate's own held-out rows.

Stored metrics of two versions come from two different held-out sets (different data, another split)
and cannot be compared. The champion model is therefore scored on the rows the candidate was
evaluated on, with the same metric code; a champion that cannot score the candidate's columns (the
schema changed) makes the candidate the first release of the new schema.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import pandas as pd

from {{ cookiecutter.package_name }}.pipeline.evaluation import evaluate

Status = Literal["first_release", "is_champion", "compared", "new_schema"]


@dataclass(frozen=True)
class ChampionComparison:
    """What the gate compares the candidate with in one environment.

    `metrics` are the champion's, measured on the candidate's `rows` held-out rows; they exist only
    when `status` is "compared". `detail` says why a champion could not be scored.
    """

    environment: str
    status: Status
    version: int | None = None
    metrics: dict[str, float] | None = None
    rows: int | None = None
    same_data: bool | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> ChampionComparison:
        return cls(**{name: document.get(name) for name in cls.__dataclass_fields__ if name in document})

    def policy_champion(self) -> dict | None:
        """The `champion` the promotion rules compare with: only a champion scored on these rows."""
        if self.status != "compared":
            return None
        return {"version": self.version, "metrics": self.metrics or {}}

    def describe(self) -> str:
        """One line for people: which champion, and on which rows."""
        if self.status == "first_release":
            return f"no champion in {self.environment} yet (first release)"
        if self.status == "is_champion":
            return f"version {self.version} is the current champion in {self.environment}"
        if self.status == "new_schema":
            return (
                f"champion version {self.version} in {self.environment} cannot score the candidate's "
                f"columns ({self.detail}): first release for the new schema"
            )
        return (
            f"champion version {self.version} in {self.environment}, scored on the candidate's "
            f"{self.rows} held-out rows"
        )


def first_release(environment: str) -> ChampionComparison:
    return ChampionComparison(environment=environment, status="first_release")


def is_champion(environment: str, version: int) -> ChampionComparison:
    return ChampionComparison(environment=environment, status="is_champion", version=version)


def missing_columns(model: Any, features: pd.DataFrame) -> list[str]:
    """Columns the model was fitted on that the candidate's held-out rows lack."""
    expected = getattr(model, "feature_names_in_", None)
    if expected is None:
        return []
    return [str(column) for column in expected if column not in features.columns]


def compare_with_champion(
    environment: str,
    version: int,
    model: Any,
    features: pd.DataFrame,
    labels: pd.Series,
    same_data: bool,
) -> ChampionComparison:
    """Score the champion `model` on the candidate's held-out `features` and `labels`."""
    missing = missing_columns(model, features)
    if missing:
        shown = ", ".join(repr(column) for column in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        return ChampionComparison(
            environment=environment,
            status="new_schema",
            version=version,
            detail=f"it needs column(s) {shown}{more}, absent from the candidate's data",
        )
    expected = getattr(model, "feature_names_in_", None)
    inputs = features if expected is None else features[[str(column) for column in expected]]
    try:
        metrics = evaluate(model, inputs, labels)
    except (ValueError, TypeError, KeyError, IndexError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return ChampionComparison(
            environment=environment,
            status="new_schema",
            version=version,
            detail=f"scoring the candidate's rows failed: {first_line[:200]}",
        )
    return ChampionComparison(
        environment=environment,
        status="compared",
        version=version,
        metrics=metrics,
        rows=len(labels),
        same_data=same_data,
    )
