"""Training rules as dynamical systems in a continuous time ``t``.

docs/physics.md "Discrete network and cost".  All rules share one time variable, the per-parameter
rates ``η_θ`` from the dictionary (:class:`~discrete.dictionary.ScalingDictionary`) and a time step
``h``:

* ``flow``:      θ̇ = −η_θ ∂C/∂θ, integrated by classical RK4 (global error O(h⁴));
* ``gd``:        θ_{k+1} = θ_k − h η_θ ∂C/∂θ (forward Euler of the flow; a plain learning
  rate ε is ``η = 1``, ``h = ε``);
* ``sgd``:       the same step with the cost of a seeded minibatch ``l(t)``: the data are
  a source that changes at every step, ``C(t) = (1/B) Σ_{l ∈ batch(t)} ℓ(Z^l, Y^l)``;
* ``momentum``:  θ̈ + γ θ̇ + η_θ ∂C/∂θ = 0, the Euler–Lagrange equation of
  ``S = ∫ dt e^{γt} [½ Σ M_θ θ̇² − C]`` with masses ``M_θ = 1/η_θ``.  Two schemes:
  ``heavy-ball`` (default) is the familiar momentum method

      v_{k+1} = μ v_k − ε η_θ ∂C/∂θ(θ_k),     θ_{k+1} = θ_k + v_{k+1},

  with the central-friction reading ``μ = (1 − γh/2)/(1 + γh/2)``, ``ε = h²/(1 + γh/2)``
  (``momentum_form = "central"``, the default: second order at every γ), or the one-sided
  ``ε = h²`` with ``μ = e^{−γh}`` (``"exp"``) or ``1 − γh`` (``"linear"``): first order for
  ``γ > 0``.  The velocity ``v/h`` is the staggered ``(θ_k − θ_{k−1})/h`` at ``t_k − h/2``, so a
  run from rest starts consistently from ``θ_{−1} = θ_0 + ½h² θ̈_0`` (``v_0 = −½h² θ̈_0``;
  docs/physics.md, "Training rules"): with ``v_0 = 0`` the scheme would be first order even
  at ``γ = 0``.  At ``γ = 0`` it is Störmer–Verlet (second order, symplectic).  ``rk4``
  integrates the first-order system (θ, θ̇) with RK4.  As ``γ → ∞`` the dynamics approach the
  flow with rate ``η_θ/γ``.  On a sample schedule the heavy ball's force is that of the
  step's batch (momentum SGD); the starting velocity is the full batch's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .allocator import retain_freed_memory
from .errors import check_growth, reference_size

Array = np.ndarray

MOMENTUM_SCHEMES = ("heavy-ball", "rk4")
MOMENTUM_FORMS = ("central", "exp", "linear")


def heavy_ball_coefficients(gamma: float, h: float, form: str) -> tuple[float, float]:
    """``(μ, ε)`` of the heavy-ball iteration ``v ← μv + ε F(θ)``, ``θ ← θ + v`` for the
    damped dynamics ``θ̈ + γθ̇ = F(θ)`` at step ``h`` (docs/physics.md, "Training rules")."""
    if form == "central":
        return (1.0 - 0.5 * gamma * h) / (1.0 + 0.5 * gamma * h), h * h / (1.0 + 0.5 * gamma * h)
    if form == "exp":
        return float(np.exp(-gamma * h)), h * h
    if form == "linear":
        return 1.0 - gamma * h, h * h
    raise ValueError(f"momentum_form must be one of {MOMENTUM_FORMS}, got {form!r}")


SAMPLINGS = ("epochs", "replacement")


def sample_schedule(
    samples: int, batch: int, steps: int, seed: int, sampling: str = "epochs"
) -> Array:
    """Seeded minibatch indices for every step, shape ``(steps, batch)``.

    ``epochs``: epochs of random permutations (``numpy.random.default_rng(seed)``) are
    concatenated and cut into consecutive batches, so every sample is seen once per epoch.
    ``replacement``: every index is an independent uniform draw from ``0 … L−1`` (i.i.d.
    batches, the law whose moments close, docs/physics.md "SGD fluctuations").
    """
    if not 1 <= batch <= samples:
        raise ValueError(f"batch must lie in 1 … {samples}, got {batch}")
    rng = np.random.default_rng(seed)
    if sampling == "replacement":
        return rng.integers(0, samples, size=(steps, batch))
    if sampling != "epochs":
        raise ValueError(f"unknown sampling {sampling!r}; choose one of {SAMPLINGS}")
    need = steps * batch
    epochs = -(-need // samples)
    order = np.concatenate([rng.permutation(samples) for _ in range(epochs)])
    return order[:need].reshape(steps, batch)


@dataclass
class State:
    """Time, step counter, parameters θ and (second-order rules) velocity θ̇."""

    t: float
    step: int
    theta: Array
    velocity: Array | None = None

    def copy(self) -> State:
        v = None if self.velocity is None else self.velocity.copy()
        return State(self.t, self.step, self.theta.copy(), v)


class GradientCost(Protocol):
    """A cost ``C(θ)`` with its gradient ``g(θ)`` (:class:`discrete.cost.Cost`, Galerkin)."""

    def gradient(self, theta: Array, samples: Array | None = None) -> tuple[float, Array]: ...

    def value(self, theta: Array, samples: Array | None = None) -> float: ...


NEXT_STEP = "next_step"
"""The name an adaptive rule carries its next trial step under (:meth:`Rule.carried`)."""


class Rule(ABC):
    """A training rule: advances a :class:`State` by one step of size ``h``."""

    second_order = False

    def __init__(self, cost: GradientCost, rates: Array, h: float):
        self.cost, self.rates, self.h = cost, rates, float(h)
        retain_freed_memory()  # a step's temporaries reuse pages instead of faulting them in

    def force(self, theta: Array, samples: Array | None = None) -> Array:
        """``−η_θ ∂C/∂θ``."""
        return -self.rates * self.cost.gradient(theta, samples)[1]

    @abstractmethod
    def step(self, state: State) -> State:
        """The state one step of size ``h`` later."""

    def advance(self, state: State, steps: int) -> Iterator[State]:
        """The state after each of the next ``steps`` steps (a rule with a closed form may
        leap over the intermediate ones)."""
        for _ in range(steps):
            state = self.step(state)
            yield state

    def initial(self, theta: Array) -> State:
        return State(0.0, 0, theta.copy(), np.zeros_like(theta) if self.second_order else None)

    def carried(self) -> dict[str, float]:
        """What the rule carries from one output step to the next beside the state, which a
        run resumed there needs to take the uninterrupted run's steps: nothing for a fixed
        step; an adaptive rule's next trial step."""
        return {}

    def carry(self, values: dict[str, float]) -> None:
        """Continue with numbers saved from :meth:`carried` (a fixed step carries none)."""
        if values:
            raise ValueError(f"{type(self).__name__} carries nothing, given {sorted(values)}")


