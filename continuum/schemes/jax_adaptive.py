"""The full-batch gradient flow to a tolerance, compiled with JAX (``[continuum] scheme =
"jax-adaptive"``; docs/physics.md "Continuum", the compiled flow).

The flow of the field coefficients ``θ̇ = F(θ) = −η ⊙ δC/δθ`` is a smooth ODE whose right-hand
side does not depend on any network's width, so its time step is set by the accuracy asked
for, not by the training ``dt`` (the argument of :mod:`continuum.schemes.adaptive`, which
integrates it with PETSc TS and numpy).  Here the whole error-controlled integration between
two output times is one ``lax.while_loop`` compiled with the force of
:class:`~continuum.schemes.jax_flow.JaxFlow` (dense Galerkin fields) or of
:class:`~continuum.schemes.jax_depth_flow.JaxDepthFlow` (a residual network's depth
continuum): no Python between stages or steps.

The pair is Dormand and Prince's 8(5,3) (Hairer's DOP853; the coefficients are those of
SciPy's ``scipy.integrate.DOP853``): twelve stages ``k_i = F(θ + δ Σ_{j<i} a_ij k_j)``, the
order-8 step ``θ̂ = θ + δ Σ_i b_i k_i`` and ``k_13 = F(θ̂)``, which is the next
step's first stage.  With the scale ``s_i = τ + τ max(|θ_i|, |θ̂_i|)`` (``τ = [continuum]
tolerance``, absolute and relative alike, as :mod:`continuum.schemes.adaptive`) and the
embedded fifth- and third-order error vectors ``e⁵ = Σ_i E⁵_i k_i``, ``e³ = Σ_i E³_i k_i``, the
error of a step is Hairer's combination in the max norm,

    err = δ ‖e⁵/s‖²_∞ / (‖e⁵/s‖²_∞ + 0.01 ‖e³/s‖²_∞)^½,

and the step is accepted when ``err ≤ 1``.  Either way the next step is ``δ' = δ min(10,
max(0.2, 0.9 err^{−1/8}))`` (no growth right after a rejection; a non-finite error counts as
a rejection with the smallest factor).  The last step of a leap is cut to end on the output
time; the next leap starts from the step proposed last, which the output file carries, so a
run resumed from an output step takes the uninterrupted run's steps.  The first leap chooses
its first step as Hairer's code does (SciPy's ``select_initial_step``, here in the max norm):
an explicit Euler step of ``h₀ = 0.01 ‖θ/s‖/‖F/s‖`` estimates the second derivative ``d₂ =
‖(F(θ + h₀F) − F)/s‖/h₀``, and ``δ₀ = min(100 h₀, (0.01/max(‖F/s‖, d₂))^{1/8})`` — one force
more.

Every output interval costs at least thirteen forces (the force at its start and one step;
the first interval one more, for its first step), against RK4's four per training step: the
scheme pays where outputs are sparser than every third training step or so (deep-tanh with
256 samples to ``t = 1`` in one interval at ``tolerance = 1e-6``: 38 forces against RK4's
200).

Errors are loud: a leap that needs a step below ``10⁻¹²`` of its length (a flow that blows up:
non-finite forces are rejected until the step underflows) or more than :data:`MAX_ATTEMPTS`
attempts raises :class:`FloatingPointError` naming the time reached.  Counts of the last leap
and of the whole run are kept (:attr:`ToleranceLoop.evaluations`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from continuum.fields.galerkin import GalerkinNetwork
from continuum.schemes.jax_flow import Force, JaxFlow, jax_rule
from discrete.experiment import DiscreteSetup
from discrete.training import NEXT_STEP

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402  (after float64 is switched on)

Array = np.ndarray

SAFETY, MIN_FACTOR, MAX_FACTOR = 0.9, 0.2, 10.0
"""The step controller's safety factor and the bounds of ``δ'/δ`` (those of SciPy's DOP853)."""

MAX_ATTEMPTS = 100_000
"""The most steps (accepted or rejected) one leap may try before it is called failed."""

SMALLEST_STEP = 1e-12
"""The smallest step, relative to the leap's length, before the leap is called failed."""

COUNTS = ("trial", "accepted", "rejected", "evaluations", "reached", "status")
"""What the compiled leap returns beside ``θ``, in one vector (one transfer back): the step the
next leap tries first, the accepted and rejected steps, the force evaluations, the time
reached and the status (0 done, 1 step underflow, 2 too many attempts)."""

FORCES_PER_STEP = 12
"""Force evaluations per attempted step: stages 2–12 and ``F(θ̂)`` (stage 1 is the last
step's ``F(θ̂)``)."""


def dop853_tableau() -> tuple[Array, Array, Array]:
    """``A`` (13 × 13: row 12 holds ``b``, so stage 13 is ``F(θ̂)``) and the error weights
    ``E⁵``, ``E³`` (13 each) of DOP853, from SciPy's ``DOP853`` (its 12 stages' ``A`` and
    ``b``)."""
    from scipy.integrate import DOP853  # SciPy only where it is used

    stages = DOP853.n_stages
    A = np.zeros((stages + 1, stages + 1))
    A[:stages, :stages], A[stages, :stages] = DOP853.A, DOP853.B
    return A, DOP853.E5.copy(), DOP853.E3.copy()


class ToleranceLoop:
    """DOP853 with error control to ``tolerance`` over each leap of training steps ``h``, one
    compiled ``while_loop`` (module docstring)."""

    scheme = "jax-adaptive"
    key = ("dop853",)  # the tolerance and the leap's length are arguments of the loop

    @classmethod
    def of(cls, setup: DiscreteSetup) -> ToleranceLoop:
        """The loop of a run: leaps of its training ``dt``, to its ``[continuum] tolerance``."""
        return cls(setup.config.training.dt, setup.config.continuum.tolerance)

    def __init__(self, h: float, tolerance: float):
        self.h = h
        self.tolerance = tolerance
        self.trial = 0.0
        """The step the next leap tries first: the last one proposed (0 before the first
        leap, which chooses its own: module docstring)."""
        self.evaluations = 0
        """Force evaluations of the whole run."""
        self.last: dict[str, int] = {}
        """Accepted and rejected steps and force evaluations of the last leap."""

    def abstract(self, size: int) -> tuple:
        scalar = jax.ShapeDtypeStruct((), jnp.float64)
        return jax.ShapeDtypeStruct((size,), jnp.float64), scalar, scalar, scalar

    def trace(self, force: Force) -> Callable:
        A, E5, E3 = (jnp.asarray(a) for a in dop853_tableau())
        stages = A.shape[0]
        order = jnp.arange(1, stages)

        def to_tolerance(theta, span, trial, tolerance, arrays):
            """``θ`` after a time ``span``, and the vector of :data:`COUNTS`."""

            def attempt(theta, f0, delta):
                K = jnp.zeros((stages, theta.shape[0])).at[0].set(f0)

                def stage(K, row):
                    i, a = row
                    return K.at[i].set(force(theta + delta * (a @ K), arrays)), None

                # unrolled: a rolled scan costs about a third of a force per stage at the
                # user-scale sizes (benchmarks/README.md, run 17); the compile takes 25 % longer
                K, _ = jax.lax.scan(stage, K, (order, A[1:]), unroll=True)
                new = theta + delta * (A[-1] @ K)
                scale = tolerance * (1.0 + jnp.maximum(jnp.abs(theta), jnp.abs(new)))
                e5 = jnp.max(jnp.abs(E5 @ K) / scale) ** 2
                e3 = jnp.max(jnp.abs(E3 @ K) / scale) ** 2
                both = e5 + 0.01 * e3
                err = jnp.where(
                    both > 0, delta * e5 / jnp.sqrt(jnp.where(both > 0, both, 1.0)), 0.0
                )
                return new, K[-1], err

            def cond(carry):
                t, *_, status = carry
                return (t < span) & (status == 0)

            def body(carry):
                t, theta, f0, trial, accepted, rejected, after_rejection, status = carry
                last = trial >= span - t
                delta = jnp.where(last, span - t, trial)
                new, f_new, err = attempt(theta, f0, delta)
                ok = err <= 1.0  # False for NaN
                factor = jnp.where(
                    err > 0, jnp.clip(SAFETY * err ** (-1 / 8), MIN_FACTOR, MAX_FACTOR), MAX_FACTOR
                )
                factor = jnp.where(jnp.isfinite(err), factor, MIN_FACTOR)
                factor = jnp.where(ok & after_rejection, jnp.minimum(factor, 1.0), factor)
                proposed = delta * factor
                # a last step cut short proposes no less than the trial it was cut from
                proposed = jnp.where(ok & last, jnp.maximum(proposed, trial), proposed)
                accepted, rejected = accepted + ok, rejected + ~ok
                status = jnp.where(proposed < SMALLEST_STEP * span, 1, status)
                status = jnp.where(accepted + rejected >= MAX_ATTEMPTS, 2, status)
                return (
                    jnp.where(ok, jnp.where(last, span, t + delta), t),
                    jnp.where(ok, new, theta),
                    jnp.where(ok, f_new, f0),
                    proposed,
                    accepted,
                    rejected,
                    ~ok,
                    status,
                )

            f0 = force(theta, arrays)
            chosen = trial <= 0  # no trial: the first leap chooses its step (one more force)
            trial = jax.lax.cond(
                chosen,
                lambda: initial_step(theta, f0, span, tolerance, arrays),
                lambda: jnp.minimum(trial, span),
            )
            zero = jnp.int32(0)
            start = (0.0 * span, theta, f0, trial, zero, zero, False, zero)
            t, theta, _, trial, accepted, rejected, _, status = jax.lax.while_loop(
                cond, body, start
            )
            evaluations = 1 + chosen + FORCES_PER_STEP * (accepted + rejected)
            counts = dict(
                trial=trial,
                accepted=accepted,
                rejected=rejected,
                evaluations=evaluations,
                reached=t,
                status=status,
            )
            return theta, jnp.stack([jnp.asarray(counts[name], jnp.float64) for name in COUNTS])

        def initial_step(theta, f0, span, tolerance, arrays):
            """Hairer's choice of the first step (module docstring), at most ``span``."""
            scale = tolerance * (1.0 + jnp.abs(theta))
            d0, d1 = jnp.max(jnp.abs(theta) / scale), jnp.max(jnp.abs(f0) / scale)
            h0 = jnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / jnp.maximum(d1, 1e-300))
            h0 = jnp.minimum(h0, span)
            d2 = jnp.max(jnp.abs(force(theta + h0 * f0, arrays) - f0) / scale) / h0
            largest = jnp.maximum(d1, d2)
            h1 = jnp.where(
                largest <= 1e-15,
                jnp.maximum(1e-6, h0 * 1e-3),
                (0.01 / jnp.maximum(largest, 1e-300)) ** (1 / 8),
            )
            return jnp.minimum(jnp.minimum(100 * h0, h1), span)

        return to_tolerance

    def leap(self, run: Callable, theta: Array, steps: int, arrays: Any) -> Array:
        """``θ`` after ``steps`` training steps, by one compiled error-controlled solve."""
        span = steps * self.h
        new, vector = run(theta, span, self.trial, self.tolerance, arrays)
        counts = dict(zip(COUNTS, np.asarray(vector).tolist(), strict=True))
        self.last = {name: int(counts[name]) for name in ("accepted", "rejected", "evaluations")}
        self.evaluations += self.last["evaluations"]
        status = int(counts["status"])
        if status != 0:
            why = (
                f"the step fell below {SMALLEST_STEP:g} of the interval (the forces are not "
                "finite or grow without bound: the flow blows up; check the rates and the data)"
                if status == 1
                else f"{MAX_ATTEMPTS} steps were not enough (a stiff flow: choose scheme = 'jax')"
            )
            raise FloatingPointError(
                f"[continuum] scheme = 'jax-adaptive' failed {counts['reached']:.9g} into a leap "
                f"of {span:g} after {self.last['accepted']} accepted and "
                f"{self.last['rejected']} rejected steps: {why}"
            )
        self.trial = counts["trial"]
        return np.asarray(new)

    def carried(self) -> dict[str, float]:
        """The step the next leap tries first (0 before the first leap: it chooses one)."""
        return {NEXT_STEP: self.trial}

    def carry(self, values: dict[str, float]) -> None:
        self.trial = float(values[NEXT_STEP])


def jax_adaptive_rule(galerkin: GalerkinNetwork, setup: DiscreteSetup) -> JaxFlow:
    """``scheme = "jax-adaptive"``: the compiled flow to ``[continuum] tolerance``, reported at
    the training dt, with the continuum rates."""
    return jax_rule(galerkin, setup, ToleranceLoop.of(setup))
