"""Exit codes of the command line: 1 means the policy denied, never that something broke."""

from __future__ import annotations

from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import cli

pytestmark = pytest.mark.unit

PROJECT_FILE = Path(__file__).resolve().parents[3] / "project.yaml"


def test_an_unexpected_failure_exits_with_the_error_code_not_the_deny_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(config, arguments) -> int:
        raise OSError("disk full while writing fairness_race.png")

    monkeypatch.setitem(cli.COMMANDS, "verify", (cli.COMMANDS["verify"][0], broken))
    status = cli.main(["--config", str(PROJECT_FILE), "verify", "--version", "1"])
    assert status == cli.EXIT_ERROR != cli.EXIT_DENY
    assert "disk full" in capsys.readouterr().err


def test_a_denied_promotion_exits_with_the_deny_code(monkeypatch: pytest.MonkeyPatch) -> None:
    from {{ cookiecutter.package_name }}.commands.delivery import PromotionDenied

    def denied(config, arguments) -> int:
        raise PromotionDenied("promotion of version 1 to staging denied: roc_auc is 0.5")

    monkeypatch.setitem(cli.COMMANDS, "verify", (cli.COMMANDS["verify"][0], denied))
    assert cli.main(["--config", str(PROJECT_FILE), "verify", "--version", "1"]) == cli.EXIT_DENY
