"""The HTML model card as a person sees it: opened in headless Chromium, every image must render."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.browser import browser_report

from {{ cookiecutter.package_name }}.config import load_config

pytestmark = pytest.mark.e2e

SECTIONS = [
    "Model details",
    "Intended use",
    "Training data",
    "Evaluation",
    "Fairness",
    "Explainability",
    "Limitations and ethical considerations",
    "Caveats and recommendations",
    "What the service records",
    "Reproducibility",
    "Policy decision",
]
# Runs in the page once everything has loaded and writes what the browser saw into the DOM.
PROBE = """
<script>
window.addEventListener("load", function () {
  var report = {
    images: Array.from(document.images).map(function (image) {
      return [image.alt, image.complete, image.naturalWidth, image.naturalHeight];
    }),
    sections: Array.from(document.querySelectorAll("section h2")).map(function (heading) {
      return heading.textContent.trim();
    })
  };
  var output = document.createElement("pre");
  output.id = "browser-report";
  output.textContent = JSON.stringify(report);
  document.body.appendChild(output);
});
</script>
"""


def test_card_renders_every_image_and_section(ran_workspace: Path, tmp_path: Path) -> None:
    config = load_config(ran_workspace / "project.yaml")
    card = (
        config.resolve(config.governance.reports_dir)
        / config.mlflow.registered_model
        / "1"
        / "model_card.html"
    )
    report = browser_report(card.read_text(encoding="utf-8"), PROBE, tmp_path)
    expected_images = 2 + len(config.data.sensitive_features) + (len(config.data.sensitive_features) > 1)
    assert len(report["images"]) == expected_images
    for alt, complete, width, height in report["images"]:
        assert complete and width > 100 and height > 100, f"image {alt!r} did not render"
    assert report["sections"] == SECTIONS
