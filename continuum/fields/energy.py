"""Energy flow in depth for the continuum fields (docs/physics.md "Mechanics", continuum side).

For the damped field equations ``∂_t² φ + γ ∂_t φ + η δC/δφ = 0`` of the Galerkin fields
(:mod:`continuum.fields.galerkin`), the kinetic energy of weight layer ``m`` is

    E_m = (1/2η_w) ∫∫ (∂_t w^(m))² dx dy + (1/2η_b) ∫ (∂_t b^(m))² dx
        = (1/2η_w) tr(Ẇᵀ M_{m+1} Ẇ M_m) + (1/2η_b) ḃᵀ M_{m+1} ḃ,

and the power through neuron layer ``m`` is ``F_m = (1/L) Σ_l ∫ δ^(m),l ż^(m),l = (1/L) Σ_l
d^(m),l · ż^(m),l`` (``F_0 = 0``).  The chain rule of the continuum forward pass gives, as
for the network, ``dE_m/dt + F_{m+1} − F_m = −2γE_m`` at every instant — exactly for the
Galerkin system, since both sides use the same quadratures — and ``E_m``, ``F_m`` approach
the network's values as the width grows (``tests/test_energy.py``).
"""

from __future__ import annotations

import numpy as np

from continuum.fields.galerkin import GalerkinNetwork
from discrete.mechanics import EnergyBalance

Array = np.ndarray


def _layer_quadratic(g: GalerkinNetwork, u: Array, v: Array, m: int, rate: Array) -> float:
    """``tr(Uᵀ M_{m+1} V M_m)/η_w + u_bᵀ M_{m+1} v_b/η_b`` for layer ``m`` (one process)."""
    Mx, My = g.spaces[m + 1].mass, g.spaces[m].mass
    rw, rb = g.layer_rates(rate, m)
    value = float(np.sum((Mx @ g.W(u, m)) * (g.W(v, m) @ My.T))) / rw
    if g.network.bias:
        value += float(g.b(u, m) @ (Mx @ g.b(v, m))) / rb
    return value


def continuum_energy_balance(
    g: GalerkinNetwork, theta: Array, theta_dot: Array, rates: Array, gamma: float
) -> EnergyBalance:
    """The layer energy balance of the Galerkin fields at one instant (all samples)."""
    if g.comm.size > 1:
        raise ValueError("the continuum energy balance is evaluated on one process")
    samples = np.arange(g.samples)
    L = len(samples)
    cost, grad, loads = g.backward(theta, samples)
    zdot = g.tangent(theta, theta_dot, samples)
    accel = -gamma * theta_dot - rates * grad
    depth = g.network.depth
    energy = np.array(
        [0.5 * _layer_quadratic(g, theta_dot, theta_dot, m, rates) for m in range(depth)]
    )
    rate = np.array([_layer_quadratic(g, theta_dot, accel, m, rates) for m in range(depth)])
    flux = np.array([0.0] + [float(np.sum(loads[m] * zdot[m])) / L for m in range(depth)])
    return EnergyBalance(
        energy=energy, rate=rate, flux=flux, friction=-2.0 * gamma * energy, cost=cost
    )
