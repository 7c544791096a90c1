"""``M⁻¹`` of a Lagrange space on an interval mesh by static condensation of the cells'
interiors (docs/physics.md "Continuum", dense layers).

On a chain of cells the DOFs of a degree-``p`` space are the vertices and ``p − 1`` interior
DOFs per cell, and an interior DOF couples only to its own cell.  With each cell's mass matrix
split into interior ``i`` and end-vertex ``v`` blocks, ``M x = b`` is solved as

    y_c = (A_ii^c)⁻¹ b_i^c                                   (each cell, one stacked product)
    S x_v = b_v − Σ_c A_vi^c y_c,    S = Σ_c (A_vv^c − A_vi^c E_c),   E_c = (A_ii^c)⁻¹ A_iv^c
    x_i^c = y_c − E_c x_v^c

``S``, with the vertices numbered along the line, is tridiagonal and symmetric positive definite
(the Schur complement of a positive definite ``M``): LAPACK's ``dpttrf`` factors it once and
``dpttrs`` solves all columns together.  A solve is O(n p k) for ``k`` columns, in stacked
products of the cells' ``(p − 1)``-square blocks, where a sparse LU's triangular solves run
column by column (3.1× faster than SuperLU at n = 513, p = 8, k = 300; benchmarks/README.md,
"Run 21").
"""

from __future__ import annotations

import numpy as np
import scipy.linalg.lapack as lapack

Array = np.ndarray


class CondensedMass:
    """``M⁻¹ b`` of the mass matrix assembled from the cells' matrices ``local`` (``cells ×
    (p + 1) × (p + 1)``, in the dofmap's order ``cell_dofs``) of a space on a chain of
    interval cells whose DOFs sit at ``coordinates`` (module docstring).  Raises
    ``ValueError`` for cells that do not form a chain along the line."""

    def __init__(self, local: Array, cell_dofs: Array, coordinates: Array):
        cells, per_cell = cell_dofs.shape
        self.size = int(cell_dofs.max()) + 1
        order = np.argsort(coordinates[cell_dofs], axis=1, kind="stable")
        dofs = np.take_along_axis(cell_dofs, order, axis=1)  # each cell left to right
        local = np.take_along_axis(
            np.take_along_axis(local, order[:, :, None], 1), order[:, None], 2
        )
        ends, inner = [0, per_cell - 1], slice(1, per_cell - 1)
        vertices = np.unique(dofs[:, ends])
        self.vertices = vertices[np.argsort(coordinates[vertices], kind="stable")]
        number = np.full(self.size, -1)
        number[self.vertices] = np.arange(len(self.vertices))
        self.ends = number[dofs[:, ends]]  # (cells, 2): each cell's vertices, along the line
        self.interior = dofs[:, inner]  # (cells, p − 1)
        chained = np.array_equal(np.sort(self.ends[:, 0]), np.arange(cells)) and np.all(
            self.ends[:, 1] == self.ends[:, 0] + 1
        )
        shared = np.bincount(self.interior.ravel(), minlength=self.size).max(initial=0) > 1
        if not chained or shared or np.any(number[self.interior] >= 0):
            raise ValueError("static condensation needs the cells of an interval, in a chain")
        a_iv = local[:, inner][:, :, ends]
        self._inverse = np.linalg.inv(local[:, inner, inner])  # (cells, p − 1, p − 1)
        self._coupling = np.swapaxes(a_iv, 1, 2).copy()  # A_vi^c (cells, 2, p − 1)
        self._elimination = self._inverse @ a_iv  # E_c (cells, p − 1, 2)
        schur = local[:, ends][:, :, ends] - self._coupling @ self._elimination  # (cells, 2, 2)
        diagonal = np.zeros(len(self.vertices))
        np.add.at(diagonal, self.ends[:, 0], schur[:, 0, 0])
        np.add.at(diagonal, self.ends[:, 1], schur[:, 1, 1])
        off = np.zeros(len(self.vertices) - 1)
        off[self.ends[:, 0]] = schur[:, 0, 1]
        self._d, self._e, info = lapack.dpttrf(diagonal, off)
        if info != 0:
            raise ValueError(
                f"the vertices' Schur complement is not positive definite (dpttrf {info})"
            )

    def solve(self, rhs: Array) -> Array:
        """``M⁻¹ rhs`` for ``rhs`` of shape ``(n,)`` or ``(n, k)``."""
        b = np.asarray(rhs, dtype=float).reshape(self.size, -1)
        y = self._inverse @ b[self.interior]  # (cells, p − 1, k)
        r = b[self.vertices]
        pushed = self._coupling @ y  # (cells, 2, k): each cell's ends appear once per column
        r[self.ends[:, 0]] -= pushed[:, 0]
        r[self.ends[:, 1]] -= pushed[:, 1]
        x_v, info = lapack.dpttrs(self._d, self._e, r)
        if info != 0:
            raise ValueError(f"dpttrs failed ({info})")
        out = np.empty_like(b)
        out[self.vertices] = x_v
        out[self.interior] = y - self._elimination @ x_v[self.ends]
        return out.reshape(np.shape(rhs))
