"""report.html as a person sees it: opened in headless Chromium, self-contained, one chart per
feature plus the score's."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from monitoring_support import Workspace, adult_test_rows, log_rows, write_environment

from {{ cookiecutter.package_name }}.commands.monitoring import monitor

pytestmark = pytest.mark.integration

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
SECTIONS = ["Decision", "Drift", "Live performance", "Live fairness", "Traffic"]
PROBE = """
<script>
window.addEventListener("load", function () {
  var report = {
    charts: Array.from(document.querySelectorAll("figure svg")).map(function (chart) {
      var box = chart.getBoundingClientRect();
      return [chart.getAttribute("aria-label"), box.width, box.height, chart.querySelectorAll("rect").length];
    }),
    sections: Array.from(document.querySelectorAll("section h2")).map(function (heading) {
      return heading.textContent.trim();
    }),
    external: Array.from(document.querySelectorAll("[src], link[href]")).length
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


def test_the_report_renders_every_chart_and_section(workspace: Workspace, tmp_path: Path) -> None:
    browser = find_browser()
    environment = workspace.config.environments[0]
    write_environment(workspace.config, environment, "logs/browser")
    features, _ = adult_test_rows(workspace.config)
    log_rows(
        workspace.config,
        environment,
        workspace.champion_model,
        workspace.champion,
        features.head(600),
        prefix="h",
    )
    result = monitor(workspace.config, environment, out=tmp_path / "report")
    page = tmp_path / "page.html"
    text = (result.directory / "report.html").read_text(encoding="utf-8")
    page.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    completed = subprocess.run(
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
    match = re.search(r'<pre id="browser-report">(.*?)</pre>', completed.stdout, re.DOTALL)
    assert match, f"the page did not finish loading: {completed.stderr[-2000:]}"
    seen = json.loads(html.unescape(match.group(1)))
    assert seen["sections"] == SECTIONS
    assert seen["external"] == 0
    names = [label for label, *_ in seen["charts"]]
    assert names == ["score", *result.document["features"]]
    for label, width, height, bars in seen["charts"]:
        assert width > 100 and height > 100 and bars >= 2, f"chart {label!r} did not render"
