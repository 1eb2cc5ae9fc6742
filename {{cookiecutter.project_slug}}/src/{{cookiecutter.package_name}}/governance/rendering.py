"""The one Jinja environment of every template in governance/templates/ (cards, summaries, CLI).

Templates only loop and branch over the evidence; formatting of numbers lives in the filters here.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).parent / "templates"


def format_rate(value: float | None) -> str:
    """Three decimals, or n/a for a figure that could not be computed."""
    return "n/a" if value is None else f"{value:.3f}"


def format_metric(value: float | None) -> str:
    """Four decimals, or an empty cell when there is no value."""
    return "" if value is None else f"{value:.4f}"


def format_change(value: float | None) -> str:
    return "" if value is None else f"{value:+.4f}"


def markdown_cell(value: object) -> str:
    """Text safe inside a Markdown table cell: a '|' in a column or group name would split the row."""
    return str(value).replace("|", "\\|").replace("\n", " ")


@cache
def template_environment(autoescape: bool) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["rate"] = format_rate
    environment.filters["metric"] = format_metric
    environment.filters["change"] = format_change
    environment.filters["cell"] = markdown_cell
    return environment


def render(template: str, autoescape: bool = False, **context: object) -> str:
    return template_environment(autoescape).get_template(template).render(**context)
