"""Linear stability of the explicit training rules: refused before a run that must blow up,
and stopped during a run whose step leaves the stability region.

Linearised at ``θ`` the force ``F = −η ∂C/∂θ`` is ``−ηH(θ)`` (``H`` the Hessian of the cost),
and every full-batch rule of :mod:`discrete.training` acts on each eigenmode of the
rate-weighted Hessian ``ηH`` (eigenvalue ``λ``) as a fixed linear map of one step ``h``;
its spectral radius ``ρ(hλ)`` is the growth per step (docs/parallel-and-output.md,
"Divergence"):

* ``flow`` (RK4):        ``ρ = |R(−hλ)|``, ``R(z) = 1 + z + z²/2 + z³/6 + z⁴/24``;
* ``gd`` (forward Euler): ``ρ = |1 − hλ|``;
* ``momentum``, heavy-ball: the eigenvalues of ``[[1 − ελ, μ], [−ελ, μ]]`` acting on
  ``(θ, h θ̇)`` (``μ, ε`` of :func:`~discrete.training.heavy_ball_coefficients`);
* ``momentum``, RK4: ``R(hA)`` with ``A = [[0, 1], [−λ, −γ]]``.

The modes with ``λ ∈ [0, λ_max]`` decay under the exact dynamics, so a growth above 1 there is
the scheme's, not the equation's (a mode with ``λ < 0`` grows under the exact flow too).
``ηH`` is similar to the symmetric ``A = D^½ H D^½`` (``D = diag η``), whose largest
eigenvalue ``λ_max`` the Rayleigh–Ritz estimate :func:`rayleigh_ritz` approaches from below,
from the products :class:`HessianProducts` (of the Hessian itself: the Gauss–Newton operator
``Jᵀℓ''J`` leaves out the term ``Σ ℓ'·∂²Z``, so its largest eigenvalue is neither a lower nor
an upper bound of ``H``'s, and a refusal on it could be wrong).  On a constant Hessian
(:func:`quadratic_cost`) one estimate at ``θ₀`` holds for the whole run; otherwise ``λ``
changes with ``θ`` (on the digits classifier it grows from 56 to 225) and
:class:`StabilityMonitor` estimates it again at every output step.  ``sgd`` (and momentum
SGD) is not checked: every step is the map of a different minibatch cost, whose Hessian is not
the full-batch one, and the full-batch ``λ`` neither bounds nor is bounded by the batch
Hessians' (a refusal could be wrong); its blow-up is caught by
:func:`discrete.errors.check_growth`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import DivergenceError
from .experiment import DiscreteSetup
from .training import Flow, Momentum, Rule, State, heavy_ball_coefficients

Array = np.ndarray

GRID = 64  # eigenvalues in [0, λ_max] at which the growth is evaluated
BASIS = 16  # Rayleigh–Ritz basis before a thick restart
KEEP = 4  # Ritz vectors kept at a restart
DIFFERENCE = 6e-6  # ≈ (machine ε)^⅓: the central difference's step relative to θ
START_PRODUCTS = (10, 80)  # fewest and most products of an estimate from a random vector
WARM_PRODUCTS = (2, 8)  # the same, warm-started from the previous estimate's Ritz vector
REFINE_PRODUCTS = 60  # more products to sharpen λ for the message of an unstable step
REFINE_TOLERANCE = 1e-9  # ‖r‖ ≤ tolerance · λ ends the sharpening


def _taylor4(z: Array) -> Array:
    """``Σ_{k≤4} z^k / k!`` elementwise."""
    return 1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24


def _taylor4_matrix(z: Array) -> Array:
    """``Σ_{k≤4} z^k / k!`` for a stack of square matrices ``z[..., :, :]``."""
    eye = np.eye(z.shape[-1])
    z2 = z @ z
    return eye + z + z2 / 2 + z2 @ z / 6 + z2 @ z2 / 24


def growth(rule: Rule, h: float, lam: Array | float, form: str = "central") -> Array:
    """Spectral radius of one step of size ``h`` of ``rule`` on modes of ``ηH``-eigenvalues
    ``lam`` (an array, or a scalar; the rule's own ``h`` is not used: this is a function of
    the step); ``form`` is the heavy-ball damping factor's (``[training] momentum_form``)."""
    lam = np.asarray(lam, dtype=float)
    if isinstance(rule, Momentum):
        step = np.zeros((*lam.shape, 2, 2))
        if rule.scheme == "rk4":
            step[..., 0, 1], step[..., 1, 0], step[..., 1, 1] = 1.0, -lam, -rule.gamma
            step = _taylor4_matrix(h * step)
        else:
            mu, epsilon = heavy_ball_coefficients(rule.gamma, h, form)
            step[..., 0, 0], step[..., 0, 1] = 1.0 - epsilon * lam, mu
            step[..., 1, 0], step[..., 1, 1] = -epsilon * lam, mu
        return np.max(np.abs(np.linalg.eigvals(step)), axis=-1)
    if isinstance(rule, Flow):
        return np.abs(_taylor4(-h * lam))
    return np.abs(1.0 - h * lam)


