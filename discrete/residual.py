"""Residual networks: the layer index becomes the depth coordinate τ (docs/physics.md "Depth as a
coordinate").

A stream of width ``N`` passes ``M`` residual blocks at depths ``τ_k = (k + ½)/M``,
``Δτ = 1/M`` (docs/physics.md, "Depth as a coordinate")::

    s^(0)   = W^in X + b^in                                   (an ordinary dense layer)
    s^(k+1) = s^(k) + Δτ (W^(k) σ(s^(k)) + b^(k)),   k = 0 … M−1
    Z       = W^out s^(M) + b^out                             (an ordinary dense layer;
                                                               σ(·) with output = "activation")

with ``W^(k)_ij = Δy_j w(τ_k, x_i, y_j)`` and ``b^(k)_i = b(τ_k, x_i)``: the network is the
explicit Euler rule of the depth ODE ``∂_τ s = ∫ w σ(s) dy + b``.  Its discrete adjoint
``p^(k) = ∂C/∂s^(k)`` runs backwards::

    p^(M) = (W^out)ᵀ δ^out,   p^(k) = p^(k+1) + Δτ σ'(s^(k)) ⊙ (W^(k)ᵀ p^(k+1)),
    ∂C/∂W^(k) = Δτ Σ_l p^(k+1) σ(s^(k))ᵀ,     ∂C/∂b^(k) = Δτ Σ_l p^(k+1).

The ``M + 2`` weight layers (input, blocks, readout) are ordinary :class:`~discrete.network.Layer`
objects in one :class:`~discrete.network.ParameterSpace`, so every training rule, the cost,
the convention (``M + 3`` neuron layers: input, ``M + 1`` copies of the stream, output) and
the dictionary act on a residual network unchanged; :meth:`ResidualNetwork.depth_measure`
supplies the block's depth cell ``Δτ`` to the dictionary (``η_W = η Δy/(Δτ Δx)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .activations import Activation
from .expressions import Expression
from .network import Dense, Network

Array = np.ndarray


@dataclass
class StreamTrace:
    """The stream ``s^(k)`` (k = 0 … M, each ``(L, N)``) and the output ``Z`` of a batch."""

    X: Array
    s: list[Array]
    z_out: Array
    output: Array


class ResidualNetwork(Network):
    """``N_in → (stream of width N through M residual blocks) → N_out`` (docs/physics.md "Depth as a
    coordinate")."""

    def __init__(
        self,
        widths: list[int],
        activation: Activation,
        blocks: int,
        bias: bool = True,
        output: str = "identity",
    ):
        if len(widths) != 3:
            raise ValueError(f"a residual network has widths [N_in, N, N_out], got {list(widths)}")
        if blocks < 1:
            raise ValueError(f"a residual network needs at least one block, got {blocks}")
        n_in, n, n_out = (int(w) for w in widths)
        super().__init__(
            [n_in] + [n] * (blocks + 1) + [n_out],
            activation,
            [Dense()] * (blocks + 2),
            bias,
            output,
        )
        self.blocks = int(blocks)
        self.dtau = 1.0 / blocks

    @property
    def stream_width(self) -> int:
        return self.widths[1]

    @property
    def block_depths(self) -> Array:
        """``τ_k = (k + ½)/M`` of every block."""
        return (np.arange(self.blocks) + 0.5) * self.dtau

    def is_block(self, m: int) -> bool:
        """Weight layer ``m`` is residual block ``m − 1`` (layers 1 … M)."""
        return 1 <= m <= self.blocks

    def depth_measure(self, m: int) -> float:
        """``Δτ`` for a block, 1 for the input layer and the readout."""
        return self.dtau if self.is_block(m) else 1.0

    def layer_name(self, m: int) -> str:
        """``layer0`` (input), ``block{k}`` (k = 0 … M−1), ``layer{M+1}`` (readout)."""
        return f"block{m - 1}" if self.is_block(m) else f"layer{m}"

    def forward(self, theta: Array, X: Array) -> StreamTrace:  # type: ignore[override]
        """The stream ``s^(0) … s^(M)`` and the output of a batch ``X`` of shape ``(L, N_in)``."""
        P, sigma = self.params, self.activation.sigma
        X = np.atleast_2d(X)
        s = [X @ P.W(theta, 0).T + P.b(theta, 0)]
        for m in range(1, self.blocks + 1):
            s.append(s[-1] + self.dtau * (sigma(s[-1]) @ P.W(theta, m).T + P.b(theta, m)))
        last = self.depth - 1
        z_out = s[-1] @ P.W(theta, last).T + P.b(theta, last)
        return StreamTrace(X, s, z_out, self.sigma(self.depth, z_out))

    def backward(  # type: ignore[override]
        self, theta: Array, trace: StreamTrace, dZ: Array
    ) -> tuple[Array, list[Array]]:
        """Gradient of a cost with ``∂C/∂Z = dZ`` and ``∂C/∂`` of every neuron layer: the
        adjoint stream ``p^(k)``, k = 0 … M (the discrete adjoint of the module docstring), then
        ``δ^out = ∂C/∂z^out`` — one per weight layer's output, as for a feed-forward network
        (what :func:`discrete.mechanics.energy_balance` pairs with :meth:`tangent`)."""
        P, act = self.params, self.activation
        grad = P.zeros()
        last = self.depth - 1
        delta = self.dsigma(self.depth, trace.z_out) * dZ
        P.W(grad, last)[...] = delta.T @ trace.s[-1]
        if self.bias:
            P.b(grad, last)[...] = delta.sum(axis=0)
        p = delta @ P.W(theta, last)
        adjoint = [p]
        for m in range(self.blocks, 0, -1):
            s = trace.s[m - 1]
            h = act.sigma(s)
            P.W(grad, m)[...] = self.dtau * (p.T @ h)
            if self.bias:
                P.b(grad, m)[...] = self.dtau * p.sum(axis=0)
            p = p + self.dtau * act.slope(s, h) * (p @ P.W(theta, m))
            adjoint.insert(0, p)
        P.W(grad, 0)[...] = p.T @ trace.X
        if self.bias:
            P.b(grad, 0)[...] = p.sum(axis=0)
        return grad, [*adjoint, delta]

    def tangent(  # type: ignore[override]
        self, theta: Array, theta_dot: Array, trace: StreamTrace
    ) -> list[Array | None]:
        """Time derivatives along a trajectory θ(t): ``[None, ṡ^(0), …, ṡ^(M), ż^out]`` with

            ṡ^(0) = Ẇ^in X + ḃ^in,
            ṡ^(k+1) = ṡ^(k) + Δτ (Ẇ^(k) σ(s^(k)) + W^(k) (σ'(s^(k)) ṡ^(k)) + ḃ^(k)),
            ż^out = Ẇ^out s^(M) + W^out ṡ^(M) + ḃ^out.

        With the adjoint of :meth:`backward`, ``p^(k+1)·ṡ^(k+1) − p^(k)·ṡ^(k)`` is the power
        ``θ̇_k·∂C/∂θ_k`` of block k: the per-layer energy balance of a feed-forward network
        holds block by block."""
        P, act = self.params, self.activation
        sdot = trace.X @ P.W(theta_dot, 0).T + P.b(theta_dot, 0)
        out: list[Array | None] = [None, sdot]
        for m in range(1, self.blocks + 1):
            s = trace.s[m - 1]
            h = act.sigma(s)
            drive = h @ P.W(theta_dot, m).T + (act.slope(s, h) * sdot) @ P.W(theta, m).T
            sdot = sdot + self.dtau * (drive + P.b(theta_dot, m))
            out.append(sdot)
        last = self.depth - 1
        out.append(
            trace.s[-1] @ P.W(theta_dot, last).T + sdot @ P.W(theta, last).T + P.b(theta_dot, last)
        )
        return out

    def __str__(self) -> str:
        n_in, n, n_out = self.widths[0], self.stream_width, self.widths[-1]
        return (
            f"ResidualNetwork(widths=[{n_in}, {n}, {n_out}], blocks={self.blocks}, "
            f"Δτ={self.dtau:g}, activation={self.activation.name}, output={self.output}, "
            f"bias={self.bias})"
        )


def neuron_layouts(network: Network, layouts: tuple[str, ...]) -> tuple[str, ...]:
    """One layout per neuron layer of ``network`` from the configured ones: a residual
    network's ``(input, stream, output)`` become ``(input, stream × (M + 1), output)``."""
    if not isinstance(network, ResidualNetwork):
        return layouts
    return (layouts[0],) + (layouts[1],) * (network.blocks + 1) + (layouts[2],)


def layer_formula(
    formula: Expression | tuple[Expression, ...], network: Network, m: int
) -> tuple[Expression, dict[str, float]]:
    """The initial-field formula of weight layer ``m`` and the value of its layer variable:
    ``m`` itself for a feed-forward network (its formula, or its entry of one per layer);
    for a residual network the entry of the input
    layer, the blocks or the readout (or the one formula) with the depth ``tau`` = 0, ``τ_k``,
    1 (the blocks are points of one field in ``τ``, so their formulas have no ``m``)."""
    if not isinstance(network, ResidualNetwork):
        return (formula[m] if isinstance(formula, tuple) else formula), {"m": m}
    if m == 0:
        part, tau = 0, 0.0
    elif network.is_block(m):
        part, tau = 1, float(network.block_depths[m - 1])
    else:
        part, tau = 2, 1.0
    return (formula[part] if isinstance(formula, tuple) else formula), {"tau": tau}
