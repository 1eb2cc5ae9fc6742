"""Open a page in headless Chromium and read back what a probe script saw once everything loaded."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# The probe writes its findings as JSON into this element; the page is read back with --dump-dom.
REPORT = re.compile(r'<pre id="browser-report">(.*?)</pre>', re.DOTALL)


def find_browser() -> str:
    """Chromium's path; a failure under REQUIRE_BROWSER (the template's CI), else a skip."""
    candidates = [os.environ.get("CHROME_BIN", "")] + [shutil.which(name) or "" for name in BROWSERS]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    if os.environ.get("REQUIRE_BROWSER"):
        pytest.fail("no Chromium found (install Debian's chromium or set CHROME_BIN)")
    pytest.skip("no Chromium found (install Debian's chromium or set CHROME_BIN)")


def browser_report(page_html: str, probe: str, directory: Path) -> Any:
    """Render `page_html` with `probe` appended to its body; what the probe wrote into the page."""
    browser = find_browser()
    page = directory / "page.html"
    page.write_text(page_html.replace("</body>", probe + "</body>"), encoding="utf-8")
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
            f"--user-data-dir={directory / 'profile'}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    match = REPORT.search(completed.stdout)
    assert match, f"the page did not finish loading: {completed.stderr[-2000:]}"
    return json.loads(html.unescape(match.group(1)))
