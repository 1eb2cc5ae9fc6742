"""The model card rendered from a hand-built evidence context and the team's model_card.yaml."""

from __future__ import annotations

import base64
import html
import re
import struct
import zlib
from pathlib import Path

import pandas as pd
import pytest
import yaml
from fixtures import FIXTURE_CARD_TEXT

from {{ cookiecutter.package_name }}.errors import ConfigError
from {{ cookiecutter.package_name }}.governance.model_card import (
    DEMO_DATA_SHA256,
    METRIC_LABELS,
    CardText,
    card_check,
    data_facts,
    demo_text_fields,
    demo_text_warning,
    load_card_text,
    render_html,
    render_markdown,
)

pytestmark = pytest.mark.unit

PROJECT_ROOT = Path(__file__).resolve().parents[3]
CARD_TEXT = FIXTURE_CARD_TEXT
SECTIONS = (
    "Model details",
    "Intended use",
    "Out-of-scope use",
    "Training data",
    "Evaluation",
    "Fairness",
    "Explainability",
    "Limitations and ethical considerations",
    "Caveats and recommendations",
    "Reproducibility",
    "Policy decision",
)
GAP_NAMES = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
)
TEXT = {
    "owners": ["Ada Lovelace <ada@example.org>"],
    "license": "apache-2.0",
    "intended_use": "Teaching the pipeline.",
    "out_of_scope_use": "Decisions about real people.",
    "limitations": "Small sample.",
    "ethical_considerations": "Sex and race are audited.",
    "caveats_and_recommendations": "Retrain before use.",
}


