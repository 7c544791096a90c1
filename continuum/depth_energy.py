"""Energy flow through depth in the depth continuum of a residual network (SPEC 1.7).

For the damped field equations ``∂_t² φ + γ ∂_t φ + η δC/δφ = 0`` of the fields of
:class:`~continuum.residual.DepthFields` the kinetic energy per unit depth and the power
through the stream at depth τ are (docs/physics.md, "Energy through depth")

    e(t, τ) = (1/2η_w) ∫∫ (∂_t w(τ, x, y))² dx dy + (1/2η_b) ∫ (∂_t b(τ, x))² dx,
    f(t, τ) = (1/L) Σ_l ∫ p^l(τ, x) ∂_t s^l(τ, x) dx,

and they obey the continuity equation ``∂_t e + ∂_τ f = −2γ e``; the input layer and the
readout close it at the ends as the ordinary layers of SPEC 1.4 (``dE_in/dt + f(0) = −2γE_in``,
``dE_out/dt + F_out − f(1) = −2γE_out``, ``F_out`` the power into the cost).

Here ``f`` is evaluated at the τ-cell ends from the exact adjoint and the tangent of the
RK4 map (``DepthFields.adjoint`` and ``DepthFields.tangent``), and ``e`` integrated over
each τ-cell with the τ space's Gauss rule; ``∂_t e`` comes from the equation of motion.  The
balance per cell, ``∫_cell (∂_t e + 2γ e) dτ + f(τ_{n+1}) − f(τ_n)``, closes to the depth
discretisation error (the Galerkin gradient couples neighbouring cells through ``M_τ⁻¹``);
summed over the cells it closes to rounding, and so do the end layers.
The result is a :class:`~discrete.mechanics.EnergyBalance` whose "layers" are the input
layer, the τ-cells and the readout — the discrete balance of a residual network has the same
shape with one block per cell (``E_k ≈ ∫_cell e``, ``F_k ≈ f(k/M)``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from discrete.mechanics import EnergyBalance

from .residual import DepthFields

Array = np.ndarray


def _pair(mass_left, u: Array, v: Array, mass_right) -> float:
    """``tr(Uᵀ M_l V M_r)`` (symmetric mass matrices, dense or sparse)."""
    return float(np.sum((mass_left @ u) * (mass_right @ v.T).T))


def _cell_pairs(fields: DepthFields, u: Array, v: Array) -> Array:
    """``∫_cell ⟨u(τ), v(τ)⟩ dτ`` per τ-cell for block coefficients ``(n_τ, n_x[, n_x])``:
    the τ Gauss rule (exact for the product of two degree-p fields) and the x mass matrices."""
    depth, Mx = fields.depth, fields.stream.mass
    tab = depth.tabulation.toarray() if sp.issparse(depth.tabulation) else depth.tabulation
    uq = np.einsum("qk,k...->q...", tab, u)
    vq = np.einsum("qk,k...->q...", tab, v)
    if u.ndim == 3:
        values = np.array([_pair(Mx, a, b, Mx) for a, b in zip(uq, vq, strict=True)])
    else:
        values = np.array([float(a @ (Mx @ b)) for a, b in zip(uq, vq, strict=True)])
    cells = np.minimum((depth.quadrature_points[:, 0] / fields.h).astype(int), fields.cells - 1)
    return np.bincount(cells, depth.quadrature_weights * values, minlength=fields.cells)


def _layer_pairs(
    fields: DepthFields, u: Array, v: Array, rates: list[tuple[float, float]]
) -> Array:
    """``⟨u, v⟩/η`` of the input layer, of every τ-cell of the blocks, and of the readout."""
    x, inp, out = fields.stream.mass, fields.inputs.mass, fields.outputs.mass
    W, b = fields.W, fields.b
    first = _pair(x, W(u, 0), W(v, 0), inp) / rates[0][0]
    cells = _cell_pairs(fields, W(u, 1), W(v, 1)) / rates[1][0]
    last = _pair(out, W(u, 2), W(v, 2), x) / rates[2][0]
    if fields.network.bias:
        first += float(b(u, 0) @ (x @ b(v, 0))) / rates[0][1]
        cells = cells + _cell_pairs(fields, b(u, 1), b(v, 1)) / rates[1][1]
        last += float(b(u, 2) @ (out @ b(v, 2))) / rates[2][1]
    return np.concatenate([[first], cells, [last]])


def depth_energy_balance(
    fields: DepthFields,
    theta: Array,
    theta_dot: Array,
    rates: list[tuple[float, float]],
    gamma: float,
) -> EnergyBalance:
    """The balance at one instant (all samples); ``rates`` are the continuum ``(η_w, η_b)``
    of the input layer, the blocks and the readout."""
    cost, grad, adjoint = fields.adjoint(theta)
    sdot = fields.tangent(theta, theta_dot)
    flux = np.array([0.0] + [float(np.sum(p * q)) for p, q in zip(adjoint, sdot, strict=True)])
    accel = -gamma * theta_dot - fields.per_group(rates) * fields.riesz(grad)
    energy = 0.5 * _layer_pairs(fields, theta_dot, theta_dot, rates)
    rate = _layer_pairs(fields, theta_dot, accel, rates)
    return EnergyBalance(
        energy=energy, rate=rate, flux=flux, friction=-2.0 * gamma * energy, cost=cost
    )