def max_growth(rule: Rule, h: float, lam_max: float, form: str = "central") -> float:
    """The largest growth per step over the modes ``λ ∈ [0, max(lam_max, 0)]``."""
    return float(np.max(growth(rule, h, np.linspace(0.0, max(lam_max, 0.0), GRID + 1), form)))


def stable(rule: Rule, h: float, lam_max: float, form: str = "central") -> bool:
    """Whether no mode ``λ ∈ [0, lam_max]`` grows under a step ``h`` (to rounding)."""
    return max_growth(rule, h, lam_max, form) <= 1.0 + 1e-12


def stable_step(rule: Rule, lam_max: float, h: float, form: str = "central") -> float:
    """The largest step ``≤ h`` with growth at most 1 on ``[0, lam_max]``: halvings of ``h``
    down to a stable step (the bound may lie many decades below ``h``), then bisection."""
    lo = h
    while lo > 0.0 and not stable(rule, lo, lam_max, form):
        lo *= 0.5
    if lo in (0.0, h):
        return lo
    hi = 2.0 * lo
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if stable(rule, mid, lam_max, form) else (lo, mid)
    return lo


class HessianProducts:
    """``u ↦ A u = D^½ H(θ) D^½ u`` (``D = diag η``) from two gradients of the cost::

        H v ≈ (∇C(θ + εv) − ∇C(θ − εv)) / 2ε,   ε‖v‖ = δ · max(‖θ‖∞, 1),  δ = DIFFERENCE,

    whose error is ``ε²/6 ∂³(∇C)[v, v] + O(ε_mach ‖∇C‖ / ε)``: relative ``O(δ²) ≈ 4e-11`` from
    the truncation and ``O(ε_mach/δ) ≈ 4e-11`` from rounding on a cost whose scale is that of
    ``θ`` (about 1e-10 against a dense Hessian, ``tests/test_stability.py``).  With ``affine``
    (a constant Hessian: the gradient is affine in θ) the one-sided
    ``(∇C(θ + εv) − ∇C(θ)) / ε`` is exact up to rounding at any ε; it is taken with
    ``ε‖v‖ = max(‖θ‖∞, 1)`` and ``∇C(θ)`` once, one gradient a product."""

    def __init__(self, rule: Rule, theta: Array, affine: bool = False):
        self.cost, self.root, self.theta = rule.cost, np.sqrt(rule.rates), theta
        self.scale = max(float(np.max(np.abs(theta), initial=0.0)), 1.0)
        self.at_theta = self._gradient(theta) if affine else None

    def _gradient(self, theta: Array) -> Array:
        return self.cost.gradient(theta)[1]

    def __call__(self, u: Array, step: float = 1.0) -> Array:
        """``A u`` with the difference ``step`` times the default (a second step measures the
        difference's error, :meth:`difference_error`)."""
        v = self.root * u
        size = float(np.linalg.norm(v))
        if size == 0.0:
            return np.zeros_like(u)
        if self.at_theta is not None:
            eps = step * self.scale / size
            return self.root * (self._gradient(self.theta + eps * v) - self.at_theta) / eps
        eps = step * DIFFERENCE * self.scale / size
        plus, minus = self._gradient(self.theta + eps * v), self._gradient(self.theta - eps * v)
        return self.root * (plus - minus) / (2 * eps)

    def difference_error(self, y: Array) -> float:
        """``|yᵀA₂y − yᵀAy|`` for a unit ``y``, ``A₂`` the product at twice the difference step:
        three times the Richardson estimate ``|yᵀA₂y − yᵀAy|/3`` of the error of ``yᵀAy`` (the
        truncation is ``O(ε²)``), and at least its rounding."""
        return abs(float(y @ self(y, 2.0)) - float(y @ self(y)))


