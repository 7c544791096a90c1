"""Implicit time stepping of linear first-order flows ``M u̇ + K u = f(t)``.

A flow supplies its operators only through the combinations ``α M + β K`` a step needs (so a
nonlocal ``K`` may stay in factored low-rank form, and a local one may be a sparse stiffness
matrix) and its source ``f``. It may hold several independent systems that share ``M`` and ``K``
(the rows of a tensor-product field); each is a PETSc vector of the state, advanced in place.

Schemes, for a step ``Δt`` from ``t_n`` to ``t_{n+1}``:

* θ-method: ``(M + θΔt K) u^{n+1} = (M − (1−θ)Δt K) u^n + Δt [θ f^{n+1} + (1−θ) f^n]``;
  ``θ = ½`` is Crank–Nicolson (second order), ``θ = 1`` backward Euler (first order);
* BDF2: ``(3/2 M + Δt K) u^{n+1} = M (2u^n − ½u^{n−1}) + Δt f^{n+1}``, second order, started
  with one Crank–Nicolson step (local error ``O(Δt³)``, so the order is kept).

Every implicit solve is a PETSc KSP (default: conjugate gradients, preconditioned by a
factorisation of the flow's sparse preconditioning matrix) whose converged reason is checked; a
diverged solve raises :class:`RuntimeError` naming the scheme, the step and the PETSc reason.
The KSPs take PETSc options under the prefix given to the scheme.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import mpi4py.MPI  # noqa: F401  first: it loads the MPI library that PETSc links against

# isort: split
from petsc4py import PETSc

_REASONS = {
    code: name
    for name, code in vars(PETSc.KSP.ConvergedReason).items()
    if isinstance(code, int) and not name.startswith("_")
}


def converged_reason_name(code: int) -> str:
    """The PETSc name of a KSP converged reason, e.g. ``DIVERGED_ITS`` for ``-3``."""
    return _REASONS.get(code, "UNKNOWN")


class LinearFlow(Protocol):
    """A linear first-order system ``M u̇ + K u = f(t)``, possibly several sharing ``M``, ``K``."""

    def combination(self, alpha: float, beta: float) -> tuple[PETSc.Mat, PETSc.Mat]:
        """The operator ``α M + β K`` and a sparse matrix to build its preconditioner from."""
        ...

    def source(self, t: float, system: int, out: PETSc.Vec) -> None:
        """Write the source ``f(t)`` of system number ``system`` into ``out``."""
        ...


class ImplicitSolve:
    """Solves ``(α M + β K) u = r`` with a KSP and fails loudly when it diverges."""

    def __init__(
        self,
        flow: LinearFlow,
        alpha: float,
        beta: float,
        *,
        prefix: str,
        ksp_type: str = "cg",
        pc_type: str = "cholesky",
        rtol: float = 1e-12,
    ) -> None:
        operator, preconditioner = flow.combination(alpha, beta)
        self.ksp = PETSc.KSP().create(operator.getComm())
        self.ksp.setOperators(operator, preconditioner)
        self.ksp.setType(ksp_type)
        self.ksp.getPC().setType(pc_type)
        self.ksp.setTolerances(rtol=rtol, atol=1e-50, max_it=1000)
        self.ksp.setOptionsPrefix(prefix)
        self.ksp.setFromOptions()

    def vectors(self, count: int) -> list[PETSc.Vec]:
        """``count`` work vectors laid out like the state."""
        operator, _ = self.ksp.getOperators()
        return [operator.createVecLeft() for _ in range(count)]

    def __call__(self, rhs: PETSc.Vec, u: PETSc.Vec, where: str) -> None:
        """Overwrite ``u`` with the solution; ``where`` names the step in an error."""
        self.ksp.solve(rhs, u)
        reason = self.ksp.getConvergedReason()
        if reason < 0:
            raise RuntimeError(
                f"{where}: the implicit solve diverged, KSP converged reason "
                f"{converged_reason_name(reason)} ({reason}) after "
                f"{self.ksp.getIterationNumber()} iterations"
            )


class ThetaMethod:
    """The θ-method ``(M + θΔt K) u^{n+1} = (M − (1−θ)Δt K) u^n + Δt [θ f^{n+1} + (1−θ) f^n]``."""

    def __init__(
        self,
        flow: LinearFlow,
        dt: float,
        theta: float = 0.5,
        *,
        name: str | None = None,
        prefix: str = "theta_",
        pc_type: str = "cholesky",
    ) -> None:
        if not 0.0 <= theta <= 1.0:
            raise ValueError(f"θ must lie in [0, 1], got {theta}")
        self.flow, self.dt, self.theta = flow, dt, theta
        self.name = name or f"θ-method (θ = {theta:g})"
        self.steps = 0
        self._solve = ImplicitSolve(flow, 1.0, theta * dt, prefix=prefix, pc_type=pc_type)
        self._explicit, _ = flow.combination(1.0, -(1.0 - theta) * dt)
        self._rhs, self._force = self._solve.vectors(2)

    @property
    def ksps(self) -> list[PETSc.KSP]:
        """The KSP of the implicit solve (to adjust its settings)."""
        return [self._solve.ksp]

    def step(self, systems: Sequence[PETSc.Vec], t: float) -> None:
        """Advance every system from ``t`` to ``t + Δt`` in place."""
        dt, theta = self.dt, self.theta
        where = f"{self.name} step {self.steps + 1} (t = {t:.6g} → {t + dt:.6g})"
        rhs, force = self._rhs, self._force
        for i, u in enumerate(systems):
            self._explicit.mult(u, rhs)
            self.flow.source(t, i, force)
            rhs.axpy((1.0 - theta) * dt, force)
            self.flow.source(t + dt, i, force)
            rhs.axpy(theta * dt, force)
            self._solve(rhs, u, f"{where}, system {i}")
        self.steps += 1


class BDF2:
    """BDF2 ``(3/2 M + Δt K) u^{n+1} = M (2u^n − ½u^{n−1}) + Δt f^{n+1}``, CN-started."""

    def __init__(
        self, flow: LinearFlow, dt: float, *, prefix: str = "bdf2_", pc_type: str = "cholesky"
    ) -> None:
        self.flow, self.dt = flow, dt
        self.name = "BDF2"
        self.steps = 0
        self._start = ThetaMethod(
            flow, dt, 0.5, name="BDF2 start (Crank–Nicolson)", prefix=prefix, pc_type=pc_type
        )
        self._solve = ImplicitSolve(flow, 1.5, dt, prefix=prefix, pc_type=pc_type)
        self._mass, _ = flow.combination(1.0, 0.0)
        self._rhs, self._history, self._force = self._solve.vectors(3)
        self._previous: list[PETSc.Vec] | None = None

    @property
    def ksps(self) -> list[PETSc.KSP]:
        """The KSPs of the Crank–Nicolson start and of the BDF2 steps, in that order."""
        return [*self._start.ksps, self._solve.ksp]

    def step(self, systems: Sequence[PETSc.Vec], t: float) -> None:
        """Advance every system from ``t`` to ``t + Δt`` in place."""
        if self._previous is None:
            self._previous = [u.copy() for u in systems]
            self._start.step(systems, t)
            self.steps += 1
            return
        where = f"{self.name} step {self.steps + 1} (t = {t:.6g} → {t + self.dt:.6g})"
        rhs, history, force = self._rhs, self._history, self._force
        for i, (u, previous) in enumerate(zip(systems, self._previous, strict=True)):
            history.waxpy(-0.25, previous, u)  # u^n − ¼u^{n−1}; times 2 below
            self._mass.mult(history, rhs)
            rhs.scale(2.0)
            self.flow.source(t + self.dt, i, force)
            rhs.axpy(self.dt, force)
            u.copy(previous)
            self._solve(rhs, u, f"{where}, system {i}")
        self.steps += 1
