"""The ``dustvae`` command group and its entry point.

Every failure the user can fix is a :class:`~dustvae.errors.DustvaeError`
(or a click usage error) and is printed as one line, ``dustvae: error: ...``,
with exit status 2. ``--debug`` shows the traceback instead. The library
names parameters in its messages as a Python caller spells them, in
backticks (```batch_size```); here they become the flags that set them
(``--batch-size``).
"""

from __future__ import annotations

import re
import traceback
import warnings
from functools import cache

import click
import numpy as np

from .._version import __version__
from ..errors import DustvaeError, DustvaeWarning
from ..threads import apply_thread_budget

_DEBUG = {"on": False}


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="dustvae")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def cli(debug: bool) -> None:
    """Wavelet scattering statistics of dust polarization maps, compressed with VAEs.

    Typical run: simulate or bring a map, compute its WST coefficients, train
    VAE-1 (170 latents) and VAE-2 (85 latents), and compare them with the RWST
    and PCA baselines on held-out data.
    """
    _DEBUG["on"] = debug
    apply_thread_budget()  # never more threads than this process's share of the cores (dustvae.threads)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the command, turning user errors into one line and exit status 2."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", DustvaeWarning)
            warnings.showwarning = _notes_as_lines(warnings.showwarning)
            cli.main(args=argv, prog_name="dustvae", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("dustvae: interrupted; nothing written is damaged: run the same command again to resume "
                   "(for train, add --resume)", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"dustvae: error: {exc.format_message()} (see --help)", err=True)
        return 2
    except DustvaeError as exc:
        if _DEBUG["on"]:
            traceback.print_exc()
        click.echo(f"dustvae: error: {as_flags(str(exc))}", err=True)
        return 2
    except OSError as exc:  # the file system said no (permissions, full disk): the user's to fix
        if _DEBUG["on"]:
            traceback.print_exc()
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(f"dustvae: error: {exc.strerror or exc}{where}; check the path and free space", err=True)
        return 2
    except (MemoryError, RuntimeError) as exc:  # an allocation the checks before it did not foresee
        asked = _asked(exc)
        if asked is None:  # a RuntimeError that is not about memory: a bug, shown as one
            raise
        if _DEBUG["on"]:
            traceback.print_exc()
        click.echo(f"dustvae: error: out of memory ({asked}); give smaller inputs or sizes, or use a machine "
                   f"with more memory", err=True)
        return 2
    return 0


def _notes_as_lines(show):
    """``warnings.showwarning`` that prints a :class:`DustvaeWarning` as one line, ``dustvae: note: ...``, others by ``show``."""

    def show_note(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, DustvaeWarning):
            click.echo(f"dustvae: note: {as_flags(str(message))}", err=True)
        else:
            show(message, category, filename, lineno, file, line)

    return show_note


@cache
def _flags() -> dict[str, str]:
    """Each parameter name of the commands' options and the flag that sets it (``batch_size`` -> ``--batch-size``)."""
    flags: dict[str, str] = {}

    def walk(command: click.Command) -> None:
        for param in command.params:
            if isinstance(param, click.Option):
                flags.setdefault(param.name, max(param.opts, key=len))
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(cli)
    return flags


def as_flags(message: str) -> str:
    """A library message with its ```parameter``` names written as the command line's flags (others left as they are)."""
    flags = _flags()
    return re.sub(r"`(\w+)`", lambda m: flags.get(m[1], m[0]), message)


def _asked(exc: BaseException) -> str | None:
    """What a failed allocation asked for (NumPy and torch say how much), or None when ``exc`` is not one."""
    import re

    from ..memory import format_bytes

    shape, dtype = getattr(exc, "shape", None), getattr(exc, "dtype", None)
    if isinstance(exc, MemoryError) and shape is not None and dtype is not None:  # NumPy's
        return f"{format_bytes(float(np.prod(shape, dtype=float)) * dtype.itemsize)} asked for an array of shape {tuple(shape)}"
    text = str(exc)
    torch_cpu = re.search(r"can't allocate memory: you tried to allocate (\d+) bytes", text)
    if torch_cpu:
        return f"{format_bytes(int(torch_cpu[1]))} asked for a tensor"
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":  # torch's on a GPU
        return text.splitlines()[0] if text else "an allocation failed"
    return None

