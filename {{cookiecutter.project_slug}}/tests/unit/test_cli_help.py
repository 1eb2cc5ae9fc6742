"""`--help` answers for the command line and for each of its commands, naming every command."""

from __future__ import annotations

import argparse

import pytest

from {{ cookiecutter.package_name }}.cli import COMMANDS, build_parser, main

pytestmark = pytest.mark.unit


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def test_the_top_level_help_lists_every_command_with_its_summary(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for name, (summary, _) in COMMANDS.items():
        assert name in text
        assert " ".join(summary.split()) in text, f"{name}: its summary is not in --help"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_and_each_of_its_actions_answers_help(name: str, capsys: pytest.CaptureFixture) -> None:
    parser = subcommands(build_parser())[name]
    for path in [[name]] + [[name, action] for action in subcommands(parser)]:
        with pytest.raises(SystemExit) as stop:
            main([*path, "--help"])
        assert stop.value.code == 0, path
        assert capsys.readouterr().out.startswith("usage:"), path
