"""Reading dustvae's HDF5 files (stores, patch files, latent files) safely: one shared rule for all of them.

HDF5 can make a file read other files of the machine: external links, soft
links that lead elsewhere, datasets whose raw data live in another file
(external storage) and virtual datasets assembled from other files. A
dustvae file needs none of these, so :func:`check_self_contained` refuses
them all before any data are read: nothing outside the paths the user named
is ever read. It also refuses datasets that declare more elements than they
store (chunks never written read back as fill values), the way a small file
asks for gigabytes. :func:`dataset` checks that a name holds a dataset of
the expected kind of numbers and shape before it is read.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from ..errors import DustvaeFileError

#: What each NumPy dtype kind is called in messages.
_KINDS = {"f": "real floats", "i": "integers", "u": "integers", "b": "booleans", "c": "complex numbers",
          "S": "byte strings", "U": "strings", "O": "objects (e.g. variable-length strings)", "V": "compound records"}


def open_hdf5(path: str | Path, remedy: str) -> h5py.File:
    """Open ``path`` read-only; one-line errors for a missing path, a directory or a file that is not HDF5.

    ``remedy`` ends the not-HDF5 message (e.g. ``"give a store written by `dustvae compute-wst`"``).
    """
    path = Path(path)
    if not path.exists():
        raise DustvaeFileError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise DustvaeFileError(f"{path}: is a directory; give a file")
    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise DustvaeFileError(f"{path}: not an HDF5 file; {remedy}") from exc


def check_self_contained(h5: h5py.Group, path: str | Path) -> None:
    """Refuse, in one line, a file that reads anything outside itself or declares more data than it stores.

    Every link must be a hard link (no soft or external links), and every
    dataset must keep its data in this file, contiguously or in chunks (no
    external raw storage, no virtual or compact layout), with all of its
    elements written.
    """
    seen: set = set()

    def walk(group: h5py.Group) -> None:
        for name in group:  # iterating lists link names without following them
            where = f"{group.name.rstrip('/')}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise DustvaeFileError(f"{path}: {where} is a link to {link.filename}; dustvae reads only data stored "
                                       f"inside the file it is given")
            if not isinstance(link, h5py.HardLink):
                raise DustvaeFileError(f"{path}: {where} is a soft link; dustvae reads only data stored inside the file "
                                       f"it is given, under their own names")
            obj = group[name]
            if obj.id in seen:  # a group hard-linked twice (or into itself) is visited once
                continue
            seen.add(obj.id)
            if isinstance(obj, h5py.Group):
                walk(obj)
            elif isinstance(obj, h5py.Dataset):
                _check_storage(obj, where, path)

    walk(h5)


def _check_storage(ds: h5py.Dataset, where: str, path: str | Path) -> None:
    plist = ds.id.get_create_plist()
    if plist.get_external_count():
        other = plist.get_external(0)[0].decode(errors="replace")
        raise DustvaeFileError(f"{path}: {where} keeps its data in another file ({other}); dustvae reads only data "
                               f"stored inside the file it is given")
    layout = plist.get_layout()
    if layout == h5py.h5d.VIRTUAL:
        raise DustvaeFileError(f"{path}: {where} is a virtual dataset, assembled from other files; dustvae reads only "
                               f"data stored inside the file it is given")
    if layout not in (h5py.h5d.CONTIGUOUS, h5py.h5d.CHUNKED):
        raise DustvaeFileError(f"{path}: {where} is stored in a layout dustvae does not write (compact); "
                               f"it is not a dustvae file")
    if ds.shape is None or ds.size == 0:
        return
    if layout == h5py.h5d.CHUNKED:
        expected = math.prod(-(-s // c) for s, c in zip(ds.shape, ds.chunks))
        complete = ds.id.get_num_chunks() >= expected
    else:
        complete = ds.id.get_storage_size() >= ds.size * ds.dtype.itemsize
    if not complete:
        raise DustvaeFileError(f"{path}: {where} declares shape {ds.shape} but stores only part of its data; "
                               f"the file is damaged or not a dustvae file")


def dataset(group: h5py.Group, name: str, path: str | Path, kinds: str = "f",
            shape: Sequence[int | None] | None = None) -> h5py.Dataset:
    """The dataset ``name`` of ``group``, refused in one line unless it is one, of a dtype kind in ``kinds``, of ``shape``.

    Parameters
    ----------
    kinds : str
        NumPy dtype kinds accepted: ``"f"`` real floats, ``"iu"`` integers, ...
    shape : sequence, optional
        The shape needed; ``None`` on an axis accepts any length there.
    """
    where = f"{group.name.rstrip('/')}/{name}".lstrip("/")
    obj = group.get(name)
    if obj is None:
        raise DustvaeFileError(f"{path}: lacks {where}; the file is damaged, write it again")
    if not isinstance(obj, h5py.Dataset):
        raise DustvaeFileError(f"{path}: {where} is a group, not a dataset; the file is damaged, write it again")
    dtype = obj.dtype
    if dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype is not None:
        wanted = " or ".join(dict.fromkeys(_KINDS[k] for k in kinds))
        raise DustvaeFileError(f"{path}: {where} holds {_KINDS.get(dtype.kind, str(dtype))}, not {wanted}; "
                               f"the file is damaged or not a dustvae file")
    if shape is not None and (len(obj.shape) != len(shape) or any(w is not None and w != s for s, w in zip(obj.shape, shape))):
        wanted = "(" + ", ".join("N" if w is None else str(w) for w in shape) + ("," if len(shape) == 1 else "") + ")"
        raise DustvaeFileError(f"{path}: {where} has shape {obj.shape} where {wanted} is needed; "
                               f"the file is damaged or not a dustvae file")
    return obj


def label_datasets(h5: h5py.Group, path: str | Path, n: int) -> dict[str, h5py.Dataset]:
    """The checked datasets of the optional ``labels/`` group: one number per row each (none when there is no group)."""
    group = h5.get("labels")
    if group is None:
        return {}
    if not isinstance(group, h5py.Group):
        raise DustvaeFileError(f"{path}: labels is a dataset, not a group of labels; the file is damaged")
    return {k: dataset(group, k, path, "fiub", (n,)) for k in group}


def read(ds: h5py.Dataset, path: str | Path, selection=()) -> np.ndarray:
    """``ds[selection]``, with a damaged chunk (HDF5's ``OSError``) as a one-line error."""
    try:
        return ds[selection]
    except OSError as exc:
        raise DustvaeFileError(f"{path}: {ds.name.lstrip('/')} cannot be read ({exc}); the file is damaged, "
                               f"write it again") from exc


def int_attr(attrs: h5py.AttributeManager, name: str, path: str | Path, default: int | None = None) -> int:
    """An integer attribute (stored as a number or a string of digits); one-line error otherwise."""
    value = attrs.get(name, default)
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, np.ndarray) and value.shape in ((), (1,)):
        value = value.reshape(()).item()
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise DustvaeFileError(f"{path}: attribute {name} is {value!r}, not an integer; the file is damaged or not "
                           f"a dustvae file")


def str_attr(attrs: h5py.AttributeManager, name: str, path: str | Path) -> str:
    """A non-empty text attribute; one-line error otherwise."""
    value = attrs.get(name)
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if not isinstance(value, str) or not value.strip():
        raise DustvaeFileError(f"{path}: attribute {name} is {value!r}, not text; the file is damaged or not "
                               f"a dustvae file")
    return value


def str_attr_or_none(attrs: h5py.AttributeManager, name: str) -> str | None:
    """A text attribute (bytes decoded), or None when it is missing or not text: for telling formats apart."""
    value = attrs.get(name)
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    return value if isinstance(value, str) else None
