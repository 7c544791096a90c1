"""``M⁻¹`` of a Lagrange space on an interval mesh by static condensation of blocks of cells
(docs/physics.md "Continuum", dense layers).

On a chain of cells the DOFs of a degree-``p`` space are the vertices and ``p − 1`` interior
DOFs per cell.  Group the cells, along the line, into blocks of ``g`` neighbours
(:func:`cells_per_block`): a block's interior — its cells' interiors and the ``g − 1`` vertices
between them, ``g p − 1`` DOFs — couples only to itself and to the block's two end vertices.  With
each block's mass matrix (the sum of its cells') split into interior ``i`` and end ``v`` parts,
``M x = b`` is solved as

    y_c = (A_ii^c)⁻¹ b_i^c                                   (each block, one stacked product)
    S x_v = b_v − Σ_c A_vi^c y_c,    S = Σ_c (A_vv^c − A_vi^c E_c),   E_c = (A_ii^c)⁻¹ A_iv^c
    x_i^c = y_c − E_c x_v^c

``S``, with the blocks' end vertices numbered along the line, is tridiagonal and symmetric
positive definite (the Schur complement of a positive definite ``M``): LAPACK's ``dpttrf``
factors it once and ``dpttrs`` solves all columns together.  A solve is ``O(n g p k)`` for ``k``
columns, in stacked products of the blocks' ``(g p − 1)``-square matrices, where a sparse LU's
triangular solves run column by column (3.6× faster than SuperLU at n = 513, p = 8, k = 300).
Blocks of single cells at low ``p`` would make many tiny products and a long tridiagonal
recurrence; blocks of about :data:`BLOCK_INTERIOR` DOFs run 3.0× faster at P1, 2.1× at P2,
1.3× at P4 and the same from P8 (benchmarks/README.md, "Run 22").
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.linalg.lapack as lapack

Array = np.ndarray

BLOCK_INTERIOR = 15
"""The most interior DOFs ``g p − 1`` of a block: on n = 513 DOFs and 300 columns the solve
took, at P2 with blocks of 1, 3, 7, 15, 31, 63 interior DOFs, 1.23, 0.78, 0.62, 0.61, 0.62,
0.83 ms; at P4 with 3 … 63: 0.77, 0.62, 0.60, 0.63, 0.85 ms; at P8 with 7 … 63: 0.64, 0.60,
0.63, 0.83 ms; at P12 on 385 DOFs with 11, 23, 47: 0.40, 0.40, 0.47 ms
(``benchmarks/mass_solve.py --sweep``, benchmarks/README.md "Run 22")."""


@functools.cache
def cells_per_block(cells: int, degree: int, interior: int = BLOCK_INTERIOR) -> int:
    """The cells ``g`` of a block: the largest divisor of ``cells`` whose block has at most
    ``interior`` interior DOFs (``g p − 1``), 1 where no larger one does."""
    largest = (interior + 1) // degree
    return max((g for g in range(1, largest + 1) if cells % g == 0), default=1)


def along_the_line(local: Array, cell_dofs: Array, coordinates: Array) -> tuple[Array, Array]:
    """The cells' matrices and DOFs with every cell's DOFs left to right and the cells in order
    along the line.  Raises ``ValueError`` unless each cell's right end is the next one's left
    end and every other DOF belongs to one cell alone."""
    order = np.argsort(coordinates[cell_dofs], axis=1, kind="stable")
    dofs = np.take_along_axis(cell_dofs, order, axis=1)
    local = np.take_along_axis(np.take_along_axis(local, order[:, :, None], 1), order[:, None], 2)
    line = np.argsort(coordinates[dofs[:, 0]], kind="stable")
    dofs, local = dofs[line], local[line]
    vertices = np.append(dofs[:, 0], dofs[-1, -1])
    if not (
        np.array_equal(dofs[1:, 0], dofs[:-1, -1])
        and np.all(np.bincount(dofs.ravel())[dofs[:, 1:-1]] == 1)
        and len(np.unique(vertices)) == len(vertices)
    ):
        raise ValueError("static condensation needs the cells of an interval, in a chain")
    return local, dofs


def in_blocks(local: Array, dofs: Array, g: int) -> tuple[Array, Array]:
    """The matrices (the sums of their cells') and DOFs of blocks of ``g`` consecutive cells,
    from cells in order along the line (:func:`along_the_line`)."""
    cells, per_cell = dofs.shape
    p = per_cell - 1
    blocks = np.zeros((cells // g, g * p + 1, g * p + 1))
    block_dofs = np.empty((cells // g, g * p + 1), dtype=dofs.dtype)
    for j in range(g):
        own = slice(j * p, j * p + per_cell)
        blocks[:, own, own] += local[j::g]
        block_dofs[:, own] = dofs[j::g]
    return blocks, block_dofs


class CondensedMass:
    """``M⁻¹ b`` of the mass matrix assembled from the cells' matrices ``local`` (``cells ×
    (p + 1) × (p + 1)``, in the dofmap's order ``cell_dofs``) of a space on a chain of
    interval cells whose DOFs sit at ``coordinates`` (module docstring), in blocks of at most
    ``interior`` interior DOFs.  Raises ``ValueError`` for cells that do not form a chain along
    the line."""

    def __init__(
        self, local: Array, cell_dofs: Array, coordinates: Array, interior: int = BLOCK_INTERIOR
    ):
        cells, per_cell = cell_dofs.shape
        self.size = int(cell_dofs.max()) + 1
        g = cells_per_block(cells, per_cell - 1, interior)
        local, dofs = in_blocks(*along_the_line(local, cell_dofs, coordinates), g)
        ends, inner = [0, dofs.shape[1] - 1], slice(1, dofs.shape[1] - 1)
        self.vertices = np.append(dofs[:, 0], dofs[-1, -1])  # the blocks' ends, along the line
        self.interior = dofs[:, inner]  # (blocks, g p − 1)
        self._order = np.concatenate([self.vertices, self.interior.ravel()])
        self._unorder = np.argsort(self._order)  # the DOFs from the vertices-first order
        a_iv = local[:, inner][:, :, ends]
        self._inverse = np.linalg.inv(local[:, inner, inner])  # (blocks, g p − 1, g p − 1)
        self._coupling = np.swapaxes(a_iv, 1, 2).copy()  # A_vi^c (blocks, 2, g p − 1)
        self._elimination = self._inverse @ a_iv  # E_c (blocks, g p − 1, 2)
        schur = local[:, ends][:, :, ends] - self._coupling @ self._elimination  # (blocks, 2, 2)
        diagonal = np.zeros(len(self.vertices))
        diagonal[:-1] += schur[:, 0, 0]
        diagonal[1:] += schur[:, 1, 1]
        self._d, self._e, info = lapack.dpttrf(diagonal, schur[:, 0, 1].copy())
        if info != 0:
            raise ValueError(
                f"the vertices' Schur complement is not positive definite (dpttrf {info})"
            )

    def solve(self, rhs: Array) -> Array:
        """``M⁻¹ rhs`` for ``rhs`` of shape ``(n,)`` or ``(n, k)``."""
        b = np.asarray(rhs, dtype=float).reshape(self.size, -1)
        blocks, inner = self.interior.shape
        # one copy in the order [vertices; each block's interior], solved in place
        x = np.take(b, self._order, axis=0)
        x_v, x_i = x[: blocks + 1], x[blocks + 1 :].reshape(blocks, inner, b.shape[1])
        y = self._inverse @ x_i  # (blocks, g p − 1, k)
        pushed = self._coupling @ y  # (blocks, 2, k): each block's two ends
        x_v[:-1] -= pushed[:, 0]
        x_v[1:] -= pushed[:, 1]
        x_v[:], info = lapack.dpttrs(self._d, self._e, x_v)
        if info != 0:
            raise ValueError(f"dpttrs failed ({info})")
        np.subtract(y, self._elimination @ np.stack([x_v[:-1], x_v[1:]], axis=1), out=x_i)
        return np.take(x, self._unorder, axis=0).reshape(np.shape(rhs))
