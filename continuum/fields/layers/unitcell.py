"""The unit-cell layer kind: the ultra-local fields of a banded layer (docs/physics.md "Layer
kinds in series", docs/toy-models.md).

Discrete: a banded layer ``z_i = Σ_s W_is h_{i+s} + b_i`` under the unit-cell convention
``W_is = w_s(x_i)`` (no ``Δy``: the ``S`` weights of an output are components of a field, not a
Riemann sum).  As the spacing ``a → 0`` (``h_{i+s} = h(x_i + s a) → h(x_i)``) its limit is

    z^(m+1)(x) = Σ_s w_s(x) h^(m)(x) + b(x),
    δ^(m)(x)   = σ'(z^(m)(x)) Σ_s w_s(x) δ^(m+1)(x),
    δC/δw_s(x) = (1/L) Σ_l δ^(m+1),l(x) h^(m),l(x)      (the same for every s),

with no spatial operator at all: only ``Σ_s w_s`` is fixed by the data, and the network
differs from the limit by the shift ``s a`` of its inputs (first order in ``1/N``).  Input and
output live on one domain and share one Lagrange space ``V``; ``w_s`` is the column ``s`` of an
``(n, S)`` coefficient matrix, products are taken at the quadrature points, and the Riesz image
of the force is one vector for all offsets: the factors ``(R, 1_S)`` with
``R = (1/L) M⁻¹ Tᵀ ω (Σ_l δ^l h^l)`` (rank one).  The rows of the matrix (the dofs of ``V``) are
split over the ranks like a dense layer's; the forward pass gathers the ``n × S`` coefficients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from mpi4py import MPI

from continuum.fields.layers.kind import Factors, Inputs, LayerKind, ShiftFactors, Space
from discrete.network import Layer

if TYPE_CHECKING:
    from continuum.settings import Config

Array = np.ndarray


class UnitCellLayer(LayerKind):
    """``w_s^(m)(x)``, one field per offset ``s``, of a banded layer."""

    name = "unit-cell"
    connectivity = "banded"
    convention = "unit-cell"
    family = "unit-cell"

    @classmethod
    def requires(cls, cfg: Config, m: int) -> str | None:
        """The squared error on line or grid layers, and one domain on both sides: ``w_s(x)``
        maps ``h(x)`` to ``z(x)`` at the same point, so the widths and layouts of layers ``m``
        and ``m + 1`` are equal (docs/physics.md "Layer kinds in series")."""
        if cfg.network.loss != "mse":
            return (
                f"[network] loss = {cfg.network.loss!r}: only the tensor-product Galerkin fields "
                "of dense networks solve it"
            )
        if "index" in cfg.coordinates.layout:
            return "[coordinates] layout = 'index': the unit-cell fields are those of line layers"
        widths, layout = cfg.network.widths, cfg.coordinates.layout
        if (widths[m], layout[m]) != (widths[m + 1], layout[m + 1]):
            return (
                f"[coordinates] weights: the unit-cell layer {m} maps a field to one on the same "
                f"domain, but [network] widths[{m}:{m + 2}] = {list(widths[m : m + 2])} and "
                f"[coordinates] layout[{m}:{m + 2}] = {list(layout[m : m + 2])} differ"
            )
        return None

    def __init__(self, layer: Layer, space_in: Space, space_out: Space, comm: MPI.Comm):
        if space_in is not space_out:
            raise ValueError(
                "a unit-cell layer maps fields on one domain to the same domain: equal widths "
                "and layouts on both sides"
            )
        super().__init__(layer, space_in, space_out, comm)

    @staticmethod
    def columns(layer: Layer, space_in: Space) -> int:
        """One column per offset ``s``."""
        return layer.weight_shape[1]

    def data_inputs(self, X_q: Array) -> Inputs:
        """The data ``X^l`` at the quadrature points."""
        return Inputs(X_q, X_q)

    def interpolate(self, weight: Callable[[Array, Array], Array]) -> Array:
        """``w_s(x) = w(x, x)`` for every ``s`` (the limit of ``w(x_i, y_{i+s})``), nodally."""
        xs = self.space_out.dof_coordinates
        diagonal = np.diagonal(weight(xs, xs))
        return np.repeat(diagonal[:, None], self.shape[1], axis=1)

    def inputs(self, h_q: Array, riesz: bool) -> Inputs:
        """The activities themselves: the layer acts pointwise."""
        return Inputs(h_q, h_q)

    def _sum_at_quadrature(self, W: Array, shift: ShiftFactors) -> Array:
        """``Σ_s w_s`` at the quadrature points (all rows gathered; ``W + s A Bᵀ`` formed:
        the block is ``n × S``)."""
        w = self.gather(self.shifted(W, shift))
        return self.space_out.at_quadrature(w.sum(axis=1))

    def forward(self, W: Array, x: Inputs, bias: Array, shift: ShiftFactors) -> Array:
        """``z = (Σ_s w_s) h + b`` at the quadrature points."""
        weight = self._sum_at_quadrature(W, shift)
        return weight[:, None] * x.values + self.space_out.at_quadrature(bias)[:, None]

    def backward(self, W: Array, delta_q: Array, d: Array, shift: ShiftFactors) -> Array:
        """``(Σ_s w_s) δ`` at the quadrature points."""
        return self._sum_at_quadrature(W, shift)[:, None] * delta_q

    def force(self, x: Inputs, delta_q: Array, riesz_d: Array, L: int) -> Factors:
        """``R = M⁻¹ ∫ φ Σ_l δ^l h^l / L`` (this rank's rows) and ``S = 1_S``."""
        space = self.space_out
        riesz = space.solve_mass(space.load((delta_q * x.values).sum(axis=1))) / L
        return riesz[self.rows, None], np.ones((self.shape[1], 1))

    def lattice_values(self, W: Array, Ex, Ey) -> Array:
        """``w_s(x_i)`` in the banded storage ``(N, S)`` (this rank's rows' part)."""
        return np.asarray(Ex[:, self.rows] @ W)
