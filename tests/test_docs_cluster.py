"""The cluster page's scripts use the real command line: every dustvae command in them parses."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from dustvae.cli import cli

PAGE = Path(__file__).resolve().parents[1] / "docs" / "cluster.rst"


def _lines() -> list[str]:
    return [line.strip() for line in PAGE.read_text().splitlines()]


def _launches() -> list[str]:
    """The torchrun lines (also after srun)."""
    return [line for line in _lines() if line.startswith(("torchrun ", "srun torchrun "))]


def _commands() -> list[str]:
    """Every dustvae command line: plain, or what torchrun starts with ``-m dustvae``."""
    plain = [line for line in _lines() if line.startswith("dustvae ")]
    return plain + ["dustvae " + line.split(" -m dustvae ", 1)[1] for line in _launches()]


def test_the_page_has_commands():
    names = {shlex.split(c)[1] for c in _commands()}
    assert {"compute-wst", "make-dataset", "merge", "train"} <= names
    assert any(line.startswith("srun torchrun ") for line in _launches())


@pytest.mark.parametrize("line", _launches())
def test_torchrun_options_parse(line):
    """torchrun's own options, before ``-m dustvae``, are the real launcher's."""
    from torch.distributed.run import get_args_parser

    launcher = shlex.split(re.sub(r"\$\(.*?\)|\$\{?\w+\}?", "0", line.split(" -m dustvae ", 1)[0]))
    launcher = launcher[1:] if launcher[0] == "srun" else launcher
    args = get_args_parser().parse_args([*launcher[1:], "-m", "dustvae"])
    assert args.module and args.training_script == "dustvae"


@pytest.mark.parametrize("command", _commands())
def test_command_parses(command):
    """Shell variables and globs stand for values; option names and counts must be the CLI's own."""
    args = shlex.split(re.sub(r"\$\{?\w+\}?", "0", command))[1:]
    name, rest = args[0], args[1:]
    sub = cli.get_command(click.Context(cli), name)
    assert sub is not None, f"no command {name!r}"
    ctx = sub.make_context(name, rest, resilient_parsing=False)  # raises on unknown options or bad counts
    assert ctx.params  # parsed into the command's parameters
