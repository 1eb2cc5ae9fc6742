"""The model card rendered from a hand-built evidence context and the team's model_card.yaml."""

from __future__ import annotations

import base64
import html
import re
import struct
import zlib
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.errors import ConfigError
from {{ cookiecutter.package_name }}.governance.model_card import (
    METRIC_LABELS,
    load_card_text,
    render_html,
    render_markdown,
)

pytestmark = pytest.mark.unit

PROJECT_ROOT = Path(__file__).resolve().parents[3]
CARD_TEXT = PROJECT_ROOT / "model_card.yaml"
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
    """Every variable the two templates read, shaped as jobs.report builds them."""
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
        "data": {
            "name": "adult-census",
            "source": "data/adult.csv",
            "rows": 6000,
            "test_rows": 1500,
            "digest": "0" * 64,
            "target": "income",
            "positive_label": ">50K",
            "sensitive_features": ["sex"],
        },
        "metrics": {"accuracy": 0.8512, "roc_auc": 0.9031, "f1": 0.6644},
        "baseline": {"accuracy": 0.76, "roc_auc": 0.5, "f1": 0.0},
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
