"""Data sets (inputs ``X^l`` on the input layer, targets ``Y^l`` on the output layer).

docs/physics.md "Discrete network and cost"; docs/physics.md "Continuum".  Three kinds:

* expressions in the neuron coordinates and the sample index ``l`` (README "Using it" grammar);
* ``probes``: the designed data sets whose kernel is local (docs/physics.md "Continuum"), giving
  Goldstein's
  chain and, with one-hot probes, a massive (Klein–Gordon) chain;
* arrays ``X``, ``Y`` read from ``.npz`` or ``.h5``.

The continuum limit needs field-normalised data: a sample ``X^l`` on the input layer is
the value of a function ``X^l(y)`` at the neuron coordinates; discrete delta functions are
``e_j/Δy_j``.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .conventions import LayerCoordinates, coordinate_names
from .datasets import Table, table
from .errors import ConfigError
from .expressions import Expression

Array = np.ndarray


@dataclass(frozen=True)
class DataSet:
    """``L`` input/target pairs: ``X`` of shape ``(L, N_0)``, ``Y`` of shape ``(L, N_M)``;
    optionally held-out test pairs ``X_test``, ``Y_test`` (docs/physics.md "Index layers"), and
    ``classes`` when the
    targets are one-hot class labels (then accuracies are reported)."""

    X: Array
    Y: Array
    description: str = ""
    X_test: Array | None = None
    Y_test: Array | None = None
    classes: bool = False

    def __post_init__(self):
        if self.X.ndim != 2 or self.Y.ndim != 2 or self.X.shape[0] != self.Y.shape[0]:
            raise ValueError(
                f"data shapes do not fit: X {self.X.shape}, Y {self.Y.shape} "
                "(expected (L, N_in) and (L, N_out))"
            )
        if self.X.shape[0] == 0:
            raise ValueError("the data set holds no samples (L = 0); the cost needs L ≥ 1")
        for name, a in (
            ("X", self.X),
            ("Y", self.Y),
            ("X_test", self.X_test),
            ("Y_test", self.Y_test),
        ):
            if a is not None and not np.all(np.isfinite(a)):
                raise ValueError(f"data array {name} holds NaN or inf")

    @property
    def tested(self) -> bool:
        """Whether test rows are held out."""
        return self.X_test is not None and self.X_test.shape[0] > 0

    @property
    def samples(self) -> int:
        return self.X.shape[0]


def coordinate_values(coords: LayerCoordinates, prefix: str) -> dict[str, Array]:
    """Coordinate arrays named as in expressions: ``x`` (line), ``x1, x2`` (grid) or the
    index ``i`` (index layer; ``y``, ``j`` on the input side)."""
    names = coordinate_names(coords.layout, prefix)
    return {name: coords.points[:, k] for k, name in enumerate(names)}


def _sample_grid(expr: Expression, coords: LayerCoordinates, prefix: str, L: int) -> Array:
    values = {k: v[None, :] for k, v in coordinate_values(coords, prefix).items()}
    return np.broadcast_to(expr(l=np.arange(L)[:, None], **values), (L, coords.size)).copy()


def from_expressions(
    input_expr: Expression,
    target_expr: Expression,
    samples: int,
    inputs: LayerCoordinates,
    outputs: LayerCoordinates,
    noise: float = 0.0,
    seed: int = 0,
) -> DataSet:
    """``X^l_j = X(y_j, l)``, ``Y^l_i = Y(x_i, l)`` (plus seeded Gaussian noise on targets)."""
    X = _sample_grid(input_expr, inputs, "y", samples)
    Y = _sample_grid(target_expr, outputs, "x", samples)
    if noise > 0:
        Y = Y + noise * np.random.default_rng(seed).standard_normal(Y.shape)
    return DataSet(X, Y, f"expressions: X = {input_expr.text}, Y = {target_expr.text}")


@dataclass(frozen=True)
class ProbeFactors:
    """Amplitudes of the probe data set (printed in the theory's dictionary).

    Derivative probe on bond ``(j, j+1)``: ``X = s_j (e_{j+1}/Δy_{j+1} − e_j/Δy_j)`` with
    ``s_j = √(κ L a_j)/a_j`` (``a_j`` the bond length); one-hot probe at ``j``:
    ``X = r_j e_j/Δy_j`` with ``r_j = √(m² L Δy_j)``.  With zero targets the cost is then

        C = (1/L) Σ_l ½ Δx Z_l² = ½ Δx [Σ_j a_j κ ((w_{j+1} − w_j)/a_j)² + Σ_j Δy_j m² w_j²]

    → ``½ ∫dx ∫dy [κ (∂_y w)² + m² w²]``: a string of tension κ and mass m².
    """

    stiffness: float
    mass: float
    bonds: int
    onehots: int
    bond_amplitude: Array
    onehot_amplitude: Array


def probes(
    inputs: LayerCoordinates, n_out: int, stiffness: float, mass: float = 0.0
) -> tuple[DataSet, ProbeFactors]:
    """Derivative probes on every bond (wrapping for periodic placement), plus one-hot
    probes on every site when ``mass > 0``; zero targets."""
    if inputs.layout != "line":
        raise ValueError("probe data sets are defined for line layers")
    n = inputs.size
    y, dy = inputs.points[:, 0], inputs.measure
    periodic = inputs.placement == "periodic"
    n_bonds = n if periodic else n - 1
    n_onehot = n if mass > 0 else 0
    L = n_bonds + n_onehot
    left = np.arange(n_bonds)
    right = (left + 1) % n
    a = np.where(right > left, y[right] - y[left], y[right] + 1.0 - y[left])
    s = np.sqrt(stiffness * L * a) / a
    r = np.sqrt(mass * L * dy)
    X = np.zeros((L, n))
    X[left, right] += s / dy[right]
    X[left, left] -= s / dy[left]
    X[n_bonds + np.arange(n_onehot), np.arange(n_onehot)] = r[:n_onehot] / dy[:n_onehot]
    factors = ProbeFactors(stiffness, mass, n_bonds, n_onehot, s, r[:n_onehot])
    desc = f"probes: {n_bonds} derivative (κ = {stiffness:g}), {n_onehot} one-hot (m² = {mass:g})"
    return DataSet(X, np.zeros((L, n_out)), desc), factors


ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
"""The first bytes of a zip archive (an ``.npz`` file), with and without members."""
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
"""The HDF5 signature (at offset 0 for files written by h5py and numpy tools)."""


@runtime_checkable
class StoredArray(Protocol):
    """What an ``np.ndarray`` and an unread ``h5py.Dataset`` share: shape, dtype and ``[()]``."""

    shape: tuple[int, ...]
    dtype: np.dtype

    def __getitem__(self, key: Any) -> Any: ...


def _check_real(path: Path, name: str, array: object) -> StoredArray:
    """``array``, refused unless a real numeric array (strings, objects, complex values,
    records)."""
    dtype = getattr(array, "dtype", None)
    if dtype is None or not isinstance(array, StoredArray):
        raise ConfigError(f"[data] path: {path}: {name} is not an array")
    if dtype.kind not in "iuf":
        raise ConfigError(
            f"[data] path: {path}: array {name} has dtype {dtype}; expected real numbers "
            "(integer or float; complex, string and object arrays are refused)"
        )
    return array


def read_arrays(path: str | Path, n_in: int, n_out: int) -> Table:
    """Features ``X`` (L, N_0) and targets from an ``.npz`` or ``.h5`` file: ``Y`` (L, N_M), or
    ``y`` (L,) — integer class labels (one-hot on ``N_M`` classes) or one regression target.

    The file's first bytes must be its format's signature (an ``.npz`` is a zip archive, an
    ``.h5`` an HDF5 file); arrays must be real numeric with the network's widths and at least
    one sample.  Every refusal is a :class:`ConfigError` naming ``[data] path``.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"[data] path: data file {path} does not exist")
    with path.open("rb") as file:
        head = file.read(8)
    npz = path.suffix.lower() == ".npz"
    if not head.startswith(ZIP_MAGIC if npz else HDF5_MAGIC):
        kind = "an .npz (zip) archive" if npz else "an HDF5 file"
        raise ConfigError(f"[data] path: {path} is not {kind} (its first bytes are {head!r})")
    try:
        if npz:
            with np.load(path, allow_pickle=False) as f:
                return _read_table(path, f, n_in, n_out)
        import h5py

        with h5py.File(path, "r") as f:
            return _read_table(path, f, n_in, n_out)
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"[data] path: {path} cannot be read: {exc}") from None


