"""Implicit time stepping of low-rank linear flows ``M u̇ + Ξ C (Ξᵀ u − p) = 0``.

Many independent systems (the rows ``u_a`` of a tensor-product field, each with its own ``p_a``)
share ``M`` and the factored operator ``K = Ξ C Ξᵀ`` of rank ``L``.  Every implicit step is then
a rank-``L`` update of all rows at once.  For the θ-method

    (M + θΔt K)(u^{n+1} − u^n) = −Δt Ξ C (Ξᵀ u^n − p)
        ⇒   U^{n+1} = U^n − Δt (U^n Ξ − P) C Y_θᵀ,      Y_θ = (M + θΔt K)⁻¹ Ξ,

(``θ = ½`` Crank–Nicolson, second order; ``θ = 1`` backward Euler, first order), and for BDF2
``(3/2 M + Δt K) u^{n+1} = M (2u^n − ½u^{n−1}) + Δt f``, with ``u* = (4u^n − u^{n−1})/3``,

    U^{n+1} = U* − Δt (U* Ξ − P) C Zᵀ,      Z = (3/2 M + Δt K)⁻¹ Ξ,

started with one Crank–Nicolson step (local error ``O(Δt³)``, so the order is kept).  The
responses ``Y``, ``Z`` (``L`` columns) are PETSc KSP solves, done once, at the first step that
needs them; their converged reason is checked and a diverged solve raises
:class:`RuntimeError` naming the scheme, the step and the PETSc reason.  A step costs
``O(rows · n · L)``; a non-finite state after a step is reported with the step.
"""

from __future__ import annotations

from typing import Protocol

import mpi4py.MPI  # noqa: F401  first: it loads the MPI library that PETSc links against
import numpy as np

# isort: split
from mpi4py import MPI
from petsc4py import PETSc

from continuum.fem.petsc import checked_solve
from discrete.errors import check_growth


def global_size(comm: MPI.Comm, owned: np.ndarray) -> float:
    """``max |x|`` of a distributed array over all ranks (inf when any entry is not finite)."""
    local = float(np.max(np.abs(owned), initial=0.0))
    return comm.allreduce(local if np.isfinite(local) else np.inf, op=MPI.MAX)


def check_field(
    what: str, comm: MPI.Comm, owned: np.ndarray, reference: float, step: int, t: float
) -> None:
    """:class:`~discrete.errors.DivergenceError` on every rank when a distributed field is
    not finite or has grown beyond ``GROWTH · reference`` (a collective call)."""
    size = global_size(comm, owned)
    check_growth(what, np.array([size]), reference, step, t, "reduce dt or check the data")


class LowRankFlow(Protocol):
    """Rows ``u_a`` obeying ``M u̇_a + Ξ C (Ξᵀ u_a − p_a) = 0`` with one ``M`` and ``Ξ C Ξᵀ``."""

    def combination(self, alpha: float, beta: float) -> tuple[PETSc.Mat, PETSc.Mat]:
        """The operator ``α M + β K`` and a sparse matrix to build its preconditioner from."""
        ...

    def factor(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``Ξ`` (n × L), the weights ``C`` (L,) and the rows ``P`` (rows × L)."""
        ...


class ImplicitSolve:
    """Solves ``(α M + β K) u = r`` with a KSP and fails loudly when it diverges."""

    def __init__(
        self,
        flow: LowRankFlow,
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
        checked_solve(self.ksp, rhs, u, where)


class RowStepper:
    """θ-method or BDF2 for all rows of a :class:`LowRankFlow`, as rank-``L`` updates."""

    def __init__(
        self,
        flow: LowRankFlow,
        dt: float,
        integrator: str = "theta",
        theta: float = 0.5,
        *,
        prefix: str = "rows_",
        pc_type: str = "cholesky",
    ) -> None:
        if integrator == "theta":
            if not 0.0 <= theta <= 1.0:
                raise ValueError(f"θ must lie in [0, 1], got {theta}")
            self.name, shifts = f"θ-method (θ = {theta:g})", [(1.0, theta * dt)]
        elif integrator == "bdf2":
            self.name, shifts = "BDF2", [(1.0, 0.5 * dt), (1.5, dt)]
        else:
            raise ValueError(f"integrator must be 'theta' or 'bdf2', got {integrator!r}")
        self.integrator, self.dt, self.steps = integrator, dt, 0
        self.xi, self.weights, self.targets = flow.factor()
        self._solves = [
            ImplicitSolve(flow, a, b, prefix=prefix, pc_type=pc_type) for a, b in shifts
        ]
        self._responses: list[np.ndarray | None] = [None] * len(shifts)
        self._previous: np.ndarray | None = None

    @property
    def previous(self) -> np.ndarray | None:
        """BDF2's rows one step back (``None`` before its first step and for the θ-method):
        with the rows themselves, the whole state of the scheme (a resumed run sets it)."""
        return self._previous

    @previous.setter
    def previous(self, rows: np.ndarray | None) -> None:
        self._previous = None if rows is None else np.array(rows, dtype=float)

    @property
    def ksps(self) -> list[PETSc.KSP]:
        """The KSPs of the implicit solves (θ: one; BDF2: its Crank–Nicolson start, then its
        own), to adjust their settings before the first step."""
        return [solve.ksp for solve in self._solves]

    def _response(self, k: int, where: str) -> np.ndarray:
        """``(α M + β K)⁻¹ Ξ`` of shift ``k`` (computed once)."""
        response = self._responses[k]
        if response is None:
            solve = self._solves[k]
            rhs, u = solve.vectors(2)
            columns = np.empty_like(self.xi)
            for l in range(self.xi.shape[1]):
                rhs.getArray()[:] = self.xi[:, l]
                solve(rhs, u, f"{where}, response {l}")
                columns[:, l] = u.getArray()
            response = self._responses[k] = columns
        return response

    def _update(self, base: np.ndarray, response: np.ndarray) -> np.ndarray:
        """``U_base − Δt (U_base Ξ − P) C Yᵀ``."""
        return base - self.dt * ((base @ self.xi - self.targets) * self.weights) @ response.T

    def step(self, rows: np.ndarray, t: float) -> None:
        """Advance every row of ``rows`` (owned rows × n, updated in place) by ``Δt``."""
        where = f"{self.name} step {self.steps + 1} (t = {t:.6g} → {t + self.dt:.6g})"
        if self.integrator == "theta" or self._previous is None:
            if self.integrator == "bdf2":
                self._previous = rows.copy()
            rows[:] = self._update(rows, self._response(0, where))
        else:
            start = (4.0 * rows - self._previous) / 3.0
            self._previous[:] = rows
            rows[:] = self._update(start, self._response(1, where))
        if not np.all(np.isfinite(rows)):
            raise RuntimeError(f"{where}: the fields became NaN or inf")
        self.steps += 1
