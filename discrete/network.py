"""Discrete feed-forward networks: connectivity, parameters, forward and backward passes.

docs/physics.md "Discrete network and cost".  Layer ``m = 0 … M-1`` maps layer ``m`` (width ``N_m``)
to layer ``m+1``::

    z_i^(m+1) = Σ_j W_ij^(m) h_j^(m) + b_i^(m),   h^(m) = σ(z^(m)) (m ≥ 1),   h^(0) = X,
    Z = h^(M)   (σ, or the identity when ``output = "identity"``).

A dense layer stores ``W^(m)`` as an ``(N_{m+1}, N_m)`` array.  A banded layer stores one
column per offset ``s``: ``W[i, k]`` is the weight from input ``j = i + s_k`` to output ``i``
(indices taken modulo ``N_m`` for periodic ends; entries that would fall outside an open
chain are absent and held at zero by a mask), so no dense zeros are ever stored.

All parameters live in one flat vector ``θ`` (what the training rules integrate);
:class:`ParameterSpace` hands out views of it layer by layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .activations import Activation

Array = np.ndarray


@dataclass(frozen=True)
class Dense:
    """All-to-all connectivity: ``W`` has shape ``(n_out, n_in)``."""

    def shape(self, n_in: int, n_out: int) -> tuple[int, int]:
        return (n_out, n_in)

    def __str__(self) -> str:
        return "dense"


@dataclass(frozen=True)
class Banded:
    """Output ``i`` sees inputs ``i + s`` for ``s`` in ``offsets``; ``ends`` periodic or open."""

    offsets: tuple[int, ...]
    ends: str = "periodic"

    def shape(self, n_in: int, n_out: int) -> tuple[int, int]:
        return (n_out, len(self.offsets))

    def columns(self, n_in: int, n_out: int) -> tuple[Array, Array]:
        """Input index ``j = i + s`` of every stored weight, and the mask of those that exist."""
        j = np.arange(n_out)[:, None] + np.asarray(self.offsets)[None, :]
        if self.ends == "periodic":
            return j % n_in, np.ones(j.shape, dtype=bool)
        mask = (j >= 0) & (j < n_in)
        return np.where(mask, j, 0), mask

    def __str__(self) -> str:
        return f"banded(offsets={list(self.offsets)}, ends={self.ends})"


Connectivity = Dense | Banded


@dataclass(frozen=True)
class Layer:
    """The map from neuron layer ``m`` (``n_in`` neurons) to layer ``m+1`` (``n_out``)."""

    n_in: int
    n_out: int
    connectivity: Connectivity
    columns: Array | None = field(default=None, compare=False, repr=False)
    mask: Array | None = field(default=None, compare=False, repr=False)

    @classmethod
    def build(cls, n_in: int, n_out: int, connectivity: Connectivity) -> Layer:
        if isinstance(connectivity, Banded):
            if connectivity.ends == "periodic" and n_out > n_in:
                raise ValueError(
                    f"a periodic banded layer needs n_out <= n_in, got {n_in} -> {n_out}"
                )
            columns, mask = connectivity.columns(n_in, n_out)
            return cls(n_in, n_out, connectivity, columns, mask)
        return cls(n_in, n_out, connectivity)

    @property
    def banded(self) -> bool:
        return isinstance(self.connectivity, Banded)

    @property
    def weight_shape(self) -> tuple[int, int]:
        return self.connectivity.shape(self.n_in, self.n_out)

    def apply(self, W: Array, h: Array) -> Array:
        """``Σ_j W_ij h_j`` for a batch ``h`` of shape ``(L, n_in)``."""
        if not self.banded:
            return h @ W.T
        return np.einsum("lik,ik->li", h[:, self.columns], W * self.mask)

    def apply_transpose(self, W: Array, d: Array) -> Array:
        """``Σ_i W_ij d_i`` for a batch ``d`` of shape ``(L, n_out)``."""
        if not self.banded:
            return d @ W
        assert self.columns is not None and self.mask is not None, "built by Layer.build"
        out = np.zeros((d.shape[0], self.n_in))
        Wm = W * self.mask
        for k in range(Wm.shape[1]):
            # i ↦ i + s_k is injective, so fancy-index accumulation is exact
            out[:, self.columns[:, k]] += d * Wm[:, k]
        return out

    def outer(self, d: Array, h: Array) -> Array:
        """``Σ_l d_i^l h_j^l`` in the layer's storage (the weight gradient of a cost)."""
        if not self.banded:
            return d.T @ h
        return np.einsum("li,lik->ik", d, h[:, self.columns]) * self.mask

    def dense(self, W: Array) -> Array:
        """The ``(n_out, n_in)`` matrix of ``W`` (for inspection and small tests only)."""
        if not self.banded:
            return np.array(W)
        assert self.columns is not None and self.mask is not None, "built by Layer.build"
        M = np.zeros((self.n_out, self.n_in))
        rows = np.broadcast_to(np.arange(self.n_out)[:, None], self.columns.shape)
        np.add.at(M, (rows[self.mask], self.columns[self.mask]), W[self.mask])
        return M


