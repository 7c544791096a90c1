"""Implicit integrators of the nonlinear training dynamics, solved by Newton's method
(docs/physics.md "Continuum").

The explicit rules of :mod:`discrete.training` integrate the flow ``θ̇ = −η ⊙ g(θ)`` and the
damped dynamics ``θ̈ + γθ̇ + η ⊙ g(θ) = 0``, with ``g(θ)`` the gradient of the cost object (the
Riesz representative ``δC/δθ`` of :class:`continuum.fields.galerkin.GalerkinNetwork`, or ``∂C/∂θ``
of :class:`discrete.cost.Cost`).  The rules here take the same step ``h`` implicitly:

* :class:`ImplicitFlow`, the θ-method (ϑ = ½ Crank–Nicolson, second order; ϑ = 1 backward
  Euler, first order and L-stable)::

      θ_{n+1} − θ_n + h η ⊙ [ϑ g(θ_{n+1}) + (1 − ϑ) g(θ_n)] = 0;

* :class:`ImplicitMomentum`, the implicit midpoint rule for ``(θ, v = θ̇)``,
  ``θ_{n+1} = θ_n + h v̄``, ``v_{n+1} = v_n − h [γ v̄ + η ⊙ g(θ̄)]`` with ``θ̄, v̄`` the
  averages of the two ends (second order; symplectic for γ = 0, equal to Newmark's average
  acceleration for a linear ``g``).  Eliminating ``v_{n+1} = 2(θ_{n+1} − θ_n)/h − v_n``::

      (1 + γh/2)(θ_{n+1} − θ_n) − h v_n + (h²/2) η ⊙ g((θ_n + θ_{n+1})/2) = 0.

Both are one nonlinear system of the form ``κ x + σ η ⊙ g(λ x + μ) = b`` for ``x = θ_{n+1}``,
solved by PETSc SNES (``newtonls`` with the backtracking line search ``bt``) from the guess
``x = θ_n``.  The Jacobian ``κ I + σλ diag(η) g'(y)``, ``y = λx + μ``, is matrix-free: a
Python-context ``Mat`` whose product is a forward difference of ``g``,

    J v ≈ κ v + σ η ⊙ [g(y + ελ v) − g(y)] / ε,      ε = √ε_mach √(1 + ‖y‖) / ‖v‖

(PETSc's ``wp`` choice; the ``κ v`` part is exact).  The Krylov solver is GMRES without a
preconditioner (unrestarted, at most 100 iterations, PETSc's default ``rtol = 1e-5``):
``J/κ`` is the identity plus ``O(h ‖η g'‖)`` (midpoint: ``O(h² ‖η g'‖)``), so a few Krylov
iterations — one gradient each — suffice.  Newton from ``θ_n`` copes with steps a few times the
explicit stability limit (on the stiff tanh test, 5× the RK4 limit converges and 10× does not:
``DIVERGED_MAX_IT``); it is not meant for arbitrarily stiff steps.

Tolerances set in code: ``rtol = 1e-10`` (on ``‖F‖`` relative to its value at the guess),
``atol = 1e-12 · ‖θ_n‖`` (``F`` has the units of ``θ``; ``‖θ_n‖`` floored at the smallest
normal float, so a zero state at rest converges at once), ``max_it = 20``.  Every setting can be
changed through the PETSc options database under the rule's prefix (default
``synfield_newton_``), e.g. ``-synfield_newton_snes_max_it 50``,
``-synfield_newton_snes_linesearch_type l2``, ``-synfield_newton_ksp_rtol 1e-8``; an
``-…_snes_atol`` option sets the factor that multiplies ``‖θ_n‖``.  After every solve the
converged reason is checked; a diverged solve raises :class:`RuntimeError` naming the rule,
the step, the time, the final residual norm, the number of Newton iterations and the PETSc
reason (``DIVERGED_MAX_IT``, ``DIVERGED_LINE_SEARCH``, ``DIVERGED_FUNCTION_NANORINF``, …).

MPI: the PETSc objects live on the cost's communicator (its ``comm`` attribute, as on
:class:`~continuum.fields.galerkin.GalerkinNetwork`, whose ``θ`` is split by weight rows over the
ranks), else on ``COMM_SELF`` (the discrete network: one rank).  Every rank holds its local
``θ`` as the local part of one PETSc vector, so norms, inner products and the Newton
iteration count are global and the collective gradient is called on every rank alike.
Entries that a cost holds alike on every rank (its ``shared`` mask: the Galerkin biases) stay
identical on every rank.  Newton runs in the variables ``x̃ = ω ⊙ x`` with ``ω = 1/√P`` on those
entries (``P`` ranks) and 1 elsewhere, ``F̃(x̃) = ω ⊙ F(x̃/ω)``: a shared entry, held by ``P``
ranks, then weighs in every norm and every Krylov inner product as it does on one rank, so the
iterates, the stopping tests and the difference step do not depend on the number of ranks (with
the plain vector the biases counted ``P`` times and two ranks stopped GMRES and Newton at other
iterates: 3.7e-10 between one and two ranks on ``examples/digits.toml``, now 1.2e-12).
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

# isort: split
from petsc4py import PETSc

from continuum.fem.petsc import converged_reason, reason_name
from discrete.training import GradientCost, Rule, State

Array = np.ndarray

_TINY = float(np.finfo(float).tiny)
_SQRT_EPS = float(np.sqrt(np.finfo(float).eps))
_KRYLOV_MAX_IT = 100


class _DifferenceJacobian:
    """Python context of the matrix-free Jacobian ``κ I + σλ diag(η) g'(y)`` at ``y``."""

    def __init__(self, newton: NewtonSolve):
        self.newton = newton
        self.y = newton.x.duplicate()
        self.g = np.zeros(newton.rates.size)

    def mult(self, mat: PETSc.Mat, v: PETSc.Vec, out: PETSc.Vec) -> None:
        """``out = ω ⊙ (κ v + σ η ⊙ [g(y + ελ v) − g(y)] / ε)`` with ``v = ṽ/ω``, ``y = ỹ/ω``
        (the norms in ``ε`` are those of ``ỹ`` and ``ṽ``)."""
        nw, omega = self.newton, self.newton.omega
        eps = _SQRT_EPS * np.sqrt(1.0 + self.y.norm()) / max(v.norm(), _TINY)  # type: ignore[operator]
        va = v.getArray(readonly=True) / omega
        shifted = nw.gradient(self.y.getArray(readonly=True) / omega + eps * nw.lam * va)
        out.setArray(omega * (nw.kappa * va + nw.sigma * nw.rates * (shifted - self.g) / eps))


