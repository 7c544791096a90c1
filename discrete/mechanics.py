"""Mechanics of training: Lagrangian, bulk–boundary decomposition, layer energies and fluxes.

docs/physics.md "Mechanics".  One sample ``(X, Y)`` at a time (SGD), unit masses and the common
factor ``e^{γt}`` left out::

    L = ½ Σ_m |Ẇ^(m)|² + ½ Σ_m |ḃ^(m)|² − ℓ(Z, Y).

Trading each bias for the pre-activation it creates,
``b^(m) = z^(m+1) − W^(m) σ(z^(m))`` (with ``σ(z^(0)) ≡ X``), splits ``L`` exactly into::

    L_bulk     = ½ Σ_{m=0}^{M−1} |Ẇ^(m)|² + ½ Σ_{m=1}^{M} |ż^(m)|²
                 − Σ_{m=1}^{M−1} ż^(m+1)·∂_t(W^(m) σ(z^(m)))
                 + ½ Σ_{m=1}^{M−1} |∂_t(W^(m) σ(z^(m)))|²
    L_boundary = − ż^(1)·∂_t(W^(0) X) + ½ |∂_t(W^(0) X)|² − ℓ(Z, Y).

Energy flow in depth.  For the damped dynamics ``M_θ θ̈ + γ M_θ θ̇ + ∂C/∂θ = 0`` let
``E_m = ½ Σ M_θ θ̇²`` over the parameters of layer ``m`` and ``δ^(m) = ∂C/∂z^(m)``.  The
chain rule gives ``θ̇_m·∂C/∂θ_m = F_{m+1} − F_m`` with the power through neuron layer ``m``

    F_m = Σ_l δ^(m),l · ż^(m),l      (F_0 = 0: the data do not move),

so that, per layer and at every instant,

    dE_m/dt + F_{m→m+1} − F_{m−1→m} = −2γ E_m        (F_{m→m+1} ≡ F_{m+1}),

and the last flux feeds the cost: ``dC/dt = F_M + ∂_t C`` (the source power of a
time-dependent data set).  Summed over layers: ``d/dt (Σ E_m + C) = −2γ Σ E_m + ∂_t C``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cost import Cost
from .network import Network, Trace, layer_value

Array = np.ndarray


def _dot(a: Array, b: Array) -> float:
    return float(np.sum(a * b))


@dataclass(frozen=True)
class BulkBoundary:
    """The terms of ``L_bulk`` and ``L_boundary`` for one sample at one instant."""

    kinetic_weights: float
    kinetic_z: float
    bulk_cross: float
    bulk_square: float
    boundary_cross: float
    boundary_square: float
    loss: float

    @property
    def bulk(self) -> float:
        return self.kinetic_weights + self.kinetic_z + self.bulk_cross + self.bulk_square

    @property
    def boundary(self) -> float:
        return self.boundary_cross + self.boundary_square - self.loss


def _sample(network: Network, theta: Array, x: Array) -> Trace:
    return network.forward(theta, np.atleast_2d(x))


def lagrangian(
    network: Network, theta: Array, theta_dot: Array, x: Array, y: Array, dx: Array
) -> float:
    """``L = ½ |θ̇|² − ℓ(Z, Y)`` for one sample (unit masses)."""
    Z = _sample(network, theta, x).output[0]
    return 0.5 * _dot(theta_dot, theta_dot) - 0.5 * _dot(dx, (Z - y) ** 2)


def bulk_boundary(
    network: Network, theta: Array, theta_dot: Array, x: Array, y: Array, dx: Array
) -> BulkBoundary:
    """Evaluate every term of the decomposition (needs biases: they are traded for ``z``)."""
    if not network.bias:
        raise ValueError(
            "the bulk–boundary decomposition trades biases for pre-activations: "
            "it needs a network with bias = true"
        )
    P = network.params
    trace = _sample(network, theta, x)
    zdot = network.tangent(theta, theta_dot, trace)
    M = network.depth
    hdot = [np.zeros_like(trace.h[0])] + [
        network.dsigma(m, layer_value(trace.z, m)) * layer_value(zdot, m) for m in range(1, M + 1)
    ]
    # ∂_t(W^(m) σ(z^(m))) = Ẇ^(m) h^(m) + W^(m) ḣ^(m)
    drive = [
        layer.apply(P.W(theta_dot, m), trace.h[m]) + layer.apply(P.W(theta, m), hdot[m])
        for m, layer in enumerate(network.layers)
    ]
    kin_w = 0.5 * sum(_dot(P.W(theta_dot, m), P.W(theta_dot, m)) for m in range(M))
    return BulkBoundary(
        kinetic_weights=kin_w,
        kinetic_z=0.5
        * sum(_dot(layer_value(zdot, m), layer_value(zdot, m)) for m in range(1, M + 1)),
        bulk_cross=-sum(_dot(layer_value(zdot, m + 1), drive[m]) for m in range(1, M)),
        bulk_square=0.5 * sum(_dot(drive[m], drive[m]) for m in range(1, M)),
        boundary_cross=-_dot(layer_value(zdot, 1), drive[0]),
        boundary_square=0.5 * _dot(drive[0], drive[0]),
        loss=0.5 * _dot(dx, (trace.output[0] - y) ** 2),
    )


@dataclass(frozen=True)
class EnergyBalance:
    """Per-layer energies ``E_m``, their rates ``dE_m/dt``, fluxes ``F_0 … F_M``, friction."""

    energy: Array
    rate: Array
    flux: Array
    friction: Array
    cost: float

    def residual(self) -> Array:
        """``dE_m/dt + F_{m+1} − F_m − friction_m`` for every layer (zero in exact arithmetic)."""
        return self.rate + self.flux[1:] - self.flux[:-1] - self.friction

    def scale(self) -> float:
        return float(np.max(np.abs(np.concatenate([self.rate, self.flux, self.friction]))))


def layer_energies(network: Network, theta_dot: Array, masses: Array) -> Array:
    """``E_m = ½ Σ M_θ θ̇²`` over the weights and biases of each layer."""
    P = network.params
    e = 0.5 * masses * theta_dot**2
    return np.array([np.sum(P.W(e, m)) + np.sum(P.b(e, m)) for m in range(network.depth)])


def energy_balance(
    cost: Cost,
    theta: Array,
    theta_dot: Array,
    rates: Array,
    gamma: float,
    samples: Array | None = None,
) -> EnergyBalance:
    """The balance of docs/physics.md "Mechanics" at one instant of ``θ̈ + γθ̇ + η_θ ∂C/∂θ = 0``.

    ``dE_m/dt`` comes from the equation of motion (``Σ M_θ θ̇ θ̈``, ``M_θ = 1/η_θ``); the
    fluxes come independently from the forward tangent ``ż`` and the backward ``δ``.
    """
    net = cost.network
    X, Y = cost.batch(samples)
    trace = net.forward(theta, X)
    L = X.shape[0]
    losses, dZ = cost.losses_and_output_gradient(trace.output, Y)
    grad, deltas = net.backward(theta, trace, dZ / L)
    zdot = net.tangent(theta, theta_dot, trace)
    masses = 1.0 / rates
    accel = -gamma * theta_dot - rates * grad
    P = net.params
    power = masses * theta_dot * accel
    rate = np.array([np.sum(P.W(power, m)) + np.sum(P.b(power, m)) for m in range(net.depth)])
    flux = np.array(
        [0.0] + [_dot(deltas[m - 1], layer_value(zdot, m)) for m in range(1, net.depth + 1)]
    )
    energy = layer_energies(net, theta_dot, masses)
    return EnergyBalance(
        energy=energy,
        rate=rate,
        flux=flux,
        friction=-2.0 * gamma * energy,
        cost=float(np.sum(losses)) / L,
    )