@dataclass
class Sharpness:
    """An estimate of the largest eigenvalue of ``A = D^½ H D^½`` (that of ``ηH``).

    ``value`` is the largest Ritz value ``ϑ = yᵀAy`` on an orthonormal basis, so
    ``ϑ ≤ λ_max(A)`` (Cauchy interlacing) up to the error of the products; ``residual``
    ``‖Ay − ϑy‖`` puts an eigenvalue of ``A`` within it of ``ϑ`` (and, when the rest of the
    spectrum lies a gap ``δ`` below, ``λ_max − ϑ ≤ residual²/δ``); ``vector`` is the unit Ritz
    vector ``y`` (the start of the next estimate); ``products`` the products spent."""

    value: float
    residual: float
    vector: Array
    products: int


def rayleigh_ritz(
    apply: Callable[[Array], Array],
    start: Array,
    done: Callable[[float, float], bool],
    products: tuple[int, int],
) -> Sharpness:
    """The largest eigenvalue of the symmetric operator ``apply`` by Lanczos with full
    reorthogonalisation and thick restarts.

    The basis ``V`` grows by the residual ``r = Ay − ϑy`` of the top Ritz pair (in exact
    arithmetic the next Lanczos vector, the same for every Ritz pair of a Krylov space),
    orthogonalised twice against ``V``; the projection ``T = VᵀAV`` is kept from the stored
    products ``AV``; at :data:`BASIS` vectors the :data:`KEEP` top Ritz vectors are kept
    (thick restart: ``V ← VY``, ``AV ← AVY``, ``T ← diag ϑ``).  Convergence on the top of a
    clustered spectrum is that of Lanczos, ``O(1/k²)`` relative for a Laplacian's edge after
    ``k`` products where power iteration gives ``O(1/k)``.  Ends when ``done(ϑ, ‖r‖)``, after
    at least ``products[0]`` and at most ``products[1]`` products, or when the basis spans an
    invariant subspace (then ``ϑ`` is an eigenvalue).
    """
    fewest, most = products
    size = start.size
    rows = min(BASIS, most)
    V, AV = np.empty((rows, size)), np.empty((rows, size))
    T = np.zeros((rows, rows))
    k, count, q = 0, 0, start
    top, residual, vector = 0.0, 0.0, start / np.linalg.norm(start)
    while True:
        for _ in range(2):
            q = q - V[:k].T @ (V[:k] @ q)
        norm = float(np.linalg.norm(q))
        if norm == 0.0 or norm <= 1e-13 * abs(top):  # an invariant subspace: ϑ is exact
            return Sharpness(top, residual, vector, count)
        V[k] = q / norm
        AV[k] = apply(V[k])
        count += 1
        T[: k + 1, k] = T[k, : k + 1] = V[: k + 1] @ AV[k]
        k += 1
        values, vectors = np.linalg.eigh(T[:k, :k])
        y = vectors[:, -1]
        top, vector, image = float(values[-1]), y @ V[:k], y @ AV[:k]
        r = image - top * vector
        residual = float(np.linalg.norm(r))
        if count >= most or (count >= fewest and done(top, residual)):
            return Sharpness(top, residual, vector, count)
        if k == BASIS:
            Y = vectors[:, : -KEEP - 1 : -1]
            V[:KEEP], AV[:KEEP] = Y.T @ V[:k], Y.T @ AV[:k]
            T[:] = 0.0
            T[:KEEP, :KEEP] = np.diag(values[: -KEEP - 1 : -1])
            k = KEEP
        q = r


def sharpness(
    rule: Rule,
    theta: Array,
    *,
    affine: bool = False,
    seed: int = 0,
    tolerance: float = REFINE_TOLERANCE,
    products: tuple[int, int] = START_PRODUCTS,
) -> Sharpness:
    """The largest eigenvalue of ``ηH(θ)`` from a seeded random start, to ``‖r‖ ≤ tolerance·ϑ``
    (:func:`rayleigh_ritz` of :class:`HessianProducts`)."""
    start = np.random.default_rng(seed).standard_normal(theta.size)
    return rayleigh_ritz(
        HessianProducts(rule, theta, affine),
        start,
        lambda top, residual: residual <= tolerance * abs(top),
        products,
    )


def quadratic_cost(setup: DiscreteSetup) -> bool:
    """A one-layer network whose output is linear in θ has a constant Hessian."""
    net = setup.network
    linear = net.output == "identity" or net.activation.name == "linear"
    return net.depth == 1 and linear and setup.config.network.loss == "mse"


