"""The input layer's weight field in the span of the data (docs/physics.md "Continuum").

The force on the first weight field is

    δC/δw^(0)(x, y) = (1/L) Σ_l δ^(1),l(x) X^l(y)            (rank ≤ L)

whatever the depth, the activations or the training rule (full batch, mini-batches, with
or without momentum): the input layer's activities are the data, and they do not move.
So the input weight field stays in an affine space of rank ``L`` in ``y``,

    w^(0)(t, x, y) = w^(0)(0, x, y) + Σ_l a_l(t, x) X^l(y),

and only the ``L`` coefficient fields ``a_l`` (in the FE space ``V_1`` of the first hidden or
output layer) evolve.  The initial field and the data keep their exact dependence on ``y``,
and the input domain needs no mesh: ``∫ dy`` enters only through the Gram matrix and the
moments of the initial field,

    G_kl = ∫ X^k(y) X^l(y) dy,       z_0^l(x) = ∫ w^(0)(0, x, y) X^l(y) dy,

computed once with a Gauss–Legendre rule refined until they converge to rounding error.
In the product-space language of :mod:`continuum.fields.galerkin`, :class:`DataSpan` is the input
factor space ``span{X^l}``: its mass matrix is ``G``, the moments of the data against it
are ``η^(0) = G`` and their Riesz image is the identity, so the Galerkin gradient of ``a``
is ``(1/L) M_1⁻¹ d^(1)`` — the L2 projection of the exact force's coefficients.  For a
linear layer this is the structure ``w(t) − w(0)`` of rank ``≤ L``; the unknowns drop from
``n_1 × n_0`` to ``n_1 × L``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable

import numpy as np

from continuum.io import layout

INPUT_LAYERS = ("tensor", "data-span")
"""The representations of the input layer's field (``[continuum] input_layer``): in ``V_1 ⊗ V_0``
(:mod:`continuum.fields.galerkin`), or in the span of the data (:class:`DataSpan`); the
configuration reads them from here, so scipy is imported where it is used."""

Array = np.ndarray
DataFunction = Callable[[Array, Array], Array]  # (points (n, d), samples (L,)) -> (n, L)
InitialField = Callable[[Array, Array], Array]  # (x (n_x, d_x), y (n_y, d_y)) -> (n_x, n_y)


@functools.cache
def _legendre(points: int) -> tuple[Array, Array]:
    return np.polynomial.legendre.leggauss(points)


def gauss_rule(dim: int, points: int) -> tuple[Array, Array]:
    """Gauss–Legendre rule on ``[0, 1]^dim`` (``dim`` = 1 or 2, tensor product in 2-D, first
    coordinate fastest) with ``points`` nodes per direction: points ``(n, dim)``, weights."""
    nodes, weights = _legendre(points)
    x, w = (nodes + 1.0) / 2.0, weights / 2.0
    if dim == 1:
        return x[:, None], w
    return np.column_stack([np.tile(x, points), np.repeat(x, points)]), np.tile(
        w, points
    ) * np.repeat(w, points)


def converged_rule(
    dim: int, integrals: Callable[[Array, Array], Array], tol: float = 1e-13, most: int = 256
) -> tuple[Array, Array, Array]:
    """The Gauss rule of 8, 16, … points per direction whose ``integrals(points, weights)``
    agree with those of the next finer rule to ``tol`` relative (max norm): the difference
    bounds its error.  Returns its points, weights and integrals."""
    coarse = None
    points = 8
    while points <= most:
        rule = gauss_rule(dim, points)
        values = integrals(*rule)
        if coarse is not None:
            scale = max(1.0, float(np.abs(values).max()))
            if float(np.abs(values - coarse[2]).max()) <= tol * scale:
                return coarse
        coarse = (*rule, values)
        points *= 2
    raise ValueError(
        f"[continuum] input_layer = 'data-span': the integrals of the input data and the "
        f"initial input weights over y do not converge with {most} Gauss points per direction "
        f"(to {tol:g} relative); use input_layer = 'tensor'"
    )


class DataSpan:
    """The input factor space ``span{X^l}``, with the initial input weight field as offset.

    ``x_q`` are the quadrature points of the next layer's FE space, where the pre-activation
    offset ``z_0^l(x_q)`` is needed (:attr:`initial_moments`, shape ``(len(x_q), L)``).
    """

    def __init__(
        self, inputs: DataFunction, samples: int, initial: InitialField, dim: int, x_q: Array
    ):
        self.size = samples
        every = np.arange(samples)
        self._inputs = inputs
        self._initial = initial

        weighted: dict[int, Array] = {}  # ω_q X^l(y_q) of every rule tried, by its size

        def integrals(y: Array, w: Array) -> Array:
            """``G`` (L × L) and ``z_0`` at ``x_q`` (n × L), stacked."""
            values = inputs(y, every)
            basis = weighted[len(w)] = w[:, None] * values
            return np.vstack([values.T @ basis, initial(x_q, y) @ basis])

        self.quadrature_points, self.quadrature_weights, values = converged_rule(dim, integrals)
        self._weighted_basis = weighted[len(self.quadrature_weights)]
        self.mass, self.initial_moments = values[:samples], values[samples:]
        import scipy.linalg

        try:
            self._cholesky = scipy.linalg.cho_factor(self.mass)
        except scipy.linalg.LinAlgError:
            raise ValueError(
                "[continuum] input_layer = 'data-span': the input data X^l are linearly "
                "dependent (their Gram matrix is singular); use input_layer = 'tensor'"
            ) from None

    def at_points(self, x_q: Array) -> DataSpan:
        """The same span, Gram matrix and converged ``y`` rule with the initial moments
        ``z_0^l`` at other points ``x_q`` of the next layer (another Gauss rule on the same
        cells: the ``y`` integrand ``w^(0)(0, x, y) X^l(y)`` is the same smooth family)."""
        span = copy.copy(self)
        span.initial_moments = self._initial(x_q, self.quadrature_points) @ self._weighted_basis
        return span

    def load(self, values_q: Array) -> Array:
        """``∫ f X^k dy`` for ``f`` given at the quadrature points (columns)."""
        return self._weighted_basis.T @ values_q

    def solve_mass(self, rhs: Array) -> Array:
        """``G⁻¹ rhs``."""
        import scipy.linalg

        return scipy.linalg.cho_solve(self._cholesky, rhs)

    def evaluation_matrix(self, points: Array) -> Array:
        """``E_jk = X^k(y_j)`` at points ``y`` of shape ``(N, d)``."""
        return self._inputs(np.asarray(points, dtype=float), np.arange(self.size))

    def initial_field(self, x: Array, y: Array) -> Array:
        """``w^(0)(0, x_i, y_j)``, shape ``(len(x), len(y))``."""
        return self._initial(x, y)

    def static(self, prefix: str) -> dict[str, Array]:
        """What the output records of this factor: the Gram matrix."""
        return {layout.gram(prefix): self.mass}
