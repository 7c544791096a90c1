"""Momentum SGD near a quadratic minimum: the stationary (δθ, δv) covariance in closed form.

docs/physics.md "SGD fluctuations" ("Momentum SGD: equipartition").  Near a
minimum with Hessian ``H``, the heavy ball on i.i.d. batches is, to leading order in ``h``,
the Langevin system

    dδθ = δv dt,     dδv = (−γ δv − D H δθ) dt + D √(h/B) Σ^{1/2} dβ,

``D = diag(η)`` the rates (masses ``1/η``), ``Σ`` the per-sample gradient covariance at the
minimum.  In mass-weighted coordinates ``q = D^{-1/2} δθ``, ``p = D^{-1/2} δv`` the force is
symmetric, ``K = D^{1/2} H D^{1/2} = Σ_k κ_k e_k e_kᵀ``, and the noise ``N = (h/B) D^{1/2} Σ
D^{1/2}``.  The stationary Lyapunov equation ``A C + C Aᵀ + diag(0, N) = 0`` decouples in the
eigenbasis of ``K``, entry by entry (``Ñ = Eᵀ N E``):

    ⟨q qᵀ⟩_kl = 2γ Ñ_kl / (2γ² (κ_k + κ_l) + (κ_k − κ_l)²),
    ⟨q pᵀ⟩_kl = (κ_k − κ_l) ⟨q qᵀ⟩_kl / 2γ,      ⟨p pᵀ⟩_kl = (κ_k + κ_l) ⟨q qᵀ⟩_kl / 2

(zero where ``κ_k = κ_l = 0``: the noise has no part in the null space of ``H``).  Hence for
every coordinate ``⟨p_i²⟩ = ⟨q_i (K q)_i⟩`` (the cross covariance is antisymmetric), so the
kinetic and the potential temperature of every layer agree,

    T_kin,m = ⟨δv_m · δv_m / η⟩ = ⟨δθ_m · (H δθ)_m⟩ = T_pot,m,

mode ``k`` carries ``T_k = ⟨p_k²⟩ = Ñ_kk / 2γ`` (a coloured bath: the SGD temperature differs
from mode to mode), and their sum is ``Σ_m T_m = (h / 2γB) tr(D Σ)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Array = np.ndarray


@dataclass
class HeavyBallEquilibrium:
    """Stationary covariances of ``δθ`` and ``δv`` and their cross covariance ``⟨δv δθᵀ⟩``,
    the mode curvatures ``κ_k`` and temperatures ``T_k``, the temperatures per group."""

    theta: Array
    velocity: Array
    cross: Array
    curvatures: Array
    mode_temperatures: Array
    kinetic: Array
    potential: Array


def heavy_ball_equilibrium(
    hessian: Array,
    noise: Array,
    rates: Array,
    gamma: float,
    h: float,
    batch: int,
    groups: list[slice],
) -> HeavyBallEquilibrium:
    """The closed-form stationary state of momentum SGD at a minimum with ``hessian`` and
    per-sample gradient covariance ``noise`` (dense: for small networks)."""
    root = np.sqrt(np.asarray(rates, dtype=float))
    K = root[:, None] * hessian * root[None, :]
    kappa, E = np.linalg.eigh(0.5 * (K + K.T))
    kappa = np.clip(kappa, 0.0, None)
    N = E.T @ ((h / batch) * root[:, None] * noise * root[None, :]) @ E
    total, gap = kappa[:, None] + kappa[None, :], kappa[:, None] - kappa[None, :]
    denominator = 2 * gamma**2 * total + gap**2
    qq = np.divide(2 * gamma * N, denominator, out=np.zeros_like(N), where=denominator > 0)
    pq, pp = -gap * qq / (2 * gamma), 0.5 * total * qq  # ⟨p qᵀ⟩ = −⟨q pᵀ⟩

    def back(modes: Array) -> Array:  # mode basis → (θ, v) coordinates
        return root[:, None] * (E @ modes @ E.T) * root[None, :]

    theta, velocity, cross = back(qq), back(pp), back(pq)
    kinetic = np.array([np.trace(velocity[g, g] / np.asarray(rates)[g, None]) for g in groups])
    potential = np.array([np.sum(theta[g] * hessian[g]) for g in groups])
    return HeavyBallEquilibrium(
        theta, velocity, cross, kappa, np.diag(pp).copy(), kinetic, potential
    )
