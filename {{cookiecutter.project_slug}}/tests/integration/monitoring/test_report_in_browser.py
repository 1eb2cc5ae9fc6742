"""report.html as a person sees it: opened in headless Chromium, self-contained, one chart per
feature plus the score's and the served latencies'."""

from __future__ import annotations

from pathlib import Path

import pytest
from monitoring_support import Workspace, adult_test_rows, serve_rows, write_environment
from support.browser import browser_report, find_browser

from {{ cookiecutter.package_name }}.commands.monitoring import monitor

pytestmark = pytest.mark.integration

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


def test_the_report_renders_every_chart_and_section(workspace: Workspace, tmp_path: Path) -> None:
    find_browser()  # before the monitor run: no browser, nothing to do
    environment = workspace.config.environments[0]
    write_environment(workspace.config, environment, "logs/browser")
    features, _ = adult_test_rows(workspace.config)
    serve_rows(workspace, environment, features.head(600))
    result = monitor(workspace.config, environment, out=tmp_path / "report")
    seen = browser_report((result.directory / "report.html").read_text(encoding="utf-8"), PROBE, tmp_path)
    assert seen["sections"] == SECTIONS
    assert seen["external"] == 0
    names = [label for label, *_ in seen["charts"]]
    # the service logged each request's latency: the traffic section charts its quantiles
    assert names == ["score", *result.document["features"], "latency quantiles"]
    for label, width, height, bars in seen["charts"]:
        assert width > 100 and height > 100 and bars >= 2, f"chart {label!r} did not render"
