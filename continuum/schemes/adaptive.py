"""Error-controlled time integration of the continuum gradient flow (PETSc TS).

The full-batch flow of the field coefficients (docs/physics.md "Continuum", in the Galerkin form of
:mod:`continuum.fields.galerkin`),

    ∂_t θ = −η ⊙ δC/δθ,

is a smooth ODE whose right-hand side does not depend on the width of any network: the time
step it needs is set by the accuracy asked for, not by the training rule's ``dt``.  This rule
integrates it with Verner's 8(7) embedded Runge–Kutta pair (PETSc ``TSRK`` type ``8vr``)
and lets PETSc's ``basic`` step adaptor pick every step so that the local error estimate
``e`` of the embedded pair obeys

    max_i |e_i| / (τ + τ · max(|θ_i|, |θ̂_i|)) ≤ 1,        τ = [continuum] tolerance,

rejecting and shrinking a step that does not.  The fields are reported at the training
rule's output times: one ``TS`` solve per output interval, ending exactly on the output
time (``TS_EXACTFINALTIME_MATCHSTEP``).  The first solve's trial step is the training ``dt``;
each later one starts from the step the adaptor proposed last, so output intervals do not
cost a new climb to the step size the flow allows.  That step is carried in the output file
(:meth:`carried`): a run resumed from an output step tries it first, as the uninterrupted run
does, and takes the same steps.  Every interval costs at least one step of 13
gradients: the integrator pays off when outputs are sparser than about every third training
step (deep-tanh, ``t = 1``, outputs every 10 of 50 steps: 65 gradients against RK4's 200;
output at every step: 650).

The error norm is the max norm over every rank (the coefficients are split by weight rows,
:class:`~continuum.fields.galerkin.GalerkinNetwork`): every rank takes the same steps, the
collective gradient is called alike on all of them, and the biases that every rank holds
alike cannot weigh more on two ranks than on one.  The adaptor's settings can be changed
through the PETSc options database under the rule's prefix (default ``synfield_adaptive_``),
e.g. ``-synfield_adaptive_ts_rk_type 5dp`` or ``-synfield_adaptive_ts_adapt_clip 0.2,5``.
A solve ends at the first accepted step whose fields are NaN or infinite (a flow that blows
up) and raises :class:`FloatingPointError` with that time; one that PETSc gives up on raises
it with PETSc's reason.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from mpi4py import MPI

# isort: split
from petsc4py import PETSc

from continuum.fem.petsc import converged_reason, reason_name
from discrete.training import NEXT_STEP, GradientCost, Rule, State

Array = np.ndarray

DEFAULT_OPTIONS = {"ts_adapt_type": "basic", "ts_adapt_wnormtype": "infinity"}
"""The adaptor and its error norm, unless the options database says otherwise."""


class AdaptiveFlow(Rule):
    """``[continuum] scheme = "adaptive"``: the gradient flow ``θ̇ = −η ⊙ ∂C/∂θ`` to a
    local error tolerance, reported every ``h`` (the training ``dt``)."""

    def __init__(
        self,
        cost: GradientCost,
        rates: Array,
        h: float,
        tolerance: float,
        prefix: str = "synfield_adaptive_",
    ):
        super().__init__(cost, rates, h)
        comm = getattr(cost, "comm", MPI.COMM_SELF)
        shared = getattr(cost, "shared", None)
        if shared is not None and bool(np.all(shared)):
            comm = MPI.COMM_SELF  # θ whole on every rank (samples split): one TS per rank
        self.x = PETSc.Vec().create(comm)  # type: ignore[arg-type]
        self.x.setSizes((self.rates.size, PETSc.DECIDE))
        self.x.setUp()
        ts = PETSc.TS().create(comm)  # type: ignore[arg-type]
        ts.setType(PETSc.TS.Type.RK)
        ts.setRKType("8vr")
        ts.setRHSFunction(self._rhs, self.x.duplicate())
        ts.setPostStep(self._stop_if_not_finite)
        ts.setTolerances(rtol=tolerance, atol=tolerance)
        ts.setExactFinalTime(PETSc.TS.ExactFinalTime.MATCHSTEP)  # type: ignore[arg-type]
        ts.setMaxSteps(10**9)
        ts.setErrorIfStepFails(False)
        ts.setOptionsPrefix(prefix)
        options = PETSc.Options(prefix)
        unset = [key for key in DEFAULT_OPTIONS if not options.hasName(key)]
        for key in unset:
            options[key] = DEFAULT_OPTIONS[key]  # type: ignore[index]
        ts.setFromOptions()
        for key in unset:
            options.delValue(key)
        self.ts = ts
        self.first_step = self.h
        self.evaluations = 0
        self._not_finite_at: float | None = None

    def _rhs(self, ts: PETSc.TS, t: float, x: PETSc.Vec, f: PETSc.Vec) -> None:
        """``f = −η ⊙ ∂C/∂θ(x)``."""
        self.evaluations += 1
        f.setArray(self.force(x.getArray(readonly=True)))  # type: ignore[arg-type]

    def _stop_if_not_finite(self, ts: PETSc.TS) -> None:
        """End the solve at the first accepted step whose fields are NaN or infinite (the
        max norm is a collective: every rank stops alike)."""
        if not np.isfinite(ts.getSolution().norm(PETSc.NormType.INFINITY)):  # type: ignore[arg-type]
            self._not_finite_at = ts.getTime()
            ts.setConvergedReason(PETSc.TS.ConvergedReason.DIVERGED_STEP_REJECTED)  # type: ignore[arg-type]

    def leap(self, state: State, steps: int) -> State:
        """The state ``steps`` output steps later, by one adaptive solve."""
        step = state.step + steps
        ts = self.ts
        self.x.setArray(state.theta)  # type: ignore[arg-type]
        ts.setTime(state.t)
        ts.setStepNumber(0)
        ts.setTimeStep(self.first_step)
        ts.setMaxTime(step * self.h)
        self._not_finite_at = None
        ts.solve(self.x)
        if self._not_finite_at is not None:
            raise FloatingPointError(
                f"adaptive continuum solve diverged: the fields became NaN or inf at "
                f"t = {self._not_finite_at:.6g}; the flow blows up (check the rates and the data)"
            )
        reason = converged_reason(ts)
        if reason < 0:
            raise FloatingPointError(
                f"adaptive continuum solve (PETSc TS {ts.getType()} {ts.getRKType()}) failed "
                f"at t = {ts.getTime():.6g} with reason {reason_name('TS', reason)} ({reason}) "
                f"after {ts.getStepRejections()} rejected steps"
            )
        self.first_step = ts.getTimeStep()
        return State(step * self.h, step, self.x.getArray(readonly=True).copy())

    def step(self, state: State) -> State:
        return self.leap(state, 1)

    def carried(self) -> dict[str, float]:
        """The step the next solve tries first: the one the adaptor proposed last."""
        return {NEXT_STEP: self.first_step}

    def carry(self, values: dict[str, float]) -> None:
        self.first_step = float(values[NEXT_STEP])

    def advance(self, state: State, steps: int) -> Iterator[State]:
        """One adaptive solve over all ``steps``: no intermediate states are kept."""
        if steps > 0:
            yield self.leap(state, steps)
