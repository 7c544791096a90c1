"""Pointwise activation functions σ and their derivatives σ'.

docs/physics.md "Discrete network and cost": ``linear``, ``quadratic`` (σ(z) = c₀ + c₁ z + c₂ z²),
``tanh``, ``softplus`` (σ(z) = log(1 + eᶻ)) and ``relu`` (σ(z) = max(z, 0); not smooth: its
convergence orders are lower, see docs/convergence.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Array = np.ndarray


@dataclass(frozen=True)
class Activation:
    """An activation σ with its first derivative σ' (``of_value``: σ' as a function of
    ``h = σ(z)`` where that is cheaper than from ``z``, as tanh's ``1 − h²``; else ``None``)."""

    name: str
    sigma: Callable[[Array], Array]
    dsigma: Callable[[Array], Array]
    smooth: bool = True
    of_value: Callable[[Array], Array] | None = None

    def slope(self, z: Array, h: Array) -> Array:
        """``σ'(z)`` where ``h = σ(z)`` is at hand (a forward pass has it): from ``h`` where
        :attr:`of_value` says how, else from ``z``."""
        return self.dsigma(z) if self.of_value is None else self.of_value(h)

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


ACTIVATIONS = ("linear", "quadratic", "tanh", "softplus", "relu")
"""The activations :func:`activation` builds (the choices of ``[network] activation``)."""


def _tanh_slope(h: Array) -> Array:
    """``tanh'(z) = 1 − h²`` at ``h = tanh(z)``."""
    return 1.0 - h * h


def _sigmoid(z: Array) -> Array:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def activation(name: str, quadratic: tuple[float, float, float] = (0.0, 1.0, 0.5)) -> Activation:
    """The activation called ``name``; ``quadratic`` holds (c₀, c₁, c₂) for ``quadratic``."""
    if name == "linear":
        return Activation("linear", lambda z: np.asarray(z, dtype=float), np.ones_like)
    if name == "quadratic":
        c0, c1, c2 = (float(c) for c in quadratic)
        return Activation(
            f"quadratic(c0={c0:g}, c1={c1:g}, c2={c2:g})",
            lambda z: c0 + c1 * z + c2 * z * z,
            lambda z: c1 + 2.0 * c2 * z,
        )
    if name == "tanh":
        # σ' = 1 − σ² from the forward pass's σ: no second transcendental (four times
        # cheaper than sech², equal to it within 5e-16)
        return Activation("tanh", np.tanh, lambda z: 1.0 / np.cosh(z) ** 2, of_value=_tanh_slope)
    if name == "softplus":
        return Activation("softplus", lambda z: np.logaddexp(0.0, z), _sigmoid)
    if name == "relu":
        return Activation(
            "relu", lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float), smooth=False
        )
    raise ValueError(f"unknown activation {name!r}; choose one of {ACTIVATIONS}")
