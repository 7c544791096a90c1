"""Linear stability of the explicit training rules, refused before a run that must blow up.

On a cost with a constant Hessian ``H`` (a one-layer network with a linear output: the
probe data sets, the linear perceptron) every rule of :mod:`discrete.training` acts on each
eigenmode of the rate-weighted Hessian ``ηH`` (eigenvalue ``λ ≥ 0``) as a fixed linear map
of one step ``h``; its spectral radius ``ρ(hλ)`` is the growth per step
(docs/parallel-and-output.md, "Divergence"):

* ``flow`` (RK4):        ``ρ = |R(−hλ)|``, ``R(z) = 1 + z + z²/2 + z³/6 + z⁴/24``;
* ``gd`` (forward Euler): ``ρ = |1 − hλ|``;
* ``momentum``, heavy-ball: the eigenvalues of ``[[1 − h²λ, μ], [−h²λ, μ]]`` acting on
  ``(θ, h θ̇)``, ``μ = e^{−γh}`` or ``1 − γh``;
* ``momentum``, RK4: ``R(hA)`` with ``A = [[0, 1], [−λ, −γ]]``.

The largest ``λ`` is estimated by power iteration on ``D^½ H D^½`` (``D = diag η``): its
Rayleigh quotient never exceeds the largest eigenvalue, so a run found unstable at the
estimate is unstable (the refusal cannot be wrong; a step just inside the bound may still be
refused by nothing and is left to the run's divergence check).  ``sgd`` is not checked: its
minibatch Hessians are not the full-batch one.
"""

from __future__ import annotations

import numpy as np

from .experiment import DiscreteSetup
from .training import Flow, Momentum, Rule, heavy_ball_coefficients

Array = np.ndarray

POWER_ITERATIONS = 200
GRID = 64  # eigenvalues in [0, λ_max] at which the growth is evaluated


def _taylor4(z: Array | float) -> Array | float:
    """``Σ_{k≤4} z^k / k!`` for a scalar or a square matrix ``z``."""
    if isinstance(z, float) or np.ndim(z) == 0:
        return 1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24
    eye = np.eye(len(z))
    z2 = z @ z
    return eye + z + z2 / 2 + z2 @ z / 6 + z2 @ z2 / 24


def growth(rule: Rule, h: float, lam: float, form: str = "central") -> float:
    """Spectral radius of one step of size ``h`` of ``rule`` on a mode of ``ηH``-eigenvalue
    ``lam`` (the rule's own ``h`` is not used: this is a function of the step); ``form`` is
    the heavy-ball damping factor's (``[training] momentum_form``)."""
    if isinstance(rule, Momentum):
        if rule.scheme == "rk4":
            step = _taylor4(h * np.array([[0.0, 1.0], [-lam, -rule.gamma]]))
        else:
            mu, epsilon = heavy_ball_coefficients(rule.gamma, h, form)
            eps = epsilon * lam
            step = np.array([[1.0 - eps, mu], [-eps, mu]])
        return float(np.max(np.abs(np.linalg.eigvals(step))))
    if isinstance(rule, Flow):
        return float(np.abs(_taylor4(-h * lam)))
    return float(abs(1.0 - h * lam))


def largest_eigenvalue(rule: Rule, size: int, seed: int) -> float:
    """The largest eigenvalue of ``ηH`` (a lower estimate: power iteration on the symmetric
    ``D^½ H D^½``, with ``Hv = ∇C(v) − ∇C(0)``, exact for a quadratic cost)."""
    root = np.sqrt(rule.rates)
    zero = rule.force(np.zeros(size))

    def apply(u: Array) -> Array:  # D^½ H D^½ u = −D^{-½} (force(D^½ u) − force(0))
        return -(rule.force(root * u) - zero) / root

    u = np.random.default_rng(seed).standard_normal(size)
    u /= np.linalg.norm(u)
    lam = 0.0
    for _ in range(POWER_ITERATIONS):
        v = apply(u)
        lam_new = float(u @ v)
        norm = np.linalg.norm(v)
        if norm == 0.0:
            return 0.0
        u = v / norm
        if abs(lam_new - lam) <= 1e-10 * abs(lam_new):
            return lam_new
        lam = lam_new
    return lam


def max_growth(rule: Rule, h: float, lam_max: float, form: str = "central") -> float:
    """The largest growth per step over the modes ``λ ∈ [0, lam_max]``."""
    return max(growth(rule, h, lam, form) for lam in np.linspace(0.0, lam_max, GRID + 1))


def stable_step(rule: Rule, lam_max: float, h: float, form: str = "central") -> float:
    """The largest step ``≤ h`` with growth at most 1 on ``[0, lam_max]`` (bisection)."""
    lo, hi = 0.0, h
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        stable = max_growth(rule, mid, lam_max, form) <= 1.0 + 1e-12
        lo, hi = (mid, hi) if stable else (lo, mid)
    return lo


def quadratic_cost(setup: DiscreteSetup) -> bool:
    """A one-layer network whose output is linear in θ has a constant Hessian."""
    net = setup.network
    linear = net.output == "identity" or net.activation.name == "linear"
    return net.depth == 1 and linear and setup.config.network.loss == "mse"


def refuse_unstable_step(setup: DiscreteSetup) -> None:
    """Raise ``ValueError`` naming ``[training] dt`` when the explicit rule must diverge."""
    tr = setup.config.training
    if tr.rule == "sgd" or not quadratic_cost(setup):
        return
    lam = largest_eigenvalue(setup.rule, setup.theta0.size, tr.seed)
    rate = max_growth(setup.rule, tr.dt, lam, tr.momentum_form)
    if rate <= 1.0 + 1e-12:
        return
    bound = stable_step(setup.rule, lam, tr.dt, tr.momentum_form)
    scheme = f" ({tr.scheme})" if tr.rule == "momentum" else ""
    raise ValueError(
        f"[training] dt = {tr.dt:g} is beyond the stability bound of rule {tr.rule!r}{scheme} "
        f"on this cost: its largest mode (ηH eigenvalue λ = {lam:.6g}) grows by "
        f"{rate:.4g} per step; choose dt below {bound:.4g}"
    )
