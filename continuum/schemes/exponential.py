"""Exact time integration of the full-batch flow of one linear layer.

For one layer with a linear output, the Galerkin image of the residual of every sample
(:meth:`continuum.fields.galerkin.GalerkinNetwork.readout_residual`) is affine in the coefficients,

    u = M_1⁻¹ ∫ r φ = W η⁽⁰⁾ + b 1ᵀ + P_h f            (n_1 × L),

and the flow ``∂_t w = −η_w δC/δw``, ``∂_t b = −η_b δC/δb`` reads, in coefficient space,

    Ẇ = −(η_w/L) u (M_0⁻¹ η⁽⁰⁾)ᵀ,        ḃ = −(η_b/L) u 1.

So the residual obeys a linear equation with one ``L × L`` matrix for every row,

    u̇ = −u K,        K = (η_w G_h + η_b 11ᵀ)/L,        G_h = η⁽⁰⁾ᵀ M_0⁻¹ η⁽⁰⁾,

(``G_h`` the Gram matrix of the data as the input factor sees them: ``G`` itself for the
data span), and a step of length ``h`` has the closed form

    W(t+h) = W − (η_w/L) u S (M_0⁻¹ η⁽⁰⁾)ᵀ,    b(t+h) = b − (η_b/L) u S 1,
    S = ∫_0^h e^{−Ks} ds = Q diag((1 − e^{−λ_k h})/λ_k) Qᵀ,    K = Q diag(λ) Qᵀ.

It has no time error (``S`` is exact also for singular ``K``: the factor tends to ``h``), so
the continuum fields are those of the gradient flow itself at every output time; the RK4
network they are compared with differs from them by its own ``O(h⁴)``.  Rows are
independent: under MPI every rank steps its own rows without communication.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from continuum.fields.galerkin import GalerkinNetwork
from discrete.training import Rule, State

Array = np.ndarray


class ExponentialFlow(Rule):
    """``[continuum] scheme = "exponential"``: exact steps of the full-batch gradient flow
    of one layer with a linear output (rates ``η_w``, ``η_b`` of that layer)."""

    def __init__(self, galerkin: GalerkinNetwork, rates: tuple[float, float], h: float):
        super().__init__(galerkin, galerkin.per_group([rates]), h)
        self.galerkin = galerkin
        self.eta_w, self.eta_b = rates if galerkin.network.bias else (rates[0], 0.0)
        L = galerkin.samples
        gram = galerkin.eta0.T @ galerkin.riesz0
        K = (self.eta_w * gram + self.eta_b) / L
        lam, self._Q = np.linalg.eigh(0.5 * (K + K.T))
        self._lam = np.clip(lam, 0.0, None)  # rounding can leave a zero eigenvalue below 0

    def decay_integral(self, t: float) -> Array:
        """``S(t) = ∫_0^t e^{−Ks} ds = Q diag((1 − e^{−λt})/λ) Qᵀ`` (``t`` where ``λt → 0``)."""
        lt = self._lam * t
        resolved = lt > 1e-8  # below, (1 − e^{−λt})/λ = t(1 − λt/2) to rounding
        factor = np.where(
            resolved, -np.expm1(-lt) / np.where(resolved, self._lam, 1.0), t * (1 - 0.5 * lt)
        )
        return (self._Q * factor) @ self._Q.T

    def leap(self, state: State, steps: int) -> State:
        """The state ``steps`` steps later, in one exact update:
        ``W −= (η_w/L) u S (M_0⁻¹η⁽⁰⁾)ᵀ``, ``b −= (η_b/L) u S 1`` with ``S = S(steps·h)``."""
        g, L = self.galerkin, self.galerkin.samples
        integral = g.readout_residual(state.theta) @ self.decay_integral(steps * self.h)
        theta = state.theta.copy()
        g.W(theta, 0)[...] -= (self.eta_w / L) * integral @ g.riesz0.T
        if g.network.bias:
            g.b(theta, 0)[...] -= (self.eta_b / L) * g.gather_rows(integral.sum(axis=1), 0)
        step = state.step + steps
        return State(step * self.h, step, theta)

    def step(self, state: State) -> State:
        return self.leap(state, 1)

    def advance(self, state: State, steps: int) -> Iterator[State]:
        """One leap over all ``steps``: the closed form needs no intermediate states."""
        if steps > 0:
            yield self.leap(state, steps)
