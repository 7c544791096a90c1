"""The interface of a layer kind (:mod:`continuum.fields.layers`): a weight layer's discrete
half (that of :class:`discrete.network.Layer`) and its continuum half on FE spaces."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np
from mpi4py import MPI

from continuum.fem.row_partition import RowPartition, sum_over_ranks
from discrete.network import Layer

if TYPE_CHECKING:
    from continuum.settings import Config

Array = np.ndarray

Factors = tuple[Array, Array]
"""``(A, B)``: a weight block ``A Bᵀ`` (``A`` this rank's rows × r, ``B`` columns × r)."""

ShiftFactors = tuple[float, Factors] | None
"""``(s, (A, B))``: the coefficients ``W + s A Bᵀ`` of one layer, applied without forming them."""


class Space(Protocol):
    """What a layer kind uses of an FE factor space (:mod:`continuum.fem.spaces`)."""

    size: int
    dof_coordinates: Array
    quadrature_points: Array

    def load(self, values_q: Array) -> Array: ...

    def solve_mass(self, rhs: Array) -> Array: ...

    def moments(self, values_q: Array) -> tuple[Array, Array]: ...

    def at_quadrature(self, coefficients: Array) -> Array: ...


@dataclass(frozen=True)
class Inputs:
    """A layer's view of its input activities: ``values`` enter the forward product, ``image``
    the weight force (``None`` when no gradient is wanted)."""

    values: Array
    image: Array | None


class LayerKind(ABC):
    """One weight layer ``m``: discrete layer, input and output spaces, rows on this rank.

    The discrete half delegates to :class:`discrete.network.Layer`; a kind's module adds the
    continuum half.  ``shape`` is the full coefficient matrix, distributed by its rows.

    ``family`` is the registry's model family (:mod:`continuum.models.registry`) of a series
    holding this kind: ``galerkin`` where every layer's discrete half approaches its continuum
    at second order in ``1/N``, another where one kind changes that order; :meth:`requires`
    states what the kind needs of the configuration at its layer, so that the registry accepts
    or refuses a series from the kinds' declarations alone."""

    name: ClassVar[str]
    connectivity: ClassVar[str]
    convention: ClassVar[str]
    family: ClassVar[str]

    @classmethod
    def requires(cls, cfg: Config, m: int) -> str | None:
        """``None`` when weight layer ``m`` of ``cfg`` can be of this kind, else the reason
        (naming the keys)."""
        return None

    def __init__(self, layer: Layer, space_in: Space, space_out: Space, comm: MPI.Comm):
        self.layer, self.space_in, self.space_out = layer, space_in, space_out
        self.shape = (space_out.size, self.columns(layer, space_in))
        self.partition = RowPartition.of(space_out.size, comm)
        self.rows = self.partition.rows

    @staticmethod
    @abstractmethod
    def columns(layer: Layer, space_in: Space) -> int:
        """The number of columns of the coefficient matrix."""

    # ------------------------------------------------------------------ discrete half

    def discrete_forward(self, W: Array, h: Array) -> Array:
        """``Σ_j W_ij h_j`` of a batch ``h`` (L, n_in)."""
        return self.layer.apply(W, h)

    def discrete_backward(self, W: Array, d: Array) -> Array:
        """``Σ_i W_ij d_i`` of a batch ``d`` (L, n_out)."""
        return self.layer.apply_transpose(W, d)

    def discrete_force(self, d: Array, h: Array) -> Array:
        """``Σ_l d_i^l h_j^l`` in the layer's storage."""
        return self.layer.outer(d, h)

    # ------------------------------------------------------------------ continuum half

    def shifted(self, W: Array, shift: ShiftFactors) -> Array:
        """This rank's rows of ``W + s A Bᵀ`` (formed: for a kind whose blocks are thin)."""
        if shift is None:
            return W
        s, (a, b) = shift
        return W + a @ (s * b.T)

    def gather(self, local: Array) -> Array:
        """All rows of a row-distributed array, on every rank (``Allgatherv``)."""
        return self.partition.gather(local)

    def sum_over_ranks(self, a: Array) -> Array:
        """A sum over the rows of every rank (``Allreduce``)."""
        return sum_over_ranks(self.partition.comm, a)

    @abstractmethod
    def data_inputs(self, X_q: Array) -> Inputs:
        """:meth:`inputs` of the data ``X^l`` at the input quadrature points (computed once)."""

    @abstractmethod
    def interpolate(self, weight: Callable[[Array, Array], Array]) -> Array:
        """The full coefficient matrix interpolating ``weight(x, y)`` (output, input points)."""

    @abstractmethod
    def inputs(self, h_q: Array, riesz: bool) -> Inputs:
        """What the layer reads of its activities ``h^(m)`` at the input quadrature points."""

    @abstractmethod
    def forward(self, W: Array, x: Inputs, bias: Array, shift: ShiftFactors) -> Array:
        """``z^(m+1)`` at the output quadrature points (one column per sample)."""

    @abstractmethod
    def backward(self, W: Array, delta_q: Array, d: Array, shift: ShiftFactors) -> Array:
        """The back-propagated field at the input quadrature points, before ``σ'(z^(m))``,
        from ``δ^(m+1)`` at the output quadrature points and its loads ``d = ∫ φ δ``."""

    @abstractmethod
    def force(self, x: Inputs, delta_q: Array, riesz_d: Array, L: int) -> Factors:
        """The Riesz image of ``δC/δw^(m)`` as ``R Sᵀ`` (this rank's rows of ``R``), from the
        inputs, ``δ^(m+1)`` at the output quadrature points and ``M⁻¹ d`` (all rows)."""

    @abstractmethod
    def lattice_values(self, W: Array, Ex, Ey) -> Array:
        """The field at the lattice (this rank's part: the caller sums over the ranks), from
        the point evaluations ``Ex`` of the output space and ``Ey`` of the input space."""