class NewtonSolve:
    """Solves ``κ x + σ η ⊙ g(λ x + μ) = b`` by PETSc SNES with a matrix-free Jacobian.

    ``κ, σ, λ`` are fixed; ``b`` and ``μ`` change from step to step (:meth:`solve`).
    """

    def __init__(
        self,
        cost: GradientCost,
        rates: Array,
        kappa: float,
        sigma: float,
        lam: float,
        *,
        prefix: str,
        rtol: float = 1e-10,
        atol: float = 1e-12,
        max_it: int = 20,
    ):
        self.cost, self.rates = cost, np.asarray(rates, dtype=float)
        self.kappa, self.sigma, self.lam = float(kappa), float(sigma), float(lam)
        self.comm = getattr(cost, "comm", MPI.COMM_SELF)
        n = self.rates.size
        shared = getattr(cost, "shared", np.zeros(n, bool))
        self.omega = np.where(shared, 1.0 / np.sqrt(self.comm.size), 1.0)
        self.x = PETSc.Vec().create(self.comm)  # type: ignore[arg-type]
        self.x.setSizes((n, PETSc.DECIDE))
        self.x.setUp()
        self.b, self.mu = np.zeros(n), np.zeros(n)
        self.jacobian = _DifferenceJacobian(self)
        jac = PETSc.Mat().createPython(
            ((n, None), (n, None)),  # type: ignore[arg-type]
            self.jacobian,
            comm=self.comm,  # type: ignore[arg-type]
        )
        jac.setUp()
        snes = PETSc.SNES().create(self.comm)  # type: ignore[arg-type]
        snes.setType("newtonls")
        snes.getLineSearch().setType("bt")
        snes.setFunction(self._residual, self.x.duplicate())
        snes.setJacobian(self._update_jacobian, jac)
        ksp = snes.getKSP()
        ksp.setType("gmres")
        ksp.setGMRESRestart(_KRYLOV_MAX_IT)
        ksp.setTolerances(max_it=_KRYLOV_MAX_IT)
        ksp.getPC().setType("none")
        snes.setTolerances(rtol=rtol, atol=atol, max_it=max_it)
        snes.setOptionsPrefix(prefix)
        snes.setFromOptions()
        self.atol_factor = snes.getTolerances()[1]
        self.snes = snes
        self._last: tuple[Array, Array] | None = None

    def gradient(self, y: Array) -> Array:
        """``g(y)``, remembered for the Jacobian at the same point."""
        g = self.cost.gradient(y)[1]
        self._last = (y.copy(), g)
        return g

    def _residual(self, snes: PETSc.SNES, x: PETSc.Vec, f: PETSc.Vec) -> None:
        """``F̃(x̃) = ω ⊙ F(x)``, ``F(x) = κ x + σ η ⊙ g(λ x + μ) − b``, ``x = x̃/ω``."""
        xa = x.getArray(readonly=True) / self.omega
        g = self.gradient(self.lam * xa + self.mu)
        f.setArray(self.omega * (self.kappa * xa + self.sigma * self.rates * g - self.b))

    def _update_jacobian(self, snes: PETSc.SNES, x: PETSc.Vec, J: PETSc.Mat, P: PETSc.Mat) -> None:
        """Move the difference Jacobian's base point to ``y = λ x + μ``."""
        y = self.lam * (x.getArray(readonly=True) / self.omega) + self.mu  # as in _residual
        last = self._last
        g = last[1] if last is not None and np.array_equal(last[0], y) else self.gradient(y)
        self.jacobian.y.setArray(self.omega * y)  # type: ignore[arg-type]
        self.jacobian.g = g
        J.assemble()

    def solve(self, b: Array, mu: Array, guess: Array, where: str) -> Array:
        """The root ``x`` from ``guess``; a diverged solve raises, naming ``where``."""
        self.b, self.mu = b, mu
        self.x.setArray(self.omega * guess)  # type: ignore[arg-type]
        scale = self.x.norm()  # a non-finite guess gives a non-finite F, which SNES reports
        atol = self.atol_factor * (max(scale, _TINY) if np.isfinite(scale) else 1.0)  # type: ignore[operator]
        self.snes.setTolerances(atol=atol)
        self.snes.solve(None, self.x)
        reason = converged_reason(self.snes)
        if reason < 0:
            snes, ksp = self.snes, self.snes.getKSP()
            linear = ""
            if reason == PETSc.SNES.ConvergedReason.DIVERGED_LINEAR_SOLVE:
                linear = (
                    f" (KSP {ksp.getType()}: {reason_name('KSP', converged_reason(ksp))} after "
                    f"{ksp.getIterationNumber()} iterations)"
                )
            raise RuntimeError(
                f"{where}: Newton's method (PETSc SNES {snes.getType()}) diverged with reason "
                f"{reason_name('SNES', reason)} ({reason}){linear} after "
                f"{snes.getIterationNumber()} Newton iterations, final residual norm "
                f"‖F‖ = {snes.getFunction()[0].norm():.6e} (atol {atol:.3e}, "  # type: ignore[index]  # also when NaN
                f"rtol {snes.getTolerances()[0]:.1e}); reduce the time step, or tune the "
                f"solver through the PETSc options prefix {snes.getOptionsPrefix()!r}"
            )
        return self.x.getArray(readonly=True) / self.omega


