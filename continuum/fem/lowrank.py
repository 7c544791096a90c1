"""Nonlocal data kernels in factored low-rank form.

A data kernel of ``L`` samples, ``A(y, y') = Σ_l c_l X^l(y) X^l(y')`` (``c_l = 1/L`` for the
perceptron's ``A``), tested against a finite-element basis ``ψ_b`` of the input coordinate gives
the kernel matrix

    K_bb' = ∫∫ A(y, y') ψ_b(y) ψ_b'(y') dy dy' = Σ_l c_l ξ_l[b] ξ_l[b'] = (Ξ diag(c) Ξᵀ)_bb',

with the load vectors ``ξ_l = (∫ X^l ψ_b dy)_b`` as the columns of the tall-skinny factor ``Ξ``
(``n × L``). ``K`` is dense but of rank ``≤ L``: it is never formed. The implicit operators of a
time step, ``α S + β K`` with a sparse ``S`` (a mass matrix), are PETSc matrices of type
``python`` (:class:`FactoredOperator`) applying ``α S x + Ξ (β c ⊙ (Ξᵀ x))``: memory and work per
application are ``O(nnz(S) + n·L)``, not ``O(n²)``.

The factored apply is memory-bound: it streams ``Ξ`` twice (``v = Ξᵀ x`` must be complete
before ``y = Ξ v``). Both passes are BLAS ``gemv`` calls on PETSc's own column-major storage of
``Ξ`` (through numpy), so they run on the BLAS threads of the process; PETSc's ``MATLRC``
computes the same product on one thread (``benchmarks/bandwidth.py`` measures both).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from mpi4py import MPI
from petsc4py import PETSc


def dense_columns(columns: np.ndarray) -> PETSc.Mat:
    """A sequential dense PETSc matrix (``n × k``) holding a copy of the array ``columns``."""
    rows, rank = columns.shape
    factor = PETSc.Mat().createDense((rows, rank), comm=MPI.COMM_SELF)  # type: ignore[arg-type]
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

    def shifted(self, sparse: PETSc.Mat, alpha: float, beta: float) -> tuple[PETSc.Mat, PETSc.Mat]:
        """The operator ``α S + β K = α S + Ξ diag(β c) Ξᵀ`` and its sparse part ``α S`` (a copy
        of ``S``, to build a preconditioner from); ``α S`` alone when ``β = 0``. The factor
        ``Ξ`` is shared, not copied."""
        scaled = sparse.copy()
        scaled.scale(alpha)
        if beta == 0.0:
            return scaled, scaled
        return FactoredOperator.matrix(scaled, self.factor, beta * self.weights), scaled

    def matrix(self) -> PETSc.Mat:
        """``K`` alone (no sparse part): ``Ξ diag(c) Ξᵀ`` applied in ``O(n·L)``."""
        return FactoredOperator.matrix(None, self.factor, self.weights)


class FactoredOperator:
    """The context of a PETSc ``python`` matrix ``y = S x + Ξ (d ⊙ (Ξᵀ x))`` (``S`` optional)."""

    def __init__(self, sparse: PETSc.Mat | None, factor: PETSc.Mat, diagonal: np.ndarray):
        self.sparse, self.factor = sparse, factor
        self.columns = factor.getDenseArray(readonly=True)  # n × L, column-major: no copy
        self.diagonal = np.asarray(diagonal, dtype=float).copy()

    @classmethod
    def matrix(cls, sparse: PETSc.Mat | None, factor: PETSc.Mat, diagonal: np.ndarray) -> PETSc.Mat:
        n = factor.getSize()[0]
        operator = PETSc.Mat().createPython((n, n), cls(sparse, factor, diagonal), MPI.COMM_SELF)  # type: ignore[arg-type]
        operator.setUp()
        return operator

    def mult(self, mat: PETSc.Mat, x: PETSc.Vec, y: PETSc.Vec) -> None:
        """``y = S x + Ξ (d ⊙ (Ξᵀ x))``: two streaming passes over ``Ξ``."""
        projections = self.columns.T @ x.getArray(readonly=True)
        with y as out:  # type: ignore[attr-defined]
            np.matmul(self.columns, self.diagonal * projections, out=out)
        if self.sparse is not None:
            self.sparse.multAdd(x, y, y)

    multTranspose = mult  # the operator is symmetric
