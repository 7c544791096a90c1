"""The dense layer kind: a product field ``w(x, y)`` in ``V_{m+1} ⊗ V_m`` (docs/physics.md
"Continuum", "Layer kinds in series").

Discrete: ``z_i = Σ_j W_ij h_j + b_i`` with the product convention ``W_ij = Δy_j w(x_i, y_j)``,
so that ``Σ_j W_ij h_j → ∫ w(x, y) h(y) dy`` at second order in ``1/N`` (midpoint rule).
Continuum, with ``W`` the coefficient matrix of ``w`` and ``ψ`` the input basis:

    η_b = ∫ ψ_b h(y) dy,                    z^(m+1) = W η + b          (coefficients in V_{m+1}),
    ∫ w(x, y) δ(x) dx = ψ(y)ᵀ Wᵀ d,         d_a = ∫ φ_a δ dx,
    δC/δw ↦ (1/L) (M_{m+1}⁻¹ D) (M_m⁻¹ H)ᵀ  (rank ≤ L: R = M⁻¹ D / L, S = M⁻¹ H),

with ``D`` and ``H`` the ``d`` and ``η`` of all samples as columns.  Rows of ``W`` are split
over the ranks: ``W η`` gives this rank's rows of ``z`` (gathered by an ``Allgatherv``) and
``Wᵀ d`` a partial sum (an ``Allreduce``).  The shifted coefficients of the factored RK4 path,
``W + s A Bᵀ``, are applied as ``W x + s A (Bᵀ x)``, never formed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from continuum.fields.layers.kind import Factors, Inputs, LayerKind, ShiftFactors, Space
from discrete.network import Layer

Array = np.ndarray


class DenseLayer(LayerKind):
    """``w^(m)(x, y)`` of a dense layer under the product convention."""

    name = "dense"
    connectivity = "dense"
    convention = "product"
    family = "galerkin"

    @staticmethod
    def columns(layer: Layer, space_in: Space) -> int:
        """One column per input dof: ``W`` in ``V_{m+1} ⊗ V_m``."""
        return space_in.size

    def data_inputs(self, X_q: Array) -> Inputs:
        """``η⁽⁰⁾ = ∫ ψ X`` and its Riesz image ``M₀⁻¹ η⁽⁰⁾``."""
        eta = self.space_in.load(X_q)
        return Inputs(eta, self.space_in.solve_mass(eta))

    def interpolate(self, weight: Callable[[Array, Array], Array]) -> Array:
        """The nodal interpolant: ``w(x_a, y_b)`` at the dof coordinates of both factors."""
        return weight(self.space_out.dof_coordinates, self.space_in.dof_coordinates)

    def inputs(self, h_q: Array, riesz: bool) -> Inputs:
        """The moments ``η = ∫ ψ h`` (and with ``riesz`` their image ``M_m⁻¹ η``)."""
        if riesz:
            return Inputs(*self.space_in.moments(h_q))
        return Inputs(self.space_in.load(h_q), None)

    def apply(self, W: Array, x: Array, shift: ShiftFactors) -> Array:
        """This rank's rows of ``(W + s A Bᵀ) x``."""
        out = W @ x
        if shift is not None:
            s, (a, b) = shift
            out += a @ (s * (b.T @ x))
        return out

    def apply_transposed(self, W: Array, y: Array, shift: ShiftFactors) -> Array:
        """``(W + s A Bᵀ)ᵀ y`` over this rank's rows ``y`` (a partial sum over the ranks);
        computed as ``(yᵀ W)ᵀ``, which streams a large ``W`` about twice as fast as ``Wᵀ y``."""
        out = (y.T @ W).T
        if shift is not None:
            s, (a, b) = shift
            out += b @ (s * (a.T @ y))
        return out

    def forward(self, W: Array, x: Inputs, bias: Array, shift: ShiftFactors) -> Array:
        """``z = W η + b`` (all rows), at the output quadrature points."""
        z = self.gather(self.apply(W, x.values, shift))
        z += bias[:, None]
        return self.space_out.at_quadrature(z)

    def backward(self, W: Array, delta_q: Array, d: Array, shift: ShiftFactors) -> Array:
        """``∫ w(x, y) δ(x) dx = ψ(y)ᵀ Wᵀ d`` at the input quadrature points."""
        back = self.sum_over_ranks(self.apply_transposed(W, d[self.rows], shift))
        return self.space_in.at_quadrature(back)

    def force(self, x: Inputs, delta_q: Array, riesz_d: Array, L: int) -> Factors:
        """``R = M_{m+1}⁻¹ D / L`` (this rank's rows), ``S = M_m⁻¹ H``."""
        assert x.image is not None  # inputs taken with their Riesz image
        return riesz_d[self.rows], x.image

    def lattice_values(self, W: Array, Ex, Ey) -> Array:
        """``w(x_i, y_j) = Σ_ab φ_a(x_i) W_ab ψ_b(y_j)`` (this rank's rows ``a``)."""
        return np.asarray(Ex[:, self.rows] @ (Ey @ W.T).T)
