"""Sphinx configuration. The CLI reference is generated from the CLI itself at build time."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dustvae import __version__  # noqa: E402

project = "dustvae"
author = "the dustvae developers"
copyright = "2026, the dustvae developers"
version = release = __version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax", "sphinx.ext.viewcode"]
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"
exclude_patterns = ["_build"]
html_theme = "alabaster"
nitpicky = False
suppress_warnings = ["ref.python"]


def write_cli_reference(app) -> None:
    """Run every command's --help and write docs/_generated/cli.rst."""
    import click

    from dustvae.cli import cli

    out = Path(app.srcdir) / "_generated" / "cli.rst"
    out.parent.mkdir(exist_ok=True)
    lines = ["Command reference", "=================", "",
             "Generated from ``dustvae COMMAND --help`` when the documentation is built.", ""]
    ctx = click.Context(cli, info_name="dustvae")
    lines += ["dustvae", "-------", "", "::", ""] + ["    " + line for line in cli.get_help(ctx).splitlines()] + [""]
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        sub = click.Context(command, info_name=f"dustvae {name}", parent=ctx)
        title = f"dustvae {name}"
        lines += [title, "-" * len(title), "", "::", ""] + ["    " + line for line in command.get_help(sub).splitlines()] + [""]
    text = "\n".join(lines)
    if not out.exists() or out.read_text() != text:
        out.write_text(text)


def setup(app):
    app.connect("builder-inited", write_cli_reference)
