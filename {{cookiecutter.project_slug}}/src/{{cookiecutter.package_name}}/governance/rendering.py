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


def jinja_environment(templates: Path, autoescape: bool, filters: dict) -> jinja2.Environment:
    """The one way the project's templates are read: strict about undefined names, tidy whitespace."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(filters)
    return environment


@cache
def template_environment(autoescape: bool) -> jinja2.Environment:
    filters = {"rate": format_rate, "metric": format_metric, "change": format_change, "cell": markdown_cell}
    return jinja_environment(TEMPLATES, autoescape, filters)


def render(template: str, autoescape: bool = False, **context: object) -> str:
    return template_environment(autoescape).get_template(template).render(**context)