def png(red: int, green: int, blue: int) -> bytes:
    """A valid 1x1 RGB PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(bytes([0, red, green, blue]))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


IMAGES = {
    "shap_bar.png": png(255, 0, 0),
    "shap_beeswarm.png": png(0, 255, 0),
    "fairness_sex.png": png(0, 0, 255),
}


def group(name: str, count: int, rate: float | None, small: bool = False) -> dict:
    return {
        "group": name,
        "count": float(count),
        "selection_rate": rate,
        "accuracy": 0.8,
        "true_positive_rate": rate,
        "false_positive_rate": 0.1,
        "small": small,
    }


def card_context(text: dict | None = None) -> dict:
    """Every variable the two templates read, shaped as commands.evidence.report builds them."""
    gaps = {"demographic_parity_difference": 0.12, "demographic_parity_ratio": 0.55}
    gaps |= {"equalized_odds_difference": 0.2, "equalized_odds_ratio": None}
    return {
        "model": {
            "name": "income-classifier",
            "version": 3,
            "uri": "models:/income-classifier/3",
            "family": "hist_gradient_boosting",
            "estimator": "HistGradientBoostingClassifier",
            "params": {"max_iter": 100, "learning_rate": 0.1},
        },
        "text": text or TEXT,
        "notices": [],
        "data": {
            "name": "adult-census",
            "source": "data/adult.csv",
            "demo": False,
            "rows": 6000,
            "train_rows": 4500,
            "test_rows": 1500,
            "digest": "0" * 64,
            "target": "income",
            "positive_label": ">50K",
            "positive_rows": 1450,
            "test_positive_rows": 362,
            "features": ["age", "sex"],
            "numeric_features": ["age"],
            "categorical_features": ["sex"],
            "sensitive_features": [{"name": "sex", "model_input": True, "groups": 3}],
        },
        "metrics": {"accuracy": 0.8512, "roc_auc": 0.9031, "f1": 0.6644},
        "baseline": {"accuracy": 0.76, "roc_auc": 0.5, "f1": 0.0},
        "champion": None,
        "champion_line": "no champion in staging yet (first release)",
        "metric_labels": METRIC_LABELS,
        "fairness": {
            "min_group_size": 30,
            "overall": {"count": 1500.0, "selection_rate": 0.2},
            "features": [
                {
                    "feature": "sex",
                    "groups": [
                        group("Female", 500, 0.1),
                        group("Male", 990, 0.25),
                        group("Other", 10, None, True),
                    ],
                    "small_groups": ["Other"],
                    **gaps,
                    "all_groups": dict.fromkeys(GAP_NAMES, 0.3),
                }
            ],
        },
        "fairness_summary": "The largest gap is in equalized odds for sex.",
        "fairness_images": {"sex": "fairness_sex.png"},
        "gap_names": GAP_NAMES,
        "explainability": {
            "explainer": "tree",
            "output": "log-odds",
            "sample_size": 300,
            "background_size": 100,
            "base_value": -1.2,
            "importance": [
                {"feature": "age", "mean_abs_shap": 0.61},
                {"feature": "sex", "mean_abs_shap": 0.2},
            ],
            "additivity": {"max_error": 3e-9, "checked_rows": 300},
        },
        "reproducibility": {
            "git_sha": "abc1234",
            "git_dirty": False,
            "run_id": "run-42",
            "test_size": "0.25",
            "random_state": "42",
            "packages": {"scikit-learn": "1.9.1", "shap": "0.51.0"},
        },
        "decision": {
            "allow": False,
            "environment": "staging",
            "reasons": ["equalized_odds_difference for sex is 0.200, above the limit 0.100"],
            "notes": ["group Other of sex has fewer than 30 rows"],
            "limits": {},
            "policy_pack": "standard",
            "model": {"name": "income-classifier", "version": 3},
            "champion": None,
            "warnings": [],
        },
    }


def split_front_matter(markdown: str) -> tuple[dict, str]:
    assert markdown.startswith("---\n")
    metadata, body = markdown[4:].split("\n---\n", 1)
    return yaml.safe_load(metadata), body


def test_markdown_front_matter_holds_model_index_license_and_dataset() -> None:
    context = card_context()
    metadata, _ = split_front_matter(render_markdown(context))
    assert metadata["license"] == "apache-2.0"
    assert metadata["datasets"] == ["adult-census"]
    (entry,) = metadata["model-index"]
    assert entry["name"] == "income-classifier"
    (result,) = entry["results"]
    assert {metric["type"]: metric["value"] for metric in result["metrics"]} == context["metrics"]
    assert result["dataset"]["name"] == "adult-census"


def test_markdown_body_has_every_section_and_the_decision_reasons() -> None:
    context = card_context()
    _, body = split_front_matter(render_markdown(context))
    headings = re.findall(r"^#{2,3} (.+)$", body, flags=re.MULTILINE)
    for section in SECTIONS:
        assert section in headings
    assert "**DENY** for `staging`" in body
    for line in context["decision"]["reasons"] + context["decision"]["notes"]:
        assert line in body
    assert "| Other | 10 | n/a |" in body
    assert "0.8512" in body


def test_html_embeds_each_chart_as_its_own_png_data_uri() -> None:
    page = render_html(card_context(), IMAGES)
    images = dict(re.findall(r'<img alt="([^"]+)" src="([^"]*)">', page))
    expected = {
        "Fairness by sex": IMAGES["fairness_sex.png"],
        "SHAP importance": IMAGES["shap_bar.png"],
        "SHAP beeswarm": IMAGES["shap_beeswarm.png"],
    }
    assert page.count("<img") == len(expected) == len(images)
    for alt, content in expected.items():
        prefix, _, encoded = images[alt].partition(",")
        assert prefix == "data:image/png;base64"
        assert base64.b64decode(encoded, validate=True) == content


def test_html_has_every_section() -> None:
    page = render_html(card_context(), IMAGES)
    headings = re.findall(r"<h[23]>([^<]+)</h[23]>", page)
    for section in SECTIONS:
        assert section in headings


def test_html_escapes_special_characters_in_human_text() -> None:
    text = {**TEXT, "intended_use": 'Research <script>alert("x")</script> & teaching'}
    page = render_html(card_context(text), IMAGES)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert 'Research <script>alert("x")</script> & teaching' in html.unescape(page)


def test_shipped_card_text_loads_and_appears_in_both_cards() -> None:
    text = load_card_text(CARD_TEXT).model_dump()
    shipped = yaml.safe_load(CARD_TEXT.read_text(encoding="utf-8"))
    assert text == shipped
    context = card_context(text)
    markdown, page = render_markdown(context), html.unescape(render_html(context, IMAGES))
    for key in ("intended_use", "out_of_scope_use", "limitations", "caveats_and_recommendations"):
        assert shipped[key] in markdown
        assert shipped[key] in page
    assert shipped["owners"][0] in page


def test_regenerating_is_deterministic_and_leaves_the_card_text_untouched() -> None:
    before = CARD_TEXT.read_bytes()
    renders = []
    for _ in range(2):
        context = card_context(load_card_text(CARD_TEXT).model_dump())
        renders.append((render_markdown(context), render_html(context, IMAGES)))
    assert renders[0] == renders[1]
    assert CARD_TEXT.read_bytes() == before


def write_card_text(path: Path, document: dict) -> Path:
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_missing_key_is_named(tmp_path: Path) -> None:
    document = {key: value for key, value in TEXT.items() if key != "limitations"}
    with pytest.raises(ConfigError, match=r"limitations: Field required"):
        load_card_text(write_card_text(tmp_path / "model_card.yaml", document))


def test_unknown_key_is_named(tmp_path: Path) -> None:
    document = {**TEXT, "limitatons": "typo"}
    with pytest.raises(ConfigError, match=r"limitatons: Extra inputs are not permitted"):
        load_card_text(write_card_text(tmp_path / "model_card.yaml", document))


def test_empty_owner_list_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="owners"):
        load_card_text(write_card_text(tmp_path / "model_card.yaml", {**TEXT, "owners": []}))


def test_absent_card_text_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model card text not found"):
        load_card_text(tmp_path / "model_card.yaml")


# -- the card describes the data actually used ------------------------------------------------------


def test_data_facts_are_read_off_the_data_and_the_model_inputs() -> None:
    features = pd.DataFrame(
        {
            "age": [30.0, 40.0, 50.0, 60.0, 35.0, 45.0],
            "colour": ["r", "g", "b", "r", "g", "b"],
            "group": ["a", "a", "b", "b", "c", "c"],
        }
    )
    labels = pd.Series([1, 0, 1, 0, 0, 0])
    sensitive = pd.DataFrame({"group": ["a", "b", "c"], "region": ["n", "s", "s"]})
    facts = data_facts(
        name="loans",
        source="data/loans.csv",
        digest="f" * 64,
        features=features,
        labels=labels,
        test_labels=pd.Series([1, 0, 0]),
        sensitive=sensitive,
        model_inputs=["age", "colour"],
        target="default",
        positive_label="yes",
    )
    assert facts["features"] == ["age", "colour"]
    assert (facts["numeric_features"], facts["categorical_features"]) == (["age"], ["colour"])
    assert facts["sensitive_features"] == [
        {"name": "group", "model_input": False, "groups": 3},
        {"name": "region", "model_input": False, "groups": 2},
    ]
    assert (facts["rows"], facts["train_rows"], facts["test_rows"]) == (6, 3, 3)
    assert (facts["positive_rows"], facts["test_positive_rows"]) == (2, 1)
    assert facts["demo"] is False


def test_card_states_the_data_facts_and_which_sensitive_feature_is_a_model_input() -> None:
    context = card_context()
    context["data"] |= {
        "name": "compas-scores",
        "features": ["priors_count", "age_cat"],
        "numeric_features": ["priors_count"],
        "categorical_features": ["age_cat"],
        "sensitive_features": [
            {"name": "race", "model_input": False, "groups": 6},
            {"name": "age_cat", "model_input": True, "groups": 3},
        ],
    }
    _, body = split_front_matter(render_markdown(context))
    page = html.unescape(render_html(context, IMAGES))
    for text in (body, page):
        assert "compas-scores" in text
        assert "2 columns: 1 numeric (priors_count), 1 categorical (age_cat)" in text
        assert "race (audited only, not a model input, 6 groups)" in text
        assert "age_cat (a model input, 3 groups)" in text
        assert "6000: 4500 for training, 1500 held out" in text
        assert "census" not in text.lower()


def test_every_prose_key_of_the_shipped_card_text_is_recognised_as_demo_text() -> None:
    text = load_card_text(CARD_TEXT)
    prose = [key for key in CardText.model_fields if key not in {"owners", "license"}]
    assert demo_text_fields(text) == prose


def test_edited_text_is_no_longer_demo_text_but_reflowed_demo_text_is() -> None:
    shipped = load_card_text(CARD_TEXT)
    edited = shipped.model_copy(update={"intended_use": "Scores loan applications for review."})
    assert "intended_use" not in demo_text_fields(edited)
    reflowed = shipped.model_copy(update={"limitations": "\n  ".join(shipped.limitations.split(" "))})
    assert "limitations" in demo_text_fields(reflowed)


def test_demo_text_on_other_data_gets_a_warning_and_a_visible_notice() -> None:
    text = load_card_text(CARD_TEXT)
    other = card_check(text, "0" * 64)
    warning = demo_text_warning(other, "compas-scores")
    assert warning is not None and "model_card.yaml" in warning and "compas-scores" in warning
    assert demo_text_warning(card_check(text, DEMO_DATA_SHA256), "adult-census-sample") is None
    context = card_context(text.model_dump())
    context["notices"] = [warning]
    _, body = split_front_matter(render_markdown(context))
    assert f"> **Warning:** {warning}" in body
    assert re.search(
        r'<p class="notice" role="alert">Warning: [^<]*model_card\.yaml', render_html(context, IMAGES)
    )


def test_card_without_notices_shows_no_warning() -> None:
    _, body = split_front_matter(render_markdown(card_context()))
    assert "Warning" not in body
    assert 'class="notice"' not in render_html(card_context(), IMAGES)


def test_card_shows_the_champion_scored_on_the_same_rows() -> None:
    context = card_context()
    context["champion"] = {
        "environment": "staging",
        "status": "compared",
        "version": 2,
        "metrics": {"accuracy": 0.8, "roc_auc": 0.88, "f1": 0.61},
        "rows": 1500,
        "same_data": True,
        "detail": "",
    }
    context["champion_line"] = "champion version 2 in staging, scored on the candidate's 1500 held-out rows"
    _, body = split_front_matter(render_markdown(context))
    assert "| Metric | Model | Baseline | Champion v2 |" in body
    assert "| ROC AUC | 0.9031 | 0.5000 | 0.8800 |" in body
    assert "Champion v2 (same rows)" in render_html(context, IMAGES)