class StabilityMonitor:
    """``max_growth(rule, dt, λ(θ)) ≤ 1`` at ``θ₀`` and at every output step of a run.

    Each estimate iterates until it decides: unstable once the lower estimate ``ϑ`` has a growth
    above 1 (certain, but for the products' error, which is subtracted before a refusal:
    :meth:`HessianProducts.difference_error`), stable once ``ϑ + ‖r‖`` has none; an estimate
    out of products undecided counts as stable, and the next one continues from its Ritz
    vector.  Estimates along the run start from the previous Ritz vector and take
    :data:`WARM_PRODUCTS` products (two gradients each).  On a constant Hessian the estimate at
    ``θ₀`` holds everywhere and :attr:`tracks` is false.
    """

    def __init__(self, setup: DiscreteSetup):
        tr = setup.config.training
        self.rule, self.dt, self.form = setup.rule, tr.dt, tr.momentum_form
        self.name = repr(tr.rule) + (f" ({tr.momentum_scheme})" if tr.rule == "momentum" else "")
        self.affine = quadratic_cost(setup)
        self.tracks = not self.affine and tr.stability_check
        self.vector = np.random.default_rng(tr.seed).standard_normal(setup.theta0.size)
        self.step = -1  # the step of the last estimate
        self.value = 0.0  # its ϑ
        self.initial = 0.0  # ϑ at θ₀

    def _decided(self, top: float, residual: float) -> bool:
        unstable = not stable(self.rule, self.dt, top, self.form)
        return unstable or stable(self.rule, self.dt, top + residual, self.form)

    def estimate(self, theta: Array, products: tuple[int, int]) -> tuple[float, float] | None:
        """``None`` when the step is stable at ``θ``; else the certified lower estimate ``λ``
        (sharpened to :data:`REFINE_TOLERANCE`, less the products' error) and its growth per
        step, when that still exceeds 1."""
        apply = HessianProducts(self.rule, theta, self.affine)
        found = rayleigh_ritz(apply, self.vector, self._decided, products)
        self.vector, self.value = found.vector, found.value
        if stable(self.rule, self.dt, found.value, self.form):
            return None
        sharp = rayleigh_ritz(
            apply,
            found.vector,
            lambda top, residual: residual <= REFINE_TOLERANCE * abs(top),
            (1, REFINE_PRODUCTS),
        )
        lam = sharp.value - apply.difference_error(sharp.vector)
        rate = max_growth(self.rule, self.dt, lam, self.form)
        return (lam, rate) if rate > 1.0 + 1e-12 else None

    def _advice(self, lam: float) -> str:
        return f"choose dt below {stable_step(self.rule, lam, self.dt, self.form):.4g}"

    def refuse(self, theta0: Array) -> None:
        """Raise ``ValueError`` naming ``[training] dt`` when the rule must diverge from θ₀."""
        self.step = 0
        found = self.estimate(theta0, START_PRODUCTS)
        self.initial = self.value
        if found is None:
            return
        lam, rate = found
        where = "on this cost" if self.affine else "on this cost at the initial parameters θ₀"
        raise ValueError(
            f"[training] dt = {self.dt:g} is beyond the stability bound of rule {self.name} "
            f"{where}: its largest mode (ηH eigenvalue λ = {lam:.6g}) grows by {rate:.4g} per "
            f"step; {self._advice(lam)}"
        )

    def check(self, state: State) -> None:
        """Raise :class:`~discrete.errors.DivergenceError` naming ``[training] dt``, the step,
        the time, ``λ`` and the stable step when the rule's step is unstable at ``state.θ``."""
        if state.step == self.step:
            return
        self.step = state.step
        found = self.estimate(state.theta, WARM_PRODUCTS)
        if found is None:
            return
        lam, rate = found
        raise DivergenceError(
            "training",
            state.step,
            state.t,
            f"[training] dt = {self.dt:g} is past the stability bound of rule {self.name} "
            f"here: the largest mode of the cost (ηH eigenvalue λ = {lam:.6g}, "
            f"{self.initial:.6g} at θ₀) grows by {rate:.4g} per step",
            f"{self._advice(lam)}; the output steps written before this one are intact",
        )


def refuse_unstable_step(setup: DiscreteSetup) -> StabilityMonitor | None:
    """Raise ``ValueError`` naming ``[training] dt`` when the explicit full-batch rule must
    diverge from θ₀; return the monitor whose :meth:`StabilityMonitor.check` the run calls at
    every output step (``None`` for a stochastic rule, a constant Hessian, or ``[training]
    stability_check = false``)."""
    if setup.schedule is not None:
        return None
    monitor = StabilityMonitor(setup)
    monitor.refuse(setup.theta0)
    return monitor if monitor.tracks else None
