"""The training cost and its gradient.

SPEC 1.1::

    C = (1/L) Σ_l ℓ(Z^l, Y^l),     ℓ(Z, Y) = ½ Σ_i Δx_i (Z_i − Y_i)²,

a Riemann sum over the output coordinate (``Δx_i`` the output cell measures).  With SGD
the average runs over the samples of the moment only.
"""

from __future__ import annotations

import numpy as np

from .data import DataSet
from .network import Network, Trace

Array = np.ndarray


class Cost:
    """``C(θ)`` of a network on a data set, with output measures ``Δx``."""

    def __init__(self, network: Network, data: DataSet, output_measure: Array):
        if data.X.shape[1] != network.widths[0] or data.Y.shape[1] != network.widths[-1]:
            raise ValueError(
                f"data of shapes X {data.X.shape}, Y {data.Y.shape} do not fit a network "
                f"of widths {network.widths}"
            )
        self.network = network
        self.data = data
        self.dx = np.asarray(output_measure, dtype=float)

    def batch(self, samples: Array | None) -> tuple[Array, Array]:
        """Inputs and targets of the given samples (all of them for ``None``)."""
        if samples is None:
            return self.data.X, self.data.Y
        return self.data.X[samples], self.data.Y[samples]

    def residual(self, trace: Trace, Y: Array) -> Array:
        return trace.output - Y

    def value(self, theta: Array, samples: Array | None = None) -> float:
        X, Y = self.batch(samples)
        r = self.network.forward(theta, X).output - Y
        return 0.5 * float(np.mean(np.sum(self.dx * r * r, axis=1)))

    def per_sample(self, theta: Array) -> Array:
        """``ℓ(Z^l, Y^l)`` of every sample."""
        r = self.network.forward(theta, self.data.X).output - self.data.Y
        return 0.5 * np.sum(self.dx * r * r, axis=1)

    def gradient(self, theta: Array, samples: Array | None = None) -> tuple[float, Array]:
        """``C`` and ``∂C/∂θ`` (back-propagation with ``∂C/∂Z = Δx (Z − Y)/L``)."""
        X, Y = self.batch(samples)
        trace = self.network.forward(theta, X)
        r = trace.output - Y
        L = X.shape[0]
        grad, _ = self.network.backward(theta, trace, self.dx * r / L)
        return 0.5 * float(np.sum(self.dx * r * r)) / L, grad
