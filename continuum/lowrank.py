"""Nonlocal data kernels in factored low-rank form.

A data kernel of ``L`` samples, ``A(y, y') = Σ_l c_l X^l(y) X^l(y')`` (``c_l = 1/L`` for the
perceptron's ``A``), tested against a finite-element basis ``ψ_b`` of the input coordinate gives
the kernel matrix

    K_bb' = ∫∫ A(y, y') ψ_b(y) ψ_b'(y') dy dy' = Σ_l c_l ξ_l[b] ξ_l[b'] = (Ξ diag(c) Ξᵀ)_bb',

with the load vectors ``ξ_l = (∫ X^l ψ_b dy)_b`` as the columns of the tall-skinny factor ``Ξ``
(``n × L``). ``K`` is dense but of rank ``≤ L``: it is never formed. The implicit operators of a
time step, ``α S + β K`` with a sparse ``S`` (a mass matrix), are PETSc ``MATLRC`` matrices
``α S + Ξ diag(β c) Ξᵀ``: memory and work per application are ``O(nnz(S) + n·L)``, not ``O(n²)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from mpi4py import MPI
from petsc4py import PETSc


def dense_columns(columns: np.ndarray) -> PETSc.Mat:
    """A sequential dense PETSc matrix (``n × k``) holding a copy of the array ``columns``."""
    rows, rank = columns.shape
    factor = PETSc.Mat().createDense([rows, rank], comm=MPI.COMM_SELF)
    factor.setUp()
    factor.getDenseArray()[:] = columns
    factor.assemble()
    return factor


@dataclass
class LowRankKernel:
    """The symmetric kernel matrix ``K = Ξ diag(c) Ξᵀ``, stored only as its factors.

    ``factor`` is the dense ``n × L`` matrix ``Ξ``, ``weights`` the vector ``c`` of length ``L``.
    """

    factor: PETSc.Mat
    weights: np.ndarray

    @classmethod
    def from_columns(cls, columns: np.ndarray, weights: np.ndarray) -> LowRankKernel:
        """The kernel ``Σ_l c_l ξ_l ξ_lᵀ`` of the columns ``ξ_l`` of ``columns`` (``n × L``)."""
        if columns.shape[1] != len(weights):
            raise ValueError(f"{columns.shape[1]} columns but {len(weights)} weights")
        return cls(dense_columns(columns), np.asarray(weights, dtype=float).copy())

    @property
    def size(self) -> int:
        """The order ``n`` of the kernel matrix."""
        return self.factor.getSize()[0]

    @property
    def rank(self) -> int:
        """The number ``L`` of factor columns (an upper bound of the rank)."""
        return self.factor.getSize()[1]

    @property
    def nbytes(self) -> int:
        """Bytes held by the factors: ``(n + 1)·L`` doubles."""
        return (self.size + 1) * self.rank * np.dtype(PETSc.ScalarType).itemsize

    def shifted(self, sparse: PETSc.Mat, alpha: float, beta: float) -> PETSc.Mat:
        """The operator ``α S + β K = α S + Ξ diag(β c) Ξᵀ`` as a PETSc ``MATLRC``.

        ``S`` is copied and scaled (``α S`` alone is returned as a sparse matrix when ``β = 0``);
        the factor ``Ξ`` is shared, not copied.
        """
        scaled = sparse.copy()
        scaled.scale(alpha)
        if beta == 0.0:
            return scaled
        operator = PETSc.Mat().createLRC(scaled, self.factor, self._diagonal(beta), None)
        operator.setUp()
        return operator

    def matrix(self) -> PETSc.Mat:
        """``K`` alone as a ``MATLRC`` (no sparse part): ``Ξ diag(c) Ξᵀ`` applied in ``O(n·L)``."""
        operator = PETSc.Mat().createLRC(None, self.factor, self._diagonal(1.0), None)
        operator.setUp()
        return operator

    def _diagonal(self, scale: float) -> PETSc.Vec:
        """The diagonal ``scale · c`` as a PETSc vector owning its storage."""
        diagonal = PETSc.Vec().createSeq(self.rank, comm=MPI.COMM_SELF)
        diagonal.setArray(scale * self.weights)
        return diagonal
