"""The continuum of banded layers under the unit-cell convention: ultra-local fields.

A banded layer ``z_i = Σ_s W_is h_{i+s} + b_i`` with ``W_is = w_s(x_i)`` (no Δy: ``S`` weights
per output are components of a field, not a Riemann sum) has, as the spacing ``a → 0``
(``h_{i+s} = h(x_i + s a) → h(x_i)``), the pointwise limit

    z^(m+1)(x) = Σ_s w_s^(m)(x) h^(m)(x) + b^(m)(x),
    δ^(m)(x)   = σ'(z^(m)(x)) Σ_s w_s^(m)(x) δ^(m+1)(x),
    δC/δw_s^(m)(x) = (1/L) Σ_l δ^(m+1),l(x) h^(m),l(x)      (the same for every s),

with no spatial operator at all: only ``Σ_s w_s`` is fixed by the data.  All layers live on
one coordinate domain (equal widths).  The discrete network differs from this limit by the
shift ``s a`` of its inputs, so it converges at first order in ``1/N``.  Fields are Lagrange
functions; products are evaluated at the quadrature points and the functional derivatives
are represented by their L2 (Riesz) images ``M⁻¹ Tᵀ(ω ⊙ ·)``.  The object offers the
interface of :class:`continuum.fields.galerkin.GalerkinNetwork`, so the same training rules and the
same model integrate it.  Every rank holds all of it (the fields are one-dimensional).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from mpi4py import MPI

from continuum.fem.spaces import FactorSpace
from continuum.fields.galerkin import CoefficientLayout, DataFunction, hidden
from discrete.network import Network

Array = np.ndarray


class UnitCellNetwork(CoefficientLayout):
    """Fields ``w_s^(m)(x)``, ``b^(m)(x)`` of a banded network in one Lagrange space."""

    def __init__(
        self,
        network: Network,
        spaces: list[FactorSpace],
        inputs: DataFunction,
        targets: DataFunction,
        samples: int,
        comm: MPI.Comm = MPI.COMM_SELF,
    ):
        if not all(layer.banded for layer in network.layers):
            raise ValueError("the unit-cell continuum needs every layer banded")
        if len(set(network.widths)) != 1:
            raise ValueError(
                f"the unit-cell continuum puts all layers on one domain: widths must be equal, "
                f"got {network.widths}"
            )
        self.network, self.spaces, self.samples, self.comm = network, spaces, samples, comm
        self.space = spaces[0]
        every = np.arange(samples)
        self.X_q = inputs(self.space.quadrature_points, every)
        self.Y_q = targets(self.space.quadrature_points, every)
        n, S = self.space.size, network.layers[0].weight_shape[1]
        self._shapes = [(n, S)] * network.depth
        self._lay_out([n] * network.depth)

    def W(self, theta: Array, m: int) -> Array:
        """The coefficients of ``w_s^(m)`` as columns: ``(n, S)``."""
        return theta[self._w[m]].reshape(self._shapes[m])

    def pack(self, w: list[Array], b: list[Array]) -> Array:
        theta = np.zeros(self.size)
        for m in range(self.network.depth):
            theta[self._w[m]] = w[m].ravel()
            if self.network.bias:
                theta[self._b[m]] = b[m]
        return theta

    def unpack(self, theta: Array) -> tuple[list[Array], list[Array]]:
        depth = self.network.depth
        return [self.W(theta, m).copy() for m in range(depth)], [
            self.b(theta, m).copy() for m in range(depth)
        ]

    def interpolate(
        self, weight: Callable[[int, Array, Array], Array], bias: Callable[[int, Array], Array]
    ) -> Array:
        """``w_s(x) = w(x, x)`` (the limit of ``w(x_i, y_{i+s})``) and ``b(x)``, nodally."""
        xs = self.space.dof_coordinates
        S = self._shapes[0][1]
        w = [
            np.repeat(np.diagonal(weight(m, xs, xs))[:, None], S, axis=1)
            for m in range(self.network.depth)
        ]
        return self.pack(w, [bias(m, xs) for m in range(self.network.depth)])

    def forward(self, theta: Array, samples: Array) -> tuple[list[Array | None], list[Array]]:
        """Pre-activations ``z_q^(m)`` and activities ``h_q^(m)`` at the quadrature points."""
        net, T = self.network, self.space.at_quadrature
        h = [self.X_q[:, samples]]
        z: list[Array | None] = [None]
        for m in range(net.depth):
            weight = T(self.W(theta, m).sum(axis=1))
            zm = weight[:, None] * h[m] + T(self.b(theta, m))[:, None]
            z.append(zm)
            h.append(net.sigma(m + 1, zm))
        return z, h

    def value(self, theta: Array, samples: Array | None = None) -> float:
        samples = np.arange(self.samples) if samples is None else np.asarray(samples)
        _, h = self.forward(theta, samples)
        r = h[-1] - self.Y_q[:, samples]
        return 0.5 * float(np.mean(self.space.integrate(r * r)))

    def gradient(self, theta: Array, samples: Array | None = None) -> tuple[float, Array]:
        """``C`` and the Riesz images of ``δC/δw_s`` (equal for all ``s``) and ``δC/δb``."""
        net, T = self.network, self.space.at_quadrature
        samples = np.arange(self.samples) if samples is None else np.asarray(samples)
        L, M = len(samples), net.depth
        z, h = self.forward(theta, samples)
        r = h[M] - self.Y_q[:, samples]
        cost = 0.5 * float(np.mean(self.space.integrate(r * r)))
        delta = net.dsigma(M, hidden(z, M)) * r
        grad = np.zeros(self.size)
        for m in range(M - 1, -1, -1):
            riesz = self.space.solve_mass(self.space.load((delta * h[m]).sum(axis=1))) / L
            grad[self._w[m]] = np.repeat(riesz[:, None], self._shapes[m][1], axis=1).ravel()
            if net.bias:
                grad[self._b[m]] = self.space.solve_mass(self.space.load(delta.sum(axis=1))) / L
            if m > 0:
                weight = T(self.W(theta, m).sum(axis=1))
                delta = net.dsigma(m, hidden(z, m)) * weight[:, None] * delta
        return cost, grad

    def lattice_values(self, theta: Array, evaluators: list) -> tuple[list[Array], list[Array]]:
        """``w_s^(m)(x_i)`` in the banded storage ``(N, S)``, and ``b^(m)(x_i)``."""
        w = [np.asarray(evaluators[m + 1] @ self.W(theta, m)) for m in range(self.network.depth)]
        b = [evaluators[m + 1] @ self.b(theta, m) for m in range(self.network.depth)]
        return w, b
