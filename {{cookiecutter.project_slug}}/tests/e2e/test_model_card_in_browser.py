"""The HTML model card as a person sees it: opened in headless Chromium, every image must render."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.config import load_config

pytestmark = pytest.mark.e2e

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
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


def find_browser() -> str:
    candidates = [os.environ.get("CHROME_BIN", "")] + [shutil.which(name) or "" for name in BROWSERS]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    if os.environ.get("REQUIRE_BROWSER"):
        pytest.fail("no Chromium found (install Debian's chromium or set CHROME_BIN)")
    pytest.skip("no Chromium found (install Debian's chromium or set CHROME_BIN)")


def test_card_renders_every_image_and_section(ran_workspace: Path, tmp_path: Path) -> None:
    browser = find_browser()
    config = load_config(ran_workspace / "project.yaml")
    card = (
        config.resolve(config.governance.reports_dir)
        / config.mlflow.registered_model
        / "1"
        / "model_card.html"
    )
    page = tmp_path / "card.html"
    page.write_text(card.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    result = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    match = re.search(r'<pre id="browser-report">(.*?)</pre>', result.stdout, re.DOTALL)
    assert match, f"the page did not finish loading: {result.stderr[-2000:]}"
    report = json.loads(html.unescape(match.group(1)))
    expected_images = 2 + len(config.data.sensitive_features) + (len(config.data.sensitive_features) > 1)
    assert len(report["images"]) == expected_images
    for alt, complete, width, height in report["images"]:
        assert complete and width > 100 and height > 100, f"image {alt!r} did not render"
    assert report["sections"] == SECTIONS
