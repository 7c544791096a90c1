"""How the Galerkin fields' work is split over the MPI ranks: by rows or by samples.

One gradient of the Galerkin network (:mod:`continuum.fields.galerkin`) is a sum over the ``L``
samples of its batch (the ``L`` columns of every moment, pre-activation and back-propagated
load) of rank-one products ``(M⁻¹ d^l)(M⁻¹ η^l)ᵀ`` (docs/physics.md, "Galerkin fields").
It can be split over ``P`` ranks two ways (docs/parallel-and-output.md, "Rows or samples"):

* ``rows``: the rows of every coefficient matrix ``W^(m)`` (the output factor, ``n_{m+1}``
  rows) over the ranks, every rank all ``L`` samples.  Per gradient and layer an
  ``Allgatherv`` of ``z`` (``n_{m+1} × L``) and an ``Allreduce`` of ``Wᵀ d`` (``n_m × L``);
  the products with ``W`` are split, the quadrature and activation work (``n_q × L`` per
  layer) is done on every rank.
* ``samples``: the coefficients ``θ`` replicated, the columns of the batch split; each rank
  runs the forward and backward passes of its samples, and one ``Allreduce`` sums the
  gradient (``Σ_m n_{m+1} n_m`` weights and the biases) and the cost.  All the work is split.

``auto`` (the default of ``[continuum] distribute``) takes ``samples`` when the scheme
distributes samples (:attr:`continuum.models.registry.Entry.samples`) and the columns of one
gradient — ``L``, or the batch of an SGD step — are at least the largest dimension
``n_max`` of the factor spaces.  Then ``n_{m+1} n_m ≤ max(n_{m+1}, n_m)·(n_{m+1} + n_m)/2
≤ L (n_{m+1} + n_m)/2`` for every layer: the one reduction of the gradient moves at most
half the numbers that the row exchanges move, and the replicated quadrature work is split
as well.  Otherwise (few samples on fine meshes, as the smooth toy data sets) ``rows``.

Both give the same fields up to the order of the sums over ranks (rounding).
"""

from __future__ import annotations

DISTRIBUTIONS = ("auto", "rows", "samples")
"""The choices of ``[continuum] distribute``: the rule of :func:`choose`, or one split."""


def choose(requested: str, columns: int, largest: int, samples_allowed: bool) -> str:
    """The distribution that runs for ``[continuum] distribute = requested``: ``columns``
    samples per gradient, ``largest`` the largest factor space dimension ``n_max``.

    Raises:
        ValueError: ``samples`` requested where the scheme does not distribute samples (the
            registry refuses that combination when the configuration is loaded).
    """
    if requested == "auto":
        return "samples" if samples_allowed and columns >= largest else "rows"
    if requested not in DISTRIBUTIONS:
        raise ValueError(f"distribute must be one of {', '.join(DISTRIBUTIONS)}")
    if requested == "samples" and not samples_allowed:
        raise ValueError("[continuum] distribute = 'samples': this scheme splits rows only")
    return requested


def describe(distribution: str, requested: str, ranks: int, columns: int, largest: int) -> str:
    """The run-header line naming the split, the sizes the rule compared, and the key."""
    what = {
        "rows": "each rank its share of the rows of every weight block",
        "samples": "each rank its share of the samples of every batch",
    }
    return (
        f"continuum on {ranks} MPI rank(s), distributed by {distribution}: {what[distribution]} "
        f"([continuum] distribute = {requested!r}: {columns} samples per gradient, "
        f"largest factor space {largest})"
    )
