"""The quadrature rule of the Galerkin fields: exact enough for the data and activation terms.

Every load of a Galerkin network (docs/physics.md, "Galerkin fields") integrates a function
that is not a polynomial against the basis: the data ``∫ ψ_b X^l dy`` and ``∫ φ_a Y^l dx``,
the activities ``η_b = ∫ ψ_b σ(z_h) dy`` and the back-propagated ``∫ φ_a σ'(z_h) (…) dx``.
The Gauss rule of degree ``q`` on every cell of every factor space is chosen by a check at
the initial coefficients ``θ_0``: starting from ``q = 2p`` (the coarsest rule exact for the
mass matrix ``∫ φ_a φ_b``), raise ``q`` by 2 until the cost and the Riesz
gradient ``M⁻¹ δC/δθ`` computed with rules ``q`` and ``q + 2`` agree to a relative
tolerance ``τ`` (max norm over all ranks; ``[continuum] quadrature_tolerance``, default
:data:`QUADRATURE_TOLERANCE`); the difference bounds the error of rule ``q``, which is the one
kept.

The tolerance needs to lie only a decade or two below the FE error the run aims at, not at
rounding: the quadrature error of the loads enters the flow as a perturbation of the force of
relative size ``≤ τ`` (at ``θ_0``; the fields stay smooth along the flow), so the fields move
by ``O(τ)`` relative to the exactly integrated Galerkin flow, on top of an FE error that is
larger by construction.  Every hidden layer evaluates ``σ``, ``σ'`` and the tabulation at all
``n_q`` Gauss points for every sample, so a gradient costs in proportion to ``n_q``, not to
the DOFs: on the deep-tanh problem of 256 samples, p = 5 on 4 cells, τ = 1e-8 instead of
1e-12 takes the rule from q = 16 (9 points per cell) to q = 12 (7 points), with the fields'
error unchanged to 4 digits (benchmarks/README.md, "FEM cost per gradient").  With the default
tolerance the check ends where it did when it started from ``2p + 2``: it passes ``2p`` only
where rules ``2p`` and ``2p + 2`` agree to 1e-12 already.

For smooth integrands the Gauss error falls like ``ρ^{-2k}`` with ``k`` points per cell, twice
as fast in ``p`` as the FE error, so the check settles after a few raises.  A non-smooth
activation (``relu``) has kinks inside the cells: no Gauss rule converges faster than ``O(h²)``
there, the check would not settle, and the default rule ``2p + 2`` is kept (its order loss is
documented in docs/convergence.md).

The check builds the fields three to five times, a few milliseconds per model.  Its outcome is
a function of what the fields are built from (network, coordinates, data, initial fields,
degree, mesh, input layer, number of ranks) and of the tolerance; given that *fingerprint* and
tolerance, the degree it chose is kept for the rest of the process, and fields built again from
the same fingerprint with the same tolerance get that rule without the check
(:data:`VERIFIED_RULES`).  A rule is recorded only once the check has
verified it; fields with another fingerprint are checked afresh.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Protocol

import numpy as np
from mpi4py import MPI

from continuum.fem.spaces import FactorSpace, IndexSpace

Array = np.ndarray

QUADRATURE_TOLERANCE = 1e-12
"""Default relative change of the cost and of the initial Riesz gradient below which the rule
of degree ``q`` is kept (its difference to rule ``q + 2``): the data and activation integrals
to near rounding, whatever the FE error."""

QUADRATURE_RAISES = 16
"""Most raises of ``q`` by 2 beyond ``2p + 2`` (one more from ``2p``) before the check gives up."""


VERIFIED_RULES: dict[tuple[Hashable, float], int] = {}
"""The Gauss rule degree the check has chosen in this process, by the fingerprint of the
fields it was chosen for and the tolerance it was checked to (:func:`converged_quadrature`)."""


class Fields(Protocol):
    """What the check needs of the fields (a Galerkin network, dense or unit-cell, or the
    depth continuum of a residual network)."""

    comm: MPI.Comm

    def gradient(self, theta: Array) -> tuple[float, Array]: ...


def with_quadrature(
    spaces: list[FactorSpace | IndexSpace], degree: int
) -> list[FactorSpace | IndexSpace]:
    """The spaces with Gauss rules of ``degree`` (layers that share a space keep sharing one)."""
    changed: dict[int, FactorSpace] = {}
    out: list[FactorSpace | IndexSpace] = []
    for space in spaces:
        if isinstance(space, FactorSpace):
            if id(space) not in changed:
                changed[id(space)] = space.with_quadrature(degree)
            out.append(changed[id(space)])
        else:
            out.append(space)
    return out


def converged_quadrature[F: Fields](
    build: Callable[[int], F],
    initial: Callable[[F], Array],
    degree: int,
    smooth: bool,
    fingerprint: Hashable | None = None,
    tolerance: float = QUADRATURE_TOLERANCE,
) -> F:
    """The fields ``build(q)`` with the coarsest rule ``q ≥ 2p`` (step 2) whose cost and
    Riesz gradient at ``θ_0 = initial(fields)`` agree with those of ``build(q + 2)`` to
    ``tolerance`` relative; ``build(2p + 2)`` for a non-smooth activation.

    With a ``fingerprint`` (hashable, equal for fields built from equal inputs) the verified
    ``q`` is recorded in :data:`VERIFIED_RULES` under ``(fingerprint, tolerance)``, and a later
    call with an equal fingerprint and tolerance returns ``build(q)`` at once."""
    key = (fingerprint, tolerance)
    if fingerprint is not None and key in VERIFIED_RULES:
        return build(VERIFIED_RULES[key])
    if not smooth:
        return build(2 * degree + 2)
    first = build(2 * degree)  # the coarsest rule that integrates the mass matrix exactly
    theta0 = initial(first)
    built = {2 * degree: first}

    def evaluate(q: int) -> tuple[F, Array]:
        fields = built.pop(q) if q in built else build(q)
        return fields, _values(fields, theta0)

    q, fields = settled_rule(evaluate, 2 * degree, 2, first.comm, tolerance)
    if fields is None:
        raise ValueError(
            unsettled(degree, "data and activation integrals at the initial fields", q, tolerance)
        )
    if fingerprint is not None:
        VERIFIED_RULES[key] = q
    return fields


def settled_rule[T](
    evaluate: Callable[[int], tuple[T, Array]],
    first: int,
    step: int,
    comm: MPI.Comm,
    tolerance: float,
) -> tuple[int, T | None]:
    """The coarsest rule ``q = first, first + step, …`` whose values ``evaluate(q)[1]`` agree
    with those of ``q + step`` to ``tolerance`` relative (max norm over the ranks of ``comm``),
    and what ``evaluate(q)[0]`` built with it; ``(q, None)`` with the last rule tried when
    none settles within :data:`QUADRATURE_RAISES` + 1 raises.  The check of the Galerkin
    fields' rule and of the perceptron's data moments."""
    q = first
    coarse, values = evaluate(q)
    for _ in range(QUADRATURE_RAISES + 1):
        fine, fine_values = evaluate(q + step)
        change = comm.allreduce(float(np.abs(fine_values - values).max(initial=0.0)), op=MPI.MAX)
        scale = comm.allreduce(float(np.abs(fine_values).max(initial=0.0)), op=MPI.MAX)
        if change <= tolerance * scale:
            return q, coarse
        coarse, values, q = fine, fine_values, q + step
    return q, None


def unsettled(degree: int, integrals: str, rule: int, tolerance: float) -> str:
    """The message of a check whose Gauss rules did not settle, up to degree ``rule``."""
    return (
        f"[continuum] degree = {degree}: the {integrals} do not converge "
        f"with Gauss rules up to degree {rule} (relative change above [continuum] "
        f"quadrature_tolerance = {tolerance:g}); check that [data] input, target and [init] "
        "are smooth and integrable, refine [continuum] cells (for data that vary many times "
        "per cell), or raise the tolerance (for data with kinks)"
    )


def _values(fields: Fields, theta: Array) -> Array:
    """The cost and the Riesz gradient at ``theta`` as one vector."""
    cost, grad = fields.gradient(theta)
    return np.concatenate([[cost], grad])