class Flow(Rule):
    """Gradient flow by classical RK4."""

    def step(self, state: State) -> State:
        h, f, th = self.h, self.force, state.theta
        k1 = f(th)
        k2 = f(th + 0.5 * h * k1)
        k3 = f(th + 0.5 * h * k2)
        k4 = f(th + h * k3)
        return State((state.step + 1) * h, state.step + 1, th + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4))


class GradientDescent(Rule):
    """Forward Euler of the flow, full batch or on a seeded sample schedule (SGD)."""

    def __init__(self, cost: GradientCost, rates: Array, h: float, schedule: Array | None = None):
        super().__init__(cost, rates, h)
        self.schedule = schedule

    def samples(self, step: int) -> Array | None:
        return None if self.schedule is None else self.schedule[step]

    def step(self, state: State) -> State:
        theta = state.theta + self.h * self.force(state.theta, self.samples(state.step))
        return State((state.step + 1) * self.h, state.step + 1, theta)


class Momentum(Rule):
    """Damped second-order dynamics θ̈ + γθ̇ + η_θ ∂C/∂θ = 0 (heavy-ball or RK4)."""

    second_order = True

    def __init__(
        self,
        cost: GradientCost,
        rates: Array,
        h: float,
        gamma: float,
        scheme: str = "heavy-ball",
        form: str = "central",
        schedule: Array | None = None,
    ):
        super().__init__(cost, rates, h)
        if schedule is not None and scheme != "heavy-ball":
            raise ValueError("momentum SGD (a sample schedule) is the heavy-ball scheme's")
        self.schedule = schedule
        if scheme not in MOMENTUM_SCHEMES:
            raise ValueError(f"momentum scheme must be one of {MOMENTUM_SCHEMES}, got {scheme!r}")
        self.gamma, self.scheme = float(gamma), scheme
        self.mu, self.epsilon = heavy_ball_coefficients(self.gamma, self.h, form)

    def initial(self, theta: Array) -> State:
        """At rest at ``θ₀``.  For the heavy ball the stored velocity is the staggered one at
        ``−h/2``: ``v_0/h = (θ_0 − θ_{−1})/h = −½h θ̈_0`` with ``θ̈_0 = F(θ_0)``."""
        state = super().initial(theta)
        if self.scheme == "heavy-ball":
            state.velocity = -0.5 * self.h * self.force(state.theta)
        return state

    def acceleration(self, theta: Array, velocity: Array) -> Array:
        return -self.gamma * velocity + self.force(theta)

    def step(self, state: State) -> State:
        h, th, v = self.h, state.theta, state.velocity
        assert v is not None, "a second-order state carries its velocity"
        if self.scheme == "heavy-ball":
            batch = None if self.schedule is None else self.schedule[state.step]
            vh = self.mu * h * v + self.epsilon * self.force(th, batch)
            return State((state.step + 1) * h, state.step + 1, th + vh, vh / h)
        a = self.acceleration
        k1x, k1v = v, a(th, v)
        k2x, k2v = v + 0.5 * h * k1v, a(th + 0.5 * h * k1x, v + 0.5 * h * k1v)
        k3x, k3v = v + 0.5 * h * k2v, a(th + 0.5 * h * k2x, v + 0.5 * h * k2v)
        k4x, k4v = v + h * k3v, a(th + h * k3x, v + h * k3v)
        return State(
            (state.step + 1) * h,
            state.step + 1,
            th + h / 6 * (k1x + 2 * k2x + 2 * k3x + k4x),
            v + h / 6 * (k1v + 2 * k2v + 2 * k3v + k4v),
        )


