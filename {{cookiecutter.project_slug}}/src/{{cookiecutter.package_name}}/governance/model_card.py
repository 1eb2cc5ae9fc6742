"""The model card: Markdown with Hugging Face front matter, and a self-contained HTML page.

Every fact (data set, rows, features used, sensitive features, target, metrics) comes from the
evidence; the human-written parts (owners, intended use, limitations ...) come from
`model_card.yaml`, which the team edits and which is never overwritten. While that text is still the
template's demo text and the data is not the demo file, the card says so in a visible notice.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from {{ cookiecutter.package_name }}.errors import ConfigError
from {{ cookiecutter.package_name }}.governance.rendering import render

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


# The demo data file shipped with the template (data/adult_sample.csv) and the sha256 of each prose
# key of the shipped model_card.yaml (whitespace collapsed). Tests keep both in step with the files.
DEMO_DATA_SHA256 = "5c831554139d91ad1471ec0541ea1d5bb1e64b185e81c60127b73a24071df2a2"
DEMO_TEXT_SHA256 = {
    "intended_use": "8d80a1eb9c354d31924231e2534ab5a536cb522c72f5b0cb4b97a699d0c5fea0",
    "out_of_scope_use": "f07df681a6a1bd199bb20d0960fb88520e66e71138e8e062c45a160c28853e71",
    "limitations": "ba77c52f7974e456f0c5012418cc10d33347d45e95b72940e405fb56fd136d64",
    "ethical_considerations": "881b838ac046f0b95de4aa7163df30896d567a78caa1fbc55a7647383c31db93",
    "caveats_and_recommendations": "74a302ae3d44c159d84552185a296b9b1e60271be8df45de08ec3a01f17546c7",
}


def text_digest(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()


def demo_text_fields(text: CardText) -> list[str]:
    """The keys of model_card.yaml still holding the template's demo text (which describes the demo data)."""
    return [key for key, digest in DEMO_TEXT_SHA256.items() if text_digest(getattr(text, key)) == digest]


def card_check(text: CardText, data_digest: str) -> dict[str, Any]:
    """What the promotion rules read as input.model_card: demo text left, and is the data the demo file?"""
    return {"demo_text": demo_text_fields(text), "demo_data": data_digest == DEMO_DATA_SHA256}


def demo_text_warning(check: dict[str, Any], data_name: str) -> str | None:
    """The warning for a card whose human-written text describes the demo data, not the data used."""
    if not check["demo_text"] or check["demo_data"]:
        return None
    return (
        f"model_card.yaml still holds the template's demo text ({', '.join(check['demo_text'])}), which "
        f"describes the demo census data, not {data_name}: rewrite these keys for this model"
    )


def data_facts(
    *,
    name: str,
    source: str,
    digest: str,
    features: pd.DataFrame,
    labels: pd.Series,
    test_labels: pd.Series,
    sensitive: pd.DataFrame,
    model_inputs: list[str],
    target: str,
    positive_label: str,
    numeric_columns: list[str] | None = None,
    schema_inferred: bool = False,
) -> dict[str, Any]:
    """The card's description of the data, read off the data the model was trained and evaluated on.

    `features` and `labels` are the whole data set as the pipeline received it, `model_inputs` the
    columns the fitted model takes; a sensitive feature is a model input only when it is one of them.
    `numeric_columns` is the schema the pipeline used (declared or inferred); without it the types
    are read off the data.
    """
    if numeric_columns is None:  # no schema given: read the types off the data
        numeric_columns = [
            column for column in model_inputs if pd.api.types.is_numeric_dtype(features[column])
        ]
    numeric = [column for column in model_inputs if column in numeric_columns]
    categorical = [column for column in model_inputs if column not in numeric]
    return {
        "name": name,
        "source": source,
        "digest": digest,
        "demo": digest == DEMO_DATA_SHA256,
        "rows": len(labels),
        "test_rows": len(test_labels),
        "train_rows": int(len(labels) - len(test_labels)),
        "target": target,
        "positive_label": positive_label,
        "positive_rows": int((labels == 1).sum()),
        "test_positive_rows": int((test_labels == 1).sum()),
        "features": list(model_inputs),
        "numeric_features": numeric,
        "schema_inferred": schema_inferred,
        "categorical_features": categorical,
        "sensitive_features": [
            {
                "name": str(column),
                "model_input": column in model_inputs,
                "groups": int(sensitive[column].nunique()),
            }
            for column in sensitive.columns
        ],
    }


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


def render_markdown(context: dict) -> str:
    body = render("model_card.md.j2", **context)
    return front_matter(context) + "\n" + body


def render_html(context: dict, images: dict[str, bytes]) -> str:
    """A single HTML file: every chart is embedded as a data URI, so it opens anywhere."""
    embedded = {
        name: "data:image/png;base64," + base64.b64encode(content).decode()
        for name, content in images.items()
    }
    return render("model_card.html.j2", autoescape=True, images=embedded, **context)
