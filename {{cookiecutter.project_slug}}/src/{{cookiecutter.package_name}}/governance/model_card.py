"""The model card: Markdown with Hugging Face front matter, and a self-contained HTML page.

Numbers come from the evidence; the human-written parts (owners, intended use, limitations ...) come
from `model_card.yaml`, which the team edits and which is never overwritten.
"""

from __future__ import annotations

import base64
from pathlib import Path

import jinja2
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from {{ cookiecutter.package_name }}.errors import ConfigError

TEMPLATES = Path(__file__).parent / "templates"
METRIC_LABELS = {
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "roc_auc": "ROC AUC",
    "f1": "F1",
    "precision": "Precision",
    "recall": "Recall",
    "log_loss": "Log loss",
}


class CardText(BaseModel):
    """The parts of the card a person writes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    owners: list[str] = Field(min_length=1)
    license: str = Field(min_length=1)
    intended_use: str = Field(min_length=1)
    out_of_scope_use: str = Field(min_length=1)
    limitations: str = Field(min_length=1)
    ethical_considerations: str = Field(min_length=1)
    caveats_and_recommendations: str = Field(min_length=1)


def load_card_text(path: Path) -> CardText:
    if not path.is_file():
        raise ConfigError(f"{path}: model card text not found (governance.model_card in project.yaml)")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return CardText.model_validate(document)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, item['loc'])) or '(top level)'}: {item['msg']}" for item in error.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None


def front_matter(context: dict) -> str:
    """Hugging Face model-card metadata, including `model-index` with the evaluation results."""
    metadata = {
        "license": context["text"]["license"],
        "library_name": "sklearn",
        "tags": ["tabular-classification", "sklearn", "fairness", "shap", context["model"]["family"]],
        "datasets": [context["data"]["name"]],
        "metrics": list(context["metrics"]),
        "model-index": [
            {
                "name": context["model"]["name"],
                "results": [
                    {
                        "task": {"type": "tabular-classification", "name": "Binary classification"},
                        "dataset": {
                            "type": context["data"]["name"],
                            "name": context["data"]["name"],
                            "split": "held-out test",
                        },
                        "metrics": [
                            {"type": name, "value": value, "name": METRIC_LABELS.get(name, name)}
                            for name, value in context["metrics"].items()
                        ],
                    }
                ],
            }
        ],
    }
    return "---\n" + yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True) + "---\n"


def format_rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _environment(autoescape: bool) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["rate"] = format_rate
    return environment


def render_markdown(context: dict) -> str:
    body = _environment(autoescape=False).get_template("model_card.md.j2").render(**context)
    return front_matter(context) + "\n" + body


def render_html(context: dict, images: dict[str, bytes]) -> str:
    """A single HTML file: every chart is embedded as a data URI, so it opens anywhere."""
    embedded = {
        name: "data:image/png;base64," + base64.b64encode(content).decode()
        for name, content in images.items()
    }
    return _environment(autoescape=True).get_template("model_card.html.j2").render(images=embedded, **context)
