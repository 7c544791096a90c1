"""Bulk–boundary decomposition of a residual network: biases traded for the stream (docs/physics.md
"Depth as a coordinate").

One sample ``(X, Y)`` at a time (docs/physics.md "Mechanics"), masses ``M_θ`` (the dictionary's
``1/η_θ`` for the continuum limit, or 1), the common factor ``e^{γt}`` left out::

    L = ½ Σ_θ M_θ θ̇² − ℓ(Z, Y).

Trade every bias for the stream it creates (docs/physics.md, "Bulk and boundary in depth"):
``b^in = s^(0) − W^in X``, ``b^(k) = (s^(k+1) − s^(k))/Δτ − W^(k) σ(s^(k))``,
``b^out = z^out − W^out s^(M)``.  With ``D_k = (ṡ^(k+1) − ṡ^(k))/Δτ`` and
``A_k = ∂_t(W^(k) σ(s^(k)))`` the Lagrangian splits exactly into::

    L_bulk     = ½ Σ_W M_W Ẇ² + Σ_k ½ M_b^(k) (|D_k|² − 2 D_k·A_k + |A_k|²)
    L_boundary = ½ M_b^in |ṡ^(0) − Ẇ^in X|² + ½ M_b^out |ż^out − ∂_t(W^out s^(M))|² − ℓ(Z, Y).

Every bulk term couples neighbouring stream positions ``s^(k)``, ``s^(k+1)`` only, and with
``M_b^(k) = Δτ Δx/η`` it is the Riemann sum of the depth-local continuum density
``(1/2η) ∫∫ (∂_τ ṡ − ∂_t ∫ w σ(s) dy)² dτ dx``; the data enter the boundary alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .network import layer_value
from .residual import ResidualNetwork

Array = np.ndarray


def _dot(a: Array, b: Array, weights: Array | float = 1.0) -> float:
    return float(np.sum(weights * a * b))


@dataclass(frozen=True)
class DepthBulkBoundary:
    """The terms of ``L_bulk`` and ``L_boundary`` of a residual network at one instant."""

    kinetic_weights: float
    stream_kinetic: float
    stream_cross: float
    stream_square: float
    boundary_input: float
    boundary_output: float
    loss: float

    @property
    def bulk(self) -> float:
        return self.kinetic_weights + self.stream_kinetic + self.stream_cross + self.stream_square

    @property
    def boundary(self) -> float:
        return self.boundary_input + self.boundary_output - self.loss


def depth_bulk_boundary(
    network: ResidualNetwork,
    theta: Array,
    theta_dot: Array,
    x: Array,
    y: Array,
    dx: Array,
    masses: Array,
) -> DepthBulkBoundary:
    """Every term of the decomposition for one sample; the stream's velocities ``ṡ^(k)``
    come from the forward tangent (:meth:`ResidualNetwork.tangent`), not from the biases."""
    if not network.bias:
        raise ValueError(
            "the bulk–boundary decomposition trades biases for the stream: it needs a "
            "network with bias = true"
        )
    P, act = network.params, network.activation
    trace = network.forward(theta, np.atleast_2d(x))
    tangent = network.tangent(theta, theta_dot, trace)
    sdot = [layer_value(tangent, m) for m in range(1, len(tangent))]  # ṡ^(0) … ṡ^(M), ż^out
    last = network.depth - 1
    kinetic_w = 0.5 * sum(
        _dot(P.W(theta_dot, m), P.W(theta_dot, m), P.W(masses, m)) for m in range(network.depth)
    )
    kin = cross = square = 0.0
    for m in range(1, network.blocks + 1):
        s = trace.s[m - 1]
        mass = P.b(masses, m)
        D = (sdot[m] - sdot[m - 1]) / network.dtau
        A = act.sigma(s) @ P.W(theta_dot, m).T + (act.dsigma(s) * sdot[m - 1]) @ P.W(theta, m).T
        kin += 0.5 * _dot(D, D, mass)
        cross -= _dot(D, A, mass)
        square += 0.5 * _dot(A, A, mass)
    inflow = sdot[0] - trace.X @ P.W(theta_dot, 0).T
    drive_out = trace.s[-1] @ P.W(theta_dot, last).T + sdot[-2] @ P.W(theta, last).T
    outflow = sdot[-1] - drive_out
    r = trace.output[0] - y
    return DepthBulkBoundary(
        kinetic_weights=kinetic_w,
        stream_kinetic=kin,
        stream_cross=cross,
        stream_square=square,
        boundary_input=0.5 * _dot(inflow, inflow, P.b(masses, 0)),
        boundary_output=0.5 * _dot(outflow, outflow, P.b(masses, last)),
        loss=0.5 * _dot(r, r, dx),
    )
