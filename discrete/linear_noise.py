"""The linear-noise approximation of SGD and of momentum SGD, its covariance kept factored.

docs/physics.md "SGD fluctuations" ("The linear-noise approximation, factored").
With i.i.d. batches of ``B`` of the ``L`` samples the batch gradient is the full one plus a
zero-mean noise, ``ĝ_β(θ) = ḡ(θ) + ξ``, ``Cov ξ = Σ(θ)/B``,

    Σ(θ) = (1/L) Σ_l (g_l − ḡ)(g_l − ḡ)ᵀ        (rank ≤ L − 1),

``g_l`` the gradient of sample ``l``'s cost (the Riesz representative in the continuum).
Around the mean trajectory ``s̄`` (the full-batch rule, the law's mean to ``O(h)``) the
fluctuation ``δs`` of the state follows the rule linearised in ``θ``:

* ``sgd`` (``s = θ``):  ``δθ ← (I − h D J) δθ − h D ξ``;
* ``momentum``, heavy ball (``s = (θ, u)``, ``u = h v`` the step, ``v`` the stored velocity):
  ``δu ← μ δu − ε D J δθ − ε D ξ``, ``δθ ← δθ + δu`` (the same ``ξ`` in both rows),

with ``D = diag(η)`` the rates and ``J = ∂ḡ/∂θ`` at ``θ̄`` (the Hessian of ``C``, times
``M⁻¹`` in the continuum).  The covariance ``Q = Cov δs`` is kept as a factor ``Q = F Fᵀ``:
each step maps ``F ← [A F, S]`` with ``S = (c/√(BL)) D (G − ḡ1ᵀ)`` (``c = h`` or ``ε``, one
block per row of ``s`` that ``ξ`` enters), ``G`` the ``L`` per-sample gradients, so that
``S Sᵀ = c² D Σ D / B``; the rank grows by at most ``L`` and is cut back by an
eigendecomposition of the small ``FᵀF``, dropping directions whose variance is below
``tolerance²`` times the largest.
Nothing of size ``P²`` is formed: a step costs ``L`` gradients for ``G`` and two per column
of ``F`` for ``J F`` (central differences of the gradient, relative step ``STEP``:
truncation ``O(STEP²)``, rounding ``O(10⁻¹⁶/STEP)``).

Temperatures of a group of parameters (a layer) ``m``, summed over its modes:

    T_pot,m = ⟨δθ_m · (H δθ)_m⟩,        T_kin,m = ⟨δv_m · M δv_m / η⟩,

``H = M J`` the Hessian and ``M`` the mass (the identity for a discrete network, the FE mass
``M_{m+1} ⊗ M_m`` in the continuum).  At a stationary state of the damped dynamics
``T_kin,m = T_pot,m`` for every layer (generalised equipartition, docs/physics.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from .training import heavy_ball_coefficients

Array = np.ndarray

STEP = 1e-5
"""Relative step of the central differences ``J f ≈ (g(θ̄ + s f) − g(θ̄ − s f)) / 2s``."""


class Gradients(Protocol):
    """A cost with ``gradient(θ, samples) -> (C, g)`` (:class:`discrete.cost.Cost`, or the
    Galerkin fields of the continuum)."""

    def gradient(self, theta: Array, samples: Array | None = None) -> tuple[float, Array]: ...


def compress(F: Array, tolerance: float) -> Array:
    """``F' = F V_k``, ``V`` the eigenvectors of the small Gram matrix ``FᵀF``, keeping the
    columns whose squared norm (the variance along them) exceeds ``tolerance²`` times the
    largest: ``F V Vᵀ Fᵀ = F Fᵀ`` exactly, so the covariance loses only the dropped
    columns' ``‖F v‖²``."""
    if F.shape[1] == 0:
        return F
    _, V = np.linalg.eigh(F.T @ F)
    rotated = F @ V
    weight = np.einsum("ik,ik->k", rotated, rotated)
    return rotated[:, weight > tolerance**2 * weight.max()] if weight.max() > 0 else F[:, :0]