def _sgd(cost: GradientCost, rates: Array, h: float, schedule: Array | None, **_) -> Rule:
    if schedule is None:
        raise ValueError("rule 'sgd' needs a sample schedule")
    return GradientDescent(cost, rates, h, schedule)


_RULES: dict[str, Callable[..., Rule]] = {
    "flow": lambda cost, rates, h, **_: Flow(cost, rates, h),
    "gd": lambda cost, rates, h, **_: GradientDescent(cost, rates, h),
    "sgd": _sgd,
    "momentum": lambda cost, rates, h, gamma, scheme, form, schedule=None, **_: Momentum(
        cost, rates, h, gamma, scheme, form, schedule
    ),
}
"""Every training rule by its ``[training] rule`` name: ``(cost, rates, h, *, gamma,
schedule, scheme, form) -> Rule``.  A new rule is one :class:`Rule` subclass and one line."""


def make_rule(
    name: str,
    cost: GradientCost,
    rates: Array,
    h: float,
    *,
    gamma: float = 0.0,
    schedule: Array | None = None,
    scheme: str = "heavy-ball",
    form: str = "central",
) -> Rule:
    """The rule called ``name`` (one of :data:`RULES`)."""
    if name not in _RULES:
        raise ValueError(f"unknown training rule {name!r}; choose one of {RULES}")
    return _RULES[name](cost, rates, h, gamma=gamma, schedule=schedule, scheme=scheme, form=form)


RULES = tuple(_RULES)


def integrate(
    rule: Rule,
    state: State,
    steps: int,
    every: int = 1,
    on_output: Callable[[State], None] | None = None,
    reference: float | None = None,
) -> Iterator[State]:
    """Advance ``state`` to step ``steps``; yield it (a copy) at every ``every``-th step.

    The starting state is yielded first when its step is a multiple of ``every``.  A θ
    that becomes non-finite or grows beyond ``GROWTH · reference`` (default: the starting
    size ``max(‖θ‖∞, 1)``; a resumed run passes that of its initial θ₀) raises
    :class:`~discrete.errors.DivergenceError` naming the step.
    """
    reference = reference_size(state.theta) if reference is None else reference
    if state.step % every == 0:
        yield state.copy()
    while state.step < steps:
        state = rule.step(state)
        check_growth("training", state.theta, reference, state.step, state.t, "reduce dt or lr")
        if state.step % every == 0 or state.step == steps:
            yield state.copy()


@dataclass
class Trajectory:
    """Recorded states: times ``(nt,)``, parameters ``(nt, P)``, velocities, costs."""

    times: Array
    thetas: Array
    velocities: Array | None
    costs: Array


def run(rule: Rule, theta0: Array, steps: int, every: int = 1) -> Trajectory:
    """Integrate from rest at ``θ₀`` and record every ``every`` steps (in memory)."""
    states = list(integrate(rule, rule.initial(theta0), steps, every))
    vel = None
    if rule.second_order:
        vel = np.array([s.velocity for s in states])
    return Trajectory(
        np.array([s.t for s in states]),
        np.array([s.theta for s in states]),
        vel,
        np.array([rule.cost.value(s.theta) for s in states]),
    )
