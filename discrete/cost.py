"""The training cost and its gradient.

docs/physics.md "Discrete network and cost"; docs/physics.md "Index layers"::

    C = (1/L) Σ_l ℓ(Z^l, Y^l)

with one of two losses on the output layer (``Δx_i`` its cell measures, ``Δ = 1`` on an index
layer):

* ``mse``:            ℓ(Z, Y) = ½ Σ_i Δx_i (Z_i − Y_i)²,  a Riemann sum over the output coordinate;
* ``cross-entropy``:  ℓ(Z, Y) = −Σ_k Y_k log softmax(Z)_k,  on an index output layer of ``k``
  classes with one-hot (or probability) targets.

Both are written ``∂ℓ/∂Z_i = Δx_i g_i`` with a *density* ``g`` (the field ``δ^(M)`` of the
continuum before the output activation): ``g = Z − Y`` for ``mse`` and
``g = softmax(Z) Σ_k Y_k − Y`` for ``cross-entropy`` (``Δ = 1``).  The continuum
(:mod:`continuum.fields.galerkin`) uses the same loss objects with its quadrature weights in
place of ``Δx``.  With SGD the average runs over the samples of the moment only.
"""

from __future__ import annotations

import numpy as np

from .data import DataSet
from .network import Network, Trace

Array = np.ndarray

LOSSES = ("mse", "cross-entropy")


class SquaredError:
    """``ℓ = ½ Σ_i Δ_i (Z_i − Y_i)²`` and its density ``g = Z − Y``."""

    name = "mse"

    def per_sample(self, Z: Array, Y: Array, measure: Array, axis: int = -1) -> Array:
        """``ℓ`` of every sample; ``axis`` is the output axis, ``measure`` the ``Δ_i`` along it."""
        return self.per_sample_and_density(Z, Y, measure, axis)[0]

    def density(self, Z: Array, Y: Array, axis: int = -1) -> Array:
        """``g`` with ``∂ℓ/∂Z_i = Δ_i g_i``."""
        return Z - Y

    def per_sample_and_density(
        self, Z: Array, Y: Array, measure: Array, axis: int = -1
    ) -> tuple[Array, Array]:
        """``ℓ`` of every sample and ``g`` (a gradient needs both), from one residual."""
        r = self.density(Z, Y, axis)
        return 0.5 * np.sum(_along(measure, axis, Z.ndim) * r * r, axis=axis), r


class CrossEntropy:
    """``ℓ = −Σ_k Y_k log softmax(Z)_k`` (counting measure on the classes) and its density
    ``g = softmax(Z) Σ_k Y_k − Y``; for ``k = 2`` and a one-hot target it is the logistic loss
    ``log(1 + e^{−(Z_y − Z_other)})``."""

    name = "cross-entropy"

    def per_sample(self, Z: Array, Y: Array, measure: Array, axis: int = -1) -> Array:
        return -np.sum(Y * log_softmax(Z, axis), axis=axis)

    def density(self, Z: Array, Y: Array, axis: int = -1) -> Array:
        return self._density(log_softmax(Z, axis), Y, axis)

    def per_sample_and_density(
        self, Z: Array, Y: Array, measure: Array, axis: int = -1
    ) -> tuple[Array, Array]:
        """``ℓ`` of every sample and ``g`` (a gradient needs both), from one ``log softmax``."""
        log_p = log_softmax(Z, axis)
        return -np.sum(Y * log_p, axis=axis), self._density(log_p, Y, axis)

    @staticmethod
    def _density(log_p: Array, Y: Array, axis: int) -> Array:
        """``g = softmax(Z) Σ_k Y_k − Y`` from ``log softmax(Z)``."""
        return np.exp(log_p) * np.sum(Y, axis=axis, keepdims=True) - Y


Loss = SquaredError | CrossEntropy


def loss(name: str) -> Loss:
    """The loss called ``name`` (one of :data:`LOSSES`)."""
    if name == "mse":
        return SquaredError()
    if name == "cross-entropy":
        return CrossEntropy()
    raise ValueError(f"unknown loss {name!r}; choose one of {LOSSES}")


