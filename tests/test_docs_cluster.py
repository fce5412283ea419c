"""The cluster page's scripts use the real command line: every dustvae command in them parses."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from dustvae.cli import cli

PAGE = Path(__file__).resolve().parents[1] / "docs" / "cluster.rst"


def _commands() -> list[str]:
    lines = [line.strip() for line in PAGE.read_text().splitlines()]
    return [line for line in lines if line.startswith("dustvae ")]


def test_the_page_has_commands():
    names = {shlex.split(c)[1] for c in _commands()}
    assert {"compute-wst", "make-dataset", "merge"} <= names


@pytest.mark.parametrize("command", _commands())
def test_command_parses(command):
    """Shell variables and globs stand for values; option names and counts must be the CLI's own."""
    args = shlex.split(re.sub(r"\$\{?\w+\}?", "0", command))[1:]
    name, rest = args[0], args[1:]
    sub = cli.get_command(click.Context(cli), name)
    assert sub is not None, f"no command {name!r}"
    ctx = sub.make_context(name, rest, resilient_parsing=False)  # raises on unknown options or bad counts
    assert ctx.params  # parsed into the command's parameters