class ParameterSpace:
    """Layout of all weights and biases in one flat vector θ = (W⁽⁰⁾, b⁽⁰⁾, W⁽¹⁾, b⁽¹⁾, …)."""

    def __init__(self, layers: list[Layer], bias: bool):
        self.layers = layers
        self.bias = bias
        self._w_slices: list[slice] = []
        self._b_slices: list[slice] = []
        start = 0
        for layer in layers:
            n = int(np.prod(layer.weight_shape))
            self._w_slices.append(slice(start, start + n))
            start += n
            nb = layer.n_out if bias else 0
            self._b_slices.append(slice(start, start + nb))
            start += nb
        self.size = start

    def W(self, theta: Array, m: int) -> Array:
        """View of ``W^(m)`` inside θ (writes go through)."""
        return theta[..., self._w_slices[m]].reshape(theta.shape[:-1] + self.layers[m].weight_shape)

    def b(self, theta: Array, m: int) -> Array:
        """View of ``b^(m)`` inside θ (zeros of shape ``(n_out,)`` when there is no bias)."""
        if not self.bias:
            return np.zeros((*theta.shape[:-1], self.layers[m].n_out))
        return theta[..., self._b_slices[m]]

    def layer_slices(self, m: int) -> tuple[slice, slice]:
        """Where ``W^(m)`` (row-major) and ``b^(m)`` sit in θ."""
        return self._w_slices[m], self._b_slices[m]

    def zeros(self) -> Array:
        return np.zeros(self.size)

    def pack(self, weights: list[Array], biases: list[Array] | None = None) -> Array:
        """θ from per-layer arrays (biases ignored when the network has none)."""
        theta = self.zeros()
        for m, W in enumerate(weights):
            self.W(theta, m)[...] = W
            if self.bias and biases is not None:
                self.b(theta, m)[...] = biases[m]
        return self.masked(theta)

    def masked(self, theta: Array) -> Array:
        """θ with the absent weights of open banded layers set to zero."""
        for m, layer in enumerate(self.layers):
            if layer.banded:
                assert layer.mask is not None, "built by Layer.build"
                self.W(theta, m)[..., ~layer.mask] = 0.0
        return theta

    def per_group(self, weight_values: list[float], bias_values: list[float]) -> Array:
        """A vector on θ that is constant on each group (e.g. per-group learning rates)."""
        v = self.zeros()
        for m in range(len(self.layers)):
            v[self._w_slices[m]] = weight_values[m]
            v[self._b_slices[m]] = bias_values[m]
        return v


def layer_value(values: list[Array | None], m: int) -> Array:
    """``values[m]`` (``m ≥ 1``) of a per-layer list whose index 0 is the ``None`` placeholder
    of the input layer (:attr:`Trace.z`, :meth:`Network.tangent`)."""
    value = values[m]
    assert value is not None, f"layer {m} holds no value"
    return value


@dataclass
class Trace:
    """Pre-activations ``z^(m)`` (m = 1 … M) and activities ``h^(m)`` (m = 0 … M) of a batch."""

    z: list[Array | None]
    h: list[Array]

    @property
    def output(self) -> Array:
        return self.h[-1]