def log_softmax(Z: Array, axis: int = -1) -> Array:
    """``Z_k − log Σ_k' e^{Z_k'}``, shifted by the maximum ``Z_*`` (no overflow) and written
    ``log Σ_k' e^{Z_k' − Z_*} = log1p(Σ_{k' ≠ *} e^{Z_k' − Z_*})`` (full relative accuracy for a
    confident prediction, whose loss is tiny)."""
    top = np.argmax(Z, axis=axis, keepdims=True)
    shifted = Z - np.max(Z, axis=axis, keepdims=True)  # the entry at ``top``: exactly 0
    others = np.exp(shifted)
    np.put_along_axis(others, top, 0.0, axis)
    return shifted - np.log1p(np.sum(others, axis=axis, keepdims=True))


def _along(measure: Array, axis: int, ndim: int) -> Array:
    """``measure`` shaped to broadcast along ``axis`` of an ``ndim``-dimensional array."""
    shape = [1] * ndim
    shape[axis] = -1
    return np.reshape(measure, shape)


def accuracy(Z: Array, Y: Array) -> float:
    """Fraction of samples (rows) whose largest output is the target's largest entry."""
    return float(np.mean(np.argmax(Z, axis=1) == np.argmax(Y, axis=1)))


class Cost:
    """``C(θ)`` of a network on a data set, with output measures ``Δx`` and a loss."""

    def __init__(
        self, network: Network, data: DataSet, output_measure: Array, loss: Loss | None = None
    ):
        if data.X.shape[1] != network.widths[0] or data.Y.shape[1] != network.widths[-1]:
            raise ValueError(
                f"data of shapes X {data.X.shape}, Y {data.Y.shape} do not fit a network "
                f"of widths {network.widths}"
            )
        self.network = network
        self.data = data
        self.dx = np.asarray(output_measure, dtype=float)
        self.loss = loss or SquaredError()

    def batch(self, samples: Array | None) -> tuple[Array, Array]:
        """Inputs and targets of the given samples (all of them for ``None``)."""
        if samples is None:
            return self.data.X, self.data.Y
        return self.data.X[samples], self.data.Y[samples]

    def losses_and_output_gradient(self, Z: Array, Y: Array) -> tuple[Array, Array]:
        """``ℓ(Z^l, Y^l)`` and ``∂ℓ/∂Z = Δx ⊙ g`` of every sample (rows), from one pass of the
        loss (:meth:`CrossEntropy.per_sample_and_density`)."""
        losses, g = self.loss.per_sample_and_density(Z, Y, self.dx)
        return losses, self.dx * g

    def value(self, theta: Array, samples: Array | None = None) -> float:
        X, Y = self.batch(samples)
        return float(
            np.mean(self.loss.per_sample(self.network.forward(theta, X).output, Y, self.dx))
        )

    def per_sample(self, theta: Array) -> Array:
        """``ℓ(Z^l, Y^l)`` of every sample."""
        return self.loss.per_sample(
            self.network.forward(theta, self.data.X).output, self.data.Y, self.dx
        )

    def on(self, theta: Array, X: Array, Y: Array) -> tuple[float, float]:
        """The mean loss and the accuracy of the network on other samples (a test split)."""
        Z = self.network.forward(theta, X).output
        return float(np.mean(self.loss.per_sample(Z, Y, self.dx))), accuracy(Z, Y)

    def gradient(self, theta: Array, samples: Array | None = None) -> tuple[float, Array]:
        """``C`` and ``∂C/∂θ`` (back-propagation with ``∂C/∂Z = Δx g/L``)."""
        X, Y = self.batch(samples)
        trace: Trace = self.network.forward(theta, X)
        Z, L = trace.output, X.shape[0]
        losses, dZ = self.losses_and_output_gradient(Z, Y)
        grad, _ = self.network.backward(theta, trace, dZ / L)
        return float(np.sum(losses)) / L, grad