class FactoredLinearNoise:
    """Mean and factored covariance of SGD (``momentum = None``) or of the stochastic heavy
    ball (``momentum = (γ, form)``) in the linear-noise approximation.

    ``groups`` are the slices of θ of every layer; ``mass`` maps a block of columns of θ-vectors
    ``(P, k)`` to their images under ``M`` (the identity for a discrete network)."""

    def __init__(
        self,
        cost: Gradients,
        rates: Array,
        h: float,
        batch: int,
        samples: int,
        theta0: Array,
        groups: list[slice],
        mass: Callable[[Array], Array] | None = None,
        momentum: tuple[float, str] | None = None,
        tolerance: float = 1e-7,
    ):
        self.cost, self.rates, self.h = cost, np.asarray(rates, dtype=float), float(h)
        self.batch, self.samples, self.groups = int(batch), int(samples), groups
        self.mass = mass if mass is not None else (lambda block: block)
        self.tolerance = tolerance
        self.theta = np.array(theta0, dtype=float)
        P = len(self.theta)
        self.momentum = momentum is not None
        if momentum is not None:
            gamma, form = momentum
            self.mu, self.epsilon = heavy_ball_coefficients(gamma, self.h, form)
            # from rest, with the staggered step u_0 = h v_0 = −½h² F(θ_0) = ½h² η ḡ(θ_0)
            self.step_mean = 0.5 * self.h**2 * self.rates * self.full_gradient(self.theta)
        self.factor = np.zeros((2 * P if self.momentum else P, 0))
        self.steps = 0

    @property
    def t(self) -> float:
        return self.steps * self.h

    @property
    def rank(self) -> int:
        return self.factor.shape[1]

    def full_gradient(self, theta: Array) -> Array:
        return self.cost.gradient(theta)[1]

    def sample_gradients(self, theta: Array) -> Array:
        """``G``: the gradient of every sample's cost as a column, ``(P, L)``."""
        return np.column_stack(
            [self.cost.gradient(theta, np.array([l]))[1] for l in range(self.samples)]
        )

    def jacobian_times(self, block: Array) -> Array:
        """``J F`` at the mean for the columns of ``block`` (central differences)."""
        out = np.empty_like(block)
        size = max(1.0, float(np.abs(self.theta).max()))
        for k in range(block.shape[1]):
            f = block[:, k]
            norm = float(np.abs(f).max())
            if norm == 0.0:
                out[:, k] = 0.0
                continue
            s = STEP * size / norm
            plus = self.full_gradient(self.theta + s * f)
            minus = self.full_gradient(self.theta - s * f)
            out[:, k] = (plus - minus) / (2 * s)
        return out

    def step(self) -> None:
        """One step of the mean (the full-batch rule) and of the factor."""
        P = len(self.theta)
        G = self.sample_gradients(self.theta)
        mean_gradient = G.mean(axis=1)
        eta = self.rates[:, None]
        noise = eta * (G - mean_gradient[:, None]) / np.sqrt(self.batch * self.samples)
        F = self.factor
        if not self.momentum:
            mapped = F - self.h * eta * self.jacobian_times(F)
            self.factor = compress(np.hstack([mapped, self.h * noise]), self.tolerance)
            self.theta = self.theta - self.h * self.rates * mean_gradient
        else:
            ft, fu = F[:P], F[P:]
            fu = self.mu * fu - self.epsilon * eta * self.jacobian_times(ft)
            source = self.epsilon * noise
            mapped = np.vstack([np.hstack([ft + fu, source]), np.hstack([fu, source])])
            self.factor = compress(mapped, self.tolerance)
            self.step_mean = self.mu * self.step_mean - self.epsilon * self.rates * mean_gradient
            self.theta = self.theta + self.step_mean
        self.steps += 1

    @property
    def velocity(self) -> Array:
        """The mean velocity ``v̄ = ū/h`` (the heavy ball's stored, staggered one)."""
        return self.step_mean / self.h

    @property
    def theta_factor(self) -> Array:
        """``F_θ`` with ``Cov δθ = F_θ F_θᵀ``."""
        return self.factor[: len(self.theta)]

    @property
    def velocity_factor(self) -> Array:
        """``F_v`` with ``Cov δv = F_v F_vᵀ`` (momentum)."""
        return self.factor[len(self.theta) :] / self.h

    def variances(self) -> Array:
        """``Var θ_i`` of every parameter."""
        return np.einsum("ik,ik->i", self.theta_factor, self.theta_factor)

    def velocity_variances(self) -> Array:
        return np.einsum("ik,ik->i", self.velocity_factor, self.velocity_factor)

    def potential_temperatures(self) -> Array:
        """``T_pot,m = ⟨δθ_m · (H δθ)_m⟩`` of every group (``H = M J``)."""
        ft = self.theta_factor
        hf = self.mass(self.jacobian_times(ft))
        return np.array([float(np.sum(ft[g] * hf[g])) for g in self.groups])

    def kinetic_temperatures(self) -> Array:
        """``T_kin,m = ⟨δv_m · M δv_m / η⟩`` of every group (momentum)."""
        fv = self.velocity_factor
        mf = self.mass(fv) / self.rates[:, None]
        return np.array([float(np.sum(fv[g] * mf[g])) for g in self.groups])


def layer_group(weights: slice, biases: slice) -> slice:
    """One layer's parameters, its weights followed by its biases (contiguous in θ)."""
    return slice(weights.start, biases.stop)


def discrete_linear_noise(setup) -> FactoredLinearNoise:
    """The linear-noise law of a discrete run (``sgd``, or ``momentum`` with the heavy ball)
    on i.i.d. batches: its own cost, rates, step and batch, from ``θ₀``."""
    tr, params = setup.config.training, setup.network.params
    groups = [layer_group(*params.layer_slices(m)) for m in range(setup.network.depth)]
    return FactoredLinearNoise(
        setup.cost,
        setup.dictionary.rates(),
        setup.dt,
        tr.batch,
        setup.data.samples,
        setup.theta0,
        groups,
        momentum=(tr.gamma, tr.momentum_form) if tr.rule == "momentum" else None,
    )


def field_variances(setup, variances: Array) -> tuple[list[Array], list[Array]]:
    """Per-parameter variances as those of the field-normalised ``w = W/Δy`` and ``b``."""
    net, conv = setup.network, setup.convention
    w = [net.params.W(variances, m) / conv.input_measure(net, m) ** 2 for m in range(net.depth)]
    return w, [net.params.b(variances, m) for m in range(net.depth)]