class Network:
    """A feed-forward network of any depth (docs/physics.md "Discrete network and cost")."""

    def __init__(
        self,
        widths: list[int],
        activation: Activation,
        connectivity: list[Connectivity],
        bias: bool = True,
        output: str = "identity",
    ):
        if len(widths) < 2:
            raise ValueError("a network needs at least an input and an output layer")
        if len(connectivity) != len(widths) - 1:
            raise ValueError(
                f"{len(widths) - 1} layers need {len(widths) - 1} connectivities, "
                f"got {len(connectivity)}"
            )
        if output not in ("identity", "activation"):
            raise ValueError(f"output must be 'identity' or 'activation', got {output!r}")
        self.widths = [int(n) for n in widths]
        self.activation = activation
        self.output = output
        self.layers = [Layer.build(widths[m], widths[m + 1], c) for m, c in enumerate(connectivity)]
        self.params = ParameterSpace(self.layers, bias)

    @property
    def depth(self) -> int:
        """Number of weight layers ``M``."""
        return len(self.layers)

    @property
    def bias(self) -> bool:
        return self.params.bias

    def depth_measure(self, m: int) -> float:
        """The depth cell of weight layer ``m`` in the dictionary's rates: 1 for an ordinary
        layer (``Δτ`` for a residual block, :mod:`discrete.residual`)."""
        return 1.0

    def layer_name(self, m: int) -> str:
        """The name of weight layer ``m`` in ``fields.h5``."""
        return f"layer{m}"

    def sigma(self, m: int, z: Array) -> Array:
        """``h^(m) = σ(z^(m))``, the identity at the output when ``output = "identity"``."""
        if m == self.depth and self.output == "identity":
            return z
        return self.activation.sigma(z)

    def dsigma(self, m: int, z: Array, h: Array | None = None) -> Array:
        """``σ'(z^(m))`` (1 at an identity output); ``h``: ``σ(z^(m))`` when the forward pass
        has it (:meth:`Activation.slope`)."""
        if m == self.depth and self.output == "identity":
            return np.ones_like(z)
        return self.activation.dsigma(z) if h is None else self.activation.slope(z, h)

    def forward(self, theta: Array, X: Array) -> Trace:
        """Forward pass of a batch ``X`` of shape ``(L, N_0)``."""
        h: list[Array] = [np.atleast_2d(X)]
        z: list[Array | None] = [None]
        for m, layer in enumerate(self.layers):
            zm = layer.apply(self.params.W(theta, m), h[m]) + self.params.b(theta, m)
            z.append(zm)
            h.append(self.sigma(m + 1, zm))
        return Trace(z, h)

    def backward(self, theta: Array, trace: Trace, dZ: Array) -> tuple[Array, list[Array]]:
        """Gradient of a cost whose derivative with respect to the output is ``dZ``.

        Back-propagation (docs/physics.md "Continuum", discrete form)::

            δ^(M) = σ'(z^(M)) ⊙ ∂C/∂Z,     δ^(m) = σ'(z^(m)) ⊙ (W^(m)ᵀ δ^(m+1)),
            ∂C/∂W^(m) = Σ_l δ^(m+1) h^(m)ᵀ,   ∂C/∂b^(m) = Σ_l δ^(m+1).

        Returns the gradient as a vector on θ and the list ``δ^(m) = ∂C/∂z^(m)``, m = 1 … M.
        """
        grad = self.params.zeros()
        M = self.depth
        delta = self.dsigma(M, layer_value(trace.z, M), trace.h[M]) * dZ
        deltas: list[Array] = [delta]
        for m in range(M - 1, -1, -1):
            layer = self.layers[m]
            self.params.W(grad, m)[...] = layer.outer(delta, trace.h[m])
            if self.bias:
                self.params.b(grad, m)[...] = delta.sum(axis=0)
            if m > 0:
                delta = self.dsigma(m, layer_value(trace.z, m), trace.h[m]) * layer.apply_transpose(
                    self.params.W(theta, m), delta
                )
                deltas.insert(0, delta)
        return grad, deltas

    def tangent(self, theta: Array, theta_dot: Array, trace: Trace) -> list[Array | None]:
        """Time derivatives ``ż^(m)`` (m = 1 … M) along a trajectory θ(t) with velocity θ̇.

        Forward-mode chain rule: ``ż^(m+1) = Ẇ^(m) h^(m) + W^(m) ḣ^(m) + ḃ^(m)``,
        ``ḣ^(m) = σ'(z^(m)) ż^(m)``, ``ḣ^(0) = 0`` (the data do not move).
        """
        zdot: list[Array | None] = [None]
        hdot = np.zeros_like(trace.h[0])
        for m, layer in enumerate(self.layers):
            P = self.params
            zd = (
                layer.apply(P.W(theta_dot, m), trace.h[m])
                + layer.apply(P.W(theta, m), hdot)
                + P.b(theta_dot, m)
            )
            zdot.append(zd)
            hdot = self.dsigma(m + 1, layer_value(trace.z, m + 1), trace.h[m + 1]) * zd
        return zdot

    def __str__(self) -> str:
        conn = ", ".join(str(layer.connectivity) for layer in self.layers)
        return (
            f"Network(widths={self.widths}, activation={self.activation.name}, "
            f"output={self.output}, bias={self.bias}, layers=[{conn}])"
        )
