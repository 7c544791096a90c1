"""Classical RK4 of the full-batch flow with every weight force kept in factored form.

The force on each weight field of a dense network has rank ``≤ L``
(:mod:`continuum.fields.galerkin`):

    F^(m) = −η_w δC/δW^(m)  ↦  A Bᵀ,      A = −(η_w/L) M_{m+1}⁻¹ D^(m+1),   B = M_m⁻¹ H^(m).

Classical RK4 of ``θ̇ = F(θ)``,

    k_1 = F(θ),  k_2 = F(θ + h/2 k_1),  k_3 = F(θ + h/2 k_2),  k_4 = F(θ + h k_3),
    θ' = θ + h/6 (k_1 + 2 k_2 + 2 k_3 + k_4),

then never needs a ``k_i`` as a matrix: a stage applies ``(W + c h A Bᵀ) x = W x + c h A (Bᵀ x)``
(and its transpose in the backward pass), and the update is one GEMM per weight block,

    W' = W + [A_1 A_2 A_3 A_4] diag(h/6, h/3, h/3, h/6) [B_1 B_2 B_3 B_4]ᵀ.

A step reads every weight block twice per stage, copies ``θ`` once and updates it in place, about a
dozen passes over the coefficients; the generic :class:`discrete.training.Flow` forms each ``k_i``,
scales it by the rates and combines whole vectors, about sixty.  It is the same RK4 to rounding.
The depth continuum of a residual network offers the same two calls
(:class:`continuum.fields.residual.DepthFields`: forces as the factors of its RK4 stages in τ).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from discrete.training import GradientCost, Rule, State

Array = np.ndarray


class FactoredForces(GradientCost, Protocol):
    """Fields whose full-batch force comes in factored form and adds onto the coefficients."""

    def per_group(self, rates: list[tuple[float, float]]) -> Array: ...

    def factored_force(
        self, theta: Array, rates: list[tuple[float, float]], shift: tuple[float, Any] | None
    ) -> Any: ...

    def add_forces(self, theta: Array, weighted: list[tuple[float, Any]]) -> None: ...


FACTORED_STEP_SIZE = 1 << 15
"""Galerkin networks with at least this many weight coefficients (all ranks) step the flow in
factored form. Below it the few whole-vector operations of the generic RK4 cost less than the
extra low-rank products of every stage. Measured side by side on deep-tanh
(``benchmarks/factored_flow.py``), the generic step takes 0.70–0.92× the factored one's time
up to 1.3·10⁴ coefficients, 1.1× at 5·10⁴, 1.7–2.0× at 2·10⁵, 2.8–3.5× at 7.9·10⁵ and
2.1–2.3× at 3.2·10⁶."""

FACTORED_CACHE_SIZE = 1 << 19
"""Weight coefficients (all blocks, 4 MiB per vector) above which the generic RK4's whole-vector
passes no longer stay in this machine's caches: each then costs about six times more (the
generic step's time per coefficient saved by the factored one, 1.4–2 ns at 5·10⁴–2·10⁵
coefficients against 12.6 ns at 7.9·10⁵, ``L = 3``; ``benchmarks/factored_flow.py``)."""

LOW_RANK_WORK = (3.0, 40.0)
"""The most low-rank work per weight coefficient, ``L² Σ (n_out + n_in) / Σ n_out n_in``, at which
the factored RK4 is still faster: within the caches, beyond them (:func:`factored_pays`)."""


def factored_pays(shapes: list[tuple[int, int]], columns: int) -> bool:
    """Whether the factored RK4 is faster for weight blocks of ``shapes`` ``(n_out, n_in)`` (all
    ranks) whose forces have rank ``columns`` (the samples ``L`` of a full-batch gradient).

    Per step the factored form adds the three shifted stages' low-rank products, ``A (Bᵀ x)``
    forward and backward, ``12 L² (n_out + n_in)`` FLOPs per block, and saves the generic RK4's
    whole-vector passes, a fixed cost per coefficient (both form the same ``n_out n_in L``
    products ``R Sᵀ``, once per stage or once in the update). So it pays when the network is
    large enough for the passes to matter (:data:`FACTORED_STEP_SIZE`) and its low-rank work per
    coefficient, ``L² Σ (n_out + n_in) / Σ n_out n_in`` (``2L²/n`` for square blocks), is at most
    :data:`LOW_RANK_WORK` — the first bound while the coefficients fit the caches
    (:data:`FACTORED_CACHE_SIZE`), the second beyond them, where each saved pass costs more.

    Measured on deep-tanh, P2 (``benchmarks/factored_flow.py --samples``): generic / factored step
    time at ``L = 3`` 1.06–2.65 (factored chosen), at ``L = 256`` 0.43–0.85 (generic chosen); the
    user-scale problems of 256–300 samples ran 1.3–2.0× faster with the generic RK4."""
    coefficients = sum(n_out * n_in for n_out, n_in in shapes)
    if coefficients < FACTORED_STEP_SIZE:
        return False
    work = columns**2 * sum(n_out + n_in for n_out, n_in in shapes) / coefficients
    return work <= LOW_RANK_WORK[coefficients >= FACTORED_CACHE_SIZE]


RK4_STAGES = ((0.0, 1 / 6), (0.5, 1 / 3), (0.5, 1 / 3), (1.0, 1 / 6))
"""``(c_i, b_i)`` of classical RK4: stage ``i`` at ``θ + c_i h k_{i−1}``, weight ``b_i h``."""


class FactoredFlow(Rule):
    """The gradient flow of a :class:`~continuum.fields.galerkin.GalerkinNetwork` (or a depth
    continuum) by RK4, with its weight forces kept factored."""

    def __init__(self, galerkin: FactoredForces, rates: list[tuple[float, float]], h: float):
        super().__init__(galerkin, galerkin.per_group(rates), h)
        self.galerkin = galerkin
        self.layer_rates = rates

    def step(self, state: State) -> State:
        h, g = self.h, self.galerkin
        forces: list[Any] = []
        for c, _ in RK4_STAGES:
            shift = (c * h, forces[-1]) if forces else None
            forces.append(g.factored_force(state.theta, self.layer_rates, shift))
        theta = state.theta.copy()
        g.add_forces(theta, [(b * h, f) for (_, b), f in zip(RK4_STAGES, forces, strict=True)])
        return State((state.step + 1) * h, state.step + 1, theta)
