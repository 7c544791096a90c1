"""The equilibrium of SGD fluctuations: Lyapunov covariance, relaxation times, temperatures.

docs/physics.md "SGD fluctuations".  In the span of the data
(:class:`continuum.fields.fluctuations.SpanLayer`) the residuals at every output point obey, to
leading order in ``h/B`` (the SME of :mod:`continuum.fields.sme`),

    dr = −(G/L) r dt + √(h/B) G (noise with covariance Σ̄(r rᵀ)),

with ``G = Σ_k g_k u_k u_kᵀ`` the rate-weighted Gram matrix.  The mean relaxes to the
minimum ``r*(x) = Π_0 r(0, x)`` (the part of the initial residual in the null space of ``G``,
which no step can change: the targets the layer cannot represent), mode ``k`` with the
relaxation time ``τ_k = L/g_k``.  Around it the covariance relaxes (at the rates
``(g_k + g_l)/L``) to the solution of the Lyapunov equation ``H Q + Q H = η (h/B) Σ``, in
the eigenbasis of ``G``

    (g_k + g_l) Q̃_kl / L = (h/B) g_k g_l Σ̃_kl,      Σ̃ = Uᵀ Σ̄(r* r*ᵀ) U,

(``Q̃_kl = 0`` where ``g_k = g_l = 0``: the noise ``G(…)`` never enters the null space).  The
weight field fluctuates as ``δw(x, y) = η X(y)ᵀ G⁺ δr(x)``, so

    Var w(x, y) = η² X(y)ᵀ G⁺ Q(x) G⁺ X(y).

Temperatures: in the kinetic metric of the flow (``|δw|² = η δaᵀ G δa``) mode ``k`` of the
cost has curvature ``g_k/(ηL)``, and equipartition ``T_k = curvature × ⟨amplitude²⟩`` gives
``T_k(x) = Q̃_kk(x)/L = (h/2B) g_k Σ̃_kk(x)``: SGD is a bath whose temperature differs from
mode to mode.  The layer's temperature is their mean over the active modes and ``∫ dx``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from discrete.fluctuations import residual_noise

if TYPE_CHECKING:
    from continuum.fields.fluctuations import SpanLayer

Array = np.ndarray


@dataclass
class Equilibrium:
    """Stationary state of one layer: residual minimum ``r*`` ``(N_out, L)``, covariance of
    the residuals ``Q`` ``(N_out, L, L)``, variance fields, Gram eigenvalues ``g_k`` of the
    active modes, their relaxation times ``L/g_k`` and temperatures ``T_k(x_i)``."""

    minimum: Array
    covariance: Array
    w_var: Array
    b_var: Array
    rates: Array
    relaxation_times: Array
    temperatures: Array
    layer_temperature: float


def equilibrium(layer: SpanLayer, h: float, batch: int) -> Equilibrium:
    """The Lyapunov equilibrium of ``layer`` under SGD with step ``h`` and batch ``B``."""
    L = layer.samples
    g, U = np.linalg.eigh(layer.gram)
    active = g > 1e-12 * g.max()
    null = U[:, ~active]
    minimum = layer.r0 @ null @ null.T
    noise = np.einsum(
        "lk,ilm,mn->ikn", U, residual_noise(np.einsum("il,im->ilm", minimum, minimum)), U
    )
    total = g[:, None] + g[None, :]
    factor = np.divide(
        L * (h / batch) * np.outer(g, g), total, out=np.zeros_like(total), where=total > 0
    )
    q_modes = factor * noise  # Q̃(x_i) in the eigenbasis, (N_out, L, L)
    covariance = np.einsum("lk,ikn,mn->ilm", U, q_modes, U)
    pinv = (U[:, active] / g[active]) @ U[:, active].T
    amplitude = np.einsum("lm,imn,nk->ilk", pinv, covariance, pinv)  # Cov(a(x_i))
    X = layer.X
    w_var = layer.lr**2 * np.einsum("jl,ilk,jk->ij", X, amplitude, X)
    b_var = layer.lr**2 * amplitude.sum(axis=(1, 2)) if layer.bias else np.zeros(len(amplitude))
    temperatures = np.einsum("ikk->ik", q_modes)[:, active] / L
    dx = layer.setup.convention.layers[1].measure
    return Equilibrium(
        minimum,
        covariance,
        w_var,
        b_var,
        g[active],
        L / g[active],
        temperatures,
        float(np.sum(dx[:, None] * temperatures) / (np.sum(dx) * active.sum())),
    )
