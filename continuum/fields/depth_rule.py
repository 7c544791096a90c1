"""Explicit Runge–Kutta rules of the depth ODE of a residual network's continuum
(``[continuum] depth_rule``; docs/convergence.md "Residual networks").

A rule is a Butcher tableau ``(A, b, c)``, ``A`` strictly lower triangular: one step ``δ`` of
``ṡ = f(τ, s)`` from ``τ_n`` is

    u_i = s_n + δ Σ_{j<i} a_ij f(τ_n + c_i δ, u_j),    s_{n+1} = s_n + δ Σ_i b_i f_i.

Its abscissae and weights ``(c, b)`` are a quadrature rule on the step, exact to degree
``order − 1`` (``Σ_i b_i c_i^{k−1} = 1/k``); the training flow's τ Riesz map of the stage
evaluations inherits that exactness (:class:`continuum.fields.residual.DepthFields`).

- ``"rk4"``: classical RK4, order 4, stages at ``c = 0, ½, ½, 1`` (Simpson's rule).
- ``"dop853"``: the order-8 Dormand–Prince tableau, its 12 stages of the propagating step
  (coefficients from SciPy's ``scipy.integrate.DOP853``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

Array = np.ndarray


@dataclass(frozen=True)
class ButcherTableau:
    """An explicit Runge–Kutta rule ``(A, b, c)`` of ``order``."""

    name: str
    order: int
    A: Array
    b: Array
    c: Array

    @property
    def stages(self) -> int:
        return len(self.b)

    def couplings(self, i: int) -> list[tuple[int, float]]:
        """The nonzero ``(j, a_ij)`` of stage ``i`` (``j < i``)."""
        return [(j, float(a)) for j, a in enumerate(self.A[i, :i]) if a != 0.0]

    def feedbacks(self, j: int) -> list[tuple[int, float]]:
        """The nonzero ``(i, a_ij)`` of the later stages ``i > j`` fed by stage ``j`` (the
        adjoint's couplings)."""
        return [(i, float(a)) for i, a in enumerate(self.A[:, j]) if i > j and a != 0.0]


def _rk4() -> ButcherTableau:
    A = np.zeros((4, 4))
    A[1, 0], A[2, 1], A[3, 2] = 0.5, 0.5, 1.0
    return ButcherTableau("rk4", 4, A, np.array([1, 2, 2, 1]) / 6, np.array([0, 0.5, 0.5, 1]))


def _dop853() -> ButcherTableau:
    from scipy.integrate import DOP853  # SciPy only where it is used

    return ButcherTableau("dop853", 8, DOP853.A.copy(), DOP853.B.copy(), DOP853.C.copy())


DEPTH_RULES = ("rk4", "dop853")
"""The choices of ``[continuum] depth_rule``."""


@functools.cache
def depth_rule(name: str) -> ButcherTableau:
    """The tableau of the rule ``name`` (one of :data:`DEPTH_RULES`)."""
    return {"rk4": _rk4, "dop853": _dop853}[name]()