class ImplicitFlow(Rule):
    """The θ-method ``θ_{n+1} − θ_n + h η ⊙ [ϑ g(θ_{n+1}) + (1−ϑ) g(θ_n)] = 0`` (Newton).

    ``theta`` is ϑ ∈ [0, 1]: ½ Crank–Nicolson (default), 1 backward Euler.
    """

    def __init__(
        self,
        cost: GradientCost,
        rates: Array,
        h: float,
        theta: float = 0.5,
        *,
        prefix: str = "synfield_newton_",
        rtol: float = 1e-10,
        atol: float = 1e-12,
        max_it: int = 20,
    ):
        if not 0.0 <= theta <= 1.0:
            raise ValueError(f"ϑ must lie in [0, 1], got {theta}")
        super().__init__(cost, rates, h)
        self.theta = float(theta)
        self.name = f"implicit flow (ϑ = {theta:g})"
        self.newton = NewtonSolve(
            cost, rates, 1.0, self.h * theta, 1.0,
            prefix=prefix, rtol=rtol, atol=atol, max_it=max_it,
        )  # fmt: skip
        self._zero = np.zeros(self.newton.rates.size)

    def step(self, state: State) -> State:
        """Solve ``x + hϑ η ⊙ g(x) = θ_n − h(1−ϑ) η ⊙ g(θ_n)`` for ``x = θ_{n+1}``."""
        h, th, n = self.h, state.theta, state.step
        b = th.copy()
        if self.theta < 1.0:
            b += (1.0 - self.theta) * h * self.force(th)
        where = f"{self.name} step {n + 1} (t = {n * h:.6g} → {(n + 1) * h:.6g})"
        return State((n + 1) * h, n + 1, self.newton.solve(b, self._zero, th, where))


