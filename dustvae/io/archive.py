"""Zip archives dustvae reads (checkpoints from ``torch.save``, latent priors from ``numpy.savez``).

Both writers store their entries uncompressed, so what a reader inflates is
bounded by the file's size. A compressed entry (a few KiB of deflated zeros
can inflate to gigabytes), or one that claims more bytes than the file holds,
is refused before anything is read.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from ..errors import DustvaeFileError


def check_stored_zip(path: str | Path, what: str, remedy: str) -> None:
    """Refuse, in one line, a file that is not a zip archive of uncompressed entries within the file.

    Parameters
    ----------
    path : path
    what : str
        What the file should be, e.g. ``"dustvae checkpoint"``.
    remedy : str
        What to do about it, e.g. ``"fit it again"``.
    """
    path = Path(path)
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DustvaeFileError(f"{path}: not a readable {what} (not a zip archive); {remedy}") from exc
    for entry in entries:
        if entry.compress_type != zipfile.ZIP_STORED:
            raise DustvaeFileError(f"{path}: entry {entry.filename} is compressed, which dustvae never writes: not a "
                                   f"{what}; {remedy}")
        if entry.header_offset + entry.file_size > size:
            raise DustvaeFileError(f"{path}: entry {entry.filename} claims more bytes than the file holds: a damaged "
                                   f"{what}; {remedy}")
