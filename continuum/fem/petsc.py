"""PETSc solver diagnostics: one table of converged reasons, one checked linear solve.

Every PETSc solve in synfield ends in :func:`reason_name` when it fails, so a diverged KSP,
SNES or TS is reported by its PETSc name (``DIVERGED_ITS``, ``DIVERGED_MAX_IT``, …) with the
code, and :func:`checked_solve` is the one linear solve that raises instead of returning a
wrong answer.
"""

from __future__ import annotations

import mpi4py.MPI  # noqa: F401  first: it loads the MPI library that PETSc links against

# isort: split
from petsc4py import PETSc

Solver = PETSc.KSP | PETSc.SNES | PETSc.TS

_SOLVERS: dict[str, type[Solver]] = {"KSP": PETSc.KSP, "SNES": PETSc.SNES, "TS": PETSc.TS}
_REASONS = {
    kind: {
        code: name
        for name, code in vars(solver.ConvergedReason).items()
        if isinstance(code, int) and not name.startswith("_")
    }
    for kind, solver in _SOLVERS.items()
}


def reason_name(kind: str, code: int) -> str:
    """The PETSc name of a converged reason of a ``kind`` solver (``"KSP"``, ``"SNES"``,
    ``"TS"``), e.g. ``reason_name("KSP", -3) == "DIVERGED_ITS"``; ``UNKNOWN`` otherwise."""
    return _REASONS[kind].get(code, "UNKNOWN")


def converged_reason(solver: Solver) -> int:
    """The converged reason code of ``solver``'s last solve (negative: diverged); petsc4py
    returns the ``int``, which its stubs name by the ``ConvergedReason`` class."""
    return solver.getConvergedReason()  # type: ignore[return-value]


def checked_solve(ksp: PETSc.KSP, rhs: PETSc.Vec, u: PETSc.Vec, where: str) -> None:
    """Solve ``A u = rhs`` with ``ksp``; a diverged solve raises :class:`RuntimeError` naming
    ``where``, the reason and the iteration count."""
    ksp.solve(rhs, u)
    reason = converged_reason(ksp)
    if reason < 0:
        raise RuntimeError(
            f"{where}: the linear solve (PETSc KSP {ksp.getType()}) diverged with reason "
            f"{reason_name('KSP', reason)} ({reason}) after {ksp.getIterationNumber()} "
            "iterations"
        )