class ImplicitMomentum(Rule):
    """Implicit midpoint for ``θ̈ + γθ̇ + η ⊙ g(θ) = 0`` (Newton), second order.

    ``(1 + γh/2)(θ_{n+1} − θ_n) − h v_n + (h²/2) η ⊙ g((θ_n + θ_{n+1})/2) = 0``,
    ``v_{n+1} = 2(θ_{n+1} − θ_n)/h − v_n``.
    """

    second_order = True

    def __init__(
        self,
        cost: GradientCost,
        rates: Array,
        h: float,
        gamma: float,
        *,
        prefix: str = "synfield_newton_",
        rtol: float = 1e-10,
        atol: float = 1e-12,
        max_it: int = 20,
    ):
        super().__init__(cost, rates, h)
        self.gamma = float(gamma)
        self.name = f"implicit midpoint (γ = {gamma:g})"
        self.kappa = 1.0 + 0.5 * self.gamma * self.h
        self.newton = NewtonSolve(
            cost, rates, self.kappa, 0.5 * self.h**2, 0.5,
            prefix=prefix, rtol=rtol, atol=atol, max_it=max_it,
        )  # fmt: skip

    def step(self, state: State) -> State:
        """Solve ``κ x + (h²/2) η ⊙ g(x/2 + θ_n/2) = κ θ_n + h v_n`` for ``x = θ_{n+1}``."""
        h, th, v, n = self.h, state.theta, state.velocity, state.step
        assert v is not None, "a second-order state carries its velocity"
        where = f"{self.name} step {n + 1} (t = {n * h:.6g} → {(n + 1) * h:.6g})"
        x = self.newton.solve(self.kappa * th + h * v, 0.5 * th, th, where)
        return State((n + 1) * h, n + 1, x, 2.0 * (x - th) / h - v)