def _read_table(path: Path, container, n_in: int, n_out: int) -> Table:
    """``X`` and ``Y`` (or labels ``y``) of an open ``.npz`` or HDF5 file, their dtypes and
    shapes checked before they are read."""
    names = container.files if hasattr(container, "files") else list(container.keys())
    if "X" not in names or not {"Y", "y"} & set(names):
        raise ConfigError(
            f"[data] path: {path} lacks array(s) X and Y (or y), holds {sorted(names)}"
        )
    target = "Y" if "Y" in names else "y"
    X, T = _load_member(path, container, "X"), _load_member(path, container, target)
    X, T = _check_real(path, "X", X), _check_real(path, target, T)
    if len(X.shape) == 2 and X.shape[0] == 0:
        raise ConfigError(f"[data] path: {path}: the data set holds no samples (L = 0)")
    if target == "Y":
        if len(X.shape) != 2 or X.shape[1] != n_in or len(T.shape) != 2 or T.shape[1] != n_out:
            raise ConfigError(
                f"[data] path: {path}: X has shape {X.shape}, Y {T.shape}; the network needs "
                f"(L, {n_in}) and (L, {n_out})"
            )
        return Table(np.asarray(X[()], dtype=float), np.asarray(T[()], dtype=float), False)
    if len(X.shape) != 2 or X.shape[1] != n_in or len(T.shape) != 1:
        raise ConfigError(
            f"[data] path: {path}: X has shape {X.shape}, y {T.shape}; the network needs "
            f"(L, {n_in}) and (L,)"
        )
    y = np.asarray(T[()])
    labels = np.issubdtype(y.dtype, np.integer)
    if not labels and n_out != 1:
        raise ConfigError(
            f"[data] path: {path}: y holds {y.dtype} values (a regression target), so the "
            f"output layer needs 1 neuron, not {n_out}; store integer class labels for a "
            "classifier"
        )
    return table(np.asarray(X[()], dtype=float), y, labels, n_out)


def _load_member(path: Path, container, name: str) -> object:
    """Array ``name`` of an open ``.npz`` or HDF5 file (an ``h5py.Dataset`` stays unread)."""
    names = container.files if hasattr(container, "files") else list(container.keys())
    if name not in names:
        raise ConfigError(f"[data] path: {path} lacks array {name!r} (it holds {sorted(names)})")
    try:
        return container[name]
    except ValueError:  # an object array is stored pickled; allow_pickle=False refuses it
        raise ConfigError(
            f"[data] path: {path}: array {name} is an object array (stored pickled); expected "
            "real numbers"
        ) from None
