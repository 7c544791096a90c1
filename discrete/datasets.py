"""Tabular data sets on index layers: scikit-learn's bundled sets and arrays from files.

docs/physics.md "Index layers"; README "Using it".  Features ``X`` (``L × d``) go to an input index
layer of ``d`` neurons and targets to an output index layer: a classification set's labels become
one-hot rows of ``k`` classes, a regression target one column.  Data on index layers need no
smoothness.

A split is seeded: of a permutation of all rows (``numpy.random.default_rng(seed)``), the
first ``samples`` rows are used, the first ``test`` of them held out for testing; both parts
keep the rows' original order (all rows and no test: the data exactly as given).  With
``standardize`` every feature is shifted and scaled to mean 0 and population standard
deviation 1 *on the training rows* (the test rows get the same affine map); then every
feature is multiplied by ``scale`` (e.g. 1/16 maps the digits' pixel values 0 … 16 to
[0, 1], since their constant border pixels cannot be standardized).

Every defect of the data is a :class:`DataError` naming the ``[data]`` key it concerns.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

Array = np.ndarray

DATASETS = {
    "digits": ("load_digits", True),
    "iris": ("load_iris", True),
    "wine": ("load_wine", True),
    "breast_cancer": ("load_breast_cancer", True),
    "diabetes": ("load_diabetes", False),
}
"""Bundled scikit-learn sets (no download): loader name and whether it is a classification."""

SHAPES = {
    "digits": (1797, 64, 10),
    "iris": (150, 4, 3),
    "wine": (178, 13, 3),
    "breast_cancer": (569, 30, 2),
    "diabetes": (442, 10, 1),
}
"""Rows, features ``d`` and output neurons ``k`` of each bundled set (checked against the
loaded arrays)."""


class DataError(ValueError):
    """Data that cannot be used; ``key`` is the ``[data]`` key the problem concerns."""

    def __init__(self, key: str, problem: str):
        super().__init__(problem)
        self.key = key


@dataclass(frozen=True)
class Table:
    """Features ``X`` (L, d) and targets ``Y`` (L, k), one-hot when ``classes``."""

    X: Array
    Y: Array
    classes: bool


@functools.cache
def bundled(name: str) -> Table:
    """The scikit-learn set ``name`` (one of :data:`DATASETS`)."""
    if name not in DATASETS:
        raise DataError("name", f"unknown data set {name!r}; choose one of {tuple(DATASETS)}")
    import sklearn.datasets

    loader, classes = DATASETS[name]
    X, y = getattr(sklearn.datasets, loader)(return_X_y=True)
    return table(np.asarray(X, dtype=float), np.asarray(y), classes, SHAPES[name][2])


def table(X: Array, y: Array, classes: bool, outputs: int) -> Table:
    """``(X, y)`` as features and targets: integer labels ``0 … k−1`` become one-hot rows
    (``classes``), a 1-D regression target one column, 2-D targets stay as given."""
    if X.ndim != 2:
        raise DataError("path", f"features X must be a 2-D array (L, d), got shape {X.shape}")
    if y.shape[:1] != X.shape[:1]:
        raise DataError("path", f"X has {X.shape[0]} rows but the targets {y.shape[0]}")
    if not classes:
        Y = np.asarray(y, dtype=float)
        return Table(X, Y[:, None] if Y.ndim == 1 else Y, False)
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.min() < 0 or labels.max() >= outputs:
        raise DataError(
            "path",
            f"class labels must be integers 0 … {outputs - 1} (one per output neuron), "
            f"got values {labels.min()} … {labels.max()}",
        )
    return Table(X, np.eye(outputs)[labels], True)


@dataclass(frozen=True)
class Split:
    """Training and test rows of a table, standardised or not."""

    X: Array
    Y: Array
    X_test: Array
    Y_test: Array
    classes: bool
    mean: Array
    scale: Array
    """The features are ``(X − mean) ⊙ scale``."""


def split(
    data: Table, samples: int | None, test: int, standardize: bool, seed: int, scale: float = 1.0
) -> Split:
    """The seeded split of ``samples`` rows (all for ``None``), ``test`` of them held out."""
    rows = data.X.shape[0]
    for name, a in (("X", data.X), ("Y", data.Y)):
        if not np.all(np.isfinite(a)):
            bad = np.unique(np.nonzero(~np.isfinite(a))[0])
            raise DataError("path", f"data array {name} holds NaN or inf (rows {bad[:5].tolist()})")
    samples = rows if samples is None else samples
    if samples > rows:
        raise DataError("samples", f"{samples} exceeds the {rows} rows of the data set")
    if test >= samples:
        raise DataError(
            "test",
            f"{test} rows held out leave none of [data] samples = {samples} for training",
        )
    order = np.random.default_rng(seed).permutation(rows)[:samples]
    held, train = np.sort(order[:test]), np.sort(order[test:])
    X, X_test = data.X[train], data.X[held]
    mean, factor = np.zeros(X.shape[1]), np.ones(X.shape[1])
    if standardize:
        mean, factor = X.mean(axis=0), X.std(axis=0)
        constant = np.flatnonzero(factor == 0)
        if constant.size:
            raise DataError(
                "standardize",
                f"feature(s) {constant[:8].tolist()}{' …' if constant.size > 8 else ''} are "
                f"constant on the {len(train)} training rows (zero variance): they cannot be "
                "scaled to unit variance; set standardize = false",
            )
    scales = scale / factor
    return Split(
        (X - mean) * scales,
        data.Y[train],
        (X_test - mean) * scales,
        data.Y[held],
        data.classes,
        mean,
        scales,
    )
