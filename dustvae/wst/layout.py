"""The coefficient layout: what every index of the normalised WST vector means.

Per field, Kymatio's order: first layer ``(j1, theta1)`` with ``j1`` outer
(``J * L`` entries), then the second layer ``(j1, theta1, j2, theta2)`` with
``j2 > j1`` (``L**2 * J * (J - 1) / 2`` entries); fields follow one another.
For J = 5 and L = 8 that is 40 + 640 = 680 per field and 1360 for Q and U.

Everything that needs to know which coefficient is which (the RWST fit,
per-scale errors, figures) asks this object rather than doing index
arithmetic of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .. import defaults


def kymatio_angles(L: int) -> np.ndarray:
    """Angle in radians of Kymatio's wavelet index ``l``: ``(L/2 - 1 - l) * pi / L``."""
    return (L // 2 - 1 - np.arange(L)) * np.pi / L


#: How the vector is normalised, as stores and checkpoints record it: a short code with a version, so that
#: rewording a description never breaks a file (docs/conventions.rst: log2 S1 and log2 S2/S1(j1, theta1) of
#: the patch divided by its polarization amplitude).
NORMALISATION = "log2-s1-s2ratio-amplitude/1"
#: Earlier spellings of a normalisation code, read as the code they name.
_NORMALISATION_ALIASES = {"log2 S1; log2 S2/S1(j1,theta1); patch divided by amplitude": NORMALISATION}


def normalisation_code(value: object) -> str:
    """The normalisation code of a recorded value (earlier free-text spellings mapped to their code)."""
    return _NORMALISATION_ALIASES.get(str(value), str(value))


@dataclass(frozen=True)
class CoefficientLayout:
    """Index map of the normalised vector for ``fields``, ``J`` and ``L``.

    Attributes (arrays of the vector's length)
    ------------------------------------------
    field : int array, index into ``fields``
    layer : 1 or 2
    j1, l1 : scale and angle index of the first wavelet
    j2, l2 : those of the second (-1 on the first layer)
    theta1, theta2 : angles in radians (NaN for theta2 on the first layer)
    """

    fields: tuple[str, ...] = defaults.FIELDS
    J: int = defaults.J
    L: int = defaults.L

    @property
    def n_s1(self) -> int:
        """First-layer coefficients per field."""
        return self.J * self.L

    @property
    def n_s2(self) -> int:
        """Second-layer coefficients per field."""
        return self.L * self.L * self.J * (self.J - 1) // 2

    @property
    def per_field(self) -> int:
        """Coefficients per field (680 for J=5, L=8)."""
        return self.n_s1 + self.n_s2

    def __len__(self) -> int:
        return self.per_field * len(self.fields)

    @property
    def angles(self) -> np.ndarray:
        """The L wavelet angles in radians, by index ``l``."""
        return kymatio_angles(self.L)

    @cached_property
    def _table(self) -> dict[str, np.ndarray]:
        rows = []
        for f in range(len(self.fields)):
            for j1 in range(self.J):
                for l1 in range(self.L):
                    rows.append((f, 1, j1, l1, -1, -1))
            for j1 in range(self.J):
                for l1 in range(self.L):
                    for j2 in range(j1 + 1, self.J):
                        for l2 in range(self.L):
                            rows.append((f, 2, j1, l1, j2, l2))
        table = np.array(rows, dtype=np.int64)
        names = ("field", "layer", "j1", "l1", "j2", "l2")
        out = {name: table[:, i] for i, name in enumerate(names)}
        angles = self.angles
        out["theta1"] = angles[out["l1"]]
        out["theta2"] = np.where(out["l2"] >= 0, angles[np.maximum(out["l2"], 0)], np.nan)
        for array in out.values():
            array.setflags(write=False)
        return out

    def __getattr__(self, name: str) -> np.ndarray:
        if name in ("field", "layer", "j1", "l1", "j2", "l2", "theta1", "theta2"):
            return self._table[name]
        raise AttributeError(name)

    def describe(self, index: int) -> dict:
        """The meaning of one vector index as a dict (field name, layer, scales, angles)."""
        t = self._table
        row = {k: t[k][index].item() for k in ("layer", "j1", "l1", "j2", "l2", "theta1", "theta2")}
        row["field"] = self.fields[int(t["field"][index])]
        return row

    def index(self, field: str, layer: int, j1: int, l1: int, j2: int = -1, l2: int = -1) -> int:
        """Vector index of a coefficient (inverse of :meth:`describe`)."""
        f = self.fields.index(field)
        base = f * self.per_field
        if layer == 1:
            return base + j1 * self.L + l1
        if not 0 <= j1 < j2 < self.J:
            raise ValueError(f"second layer needs 0 <= j1 < j2 < J, got j1={j1}, j2={j2}")
        # pairs (j1', j2') that precede (j1, j2) within the block of theta1 = l1
        before_j1 = sum((self.J - 1 - k) for k in range(j1)) * self.L * self.L
        within = l1 * (self.J - 1 - j1) * self.L + (j2 - j1 - 1) * self.L + l2
        return base + self.n_s1 + before_j1 + within

    def select(self, field: str | None = None, layer: int | None = None, j1: int | None = None, j2: int | None = None) -> np.ndarray:
        """Indices (sorted) matching every given criterion."""
        t = self._table
        keep = np.ones(len(self), dtype=bool)
        if field is not None:
            keep &= t["field"] == self.fields.index(field)
        if layer is not None:
            keep &= t["layer"] == layer
        if j1 is not None:
            keep &= t["j1"] == j1
        if j2 is not None:
            keep &= t["j2"] == j2
        return np.flatnonzero(keep)

    def parent_s1(self) -> np.ndarray:
        """For every second-layer index, the vector index of its ``S1(j1, theta1)``; -1 on layer 1."""
        t = self._table
        parent = t["field"] * self.per_field + t["j1"] * self.L + t["l1"]
        return np.where(t["layer"] == 2, parent, -1)

    def to_attrs(self) -> dict:
        """Attributes that identify this layout in a store or checkpoint."""
        return {"J": self.J, "L": self.L, "fields": ",".join(self.fields), "vector_length": len(self)}

    @classmethod
    def from_attrs(cls, attrs) -> "CoefficientLayout":
        """Rebuild a layout from :meth:`to_attrs` output (HDF5 attrs or a dict)."""
        fields = attrs["fields"]
        fields = tuple(fields.split(",")) if isinstance(fields, str) else tuple(fields)
        return cls(fields=fields, J=int(attrs["J"]), L=int(attrs["L"]))
