"""The rows of a coefficient array split over the MPI ranks (docs/parallel-and-output.md).

A weight field's coefficients in ``V_out ⊗ V_in`` are distributed by their output factor:
of ``n`` rows, rank ``r`` holds the ``r``-th contiguous block of ``numpy.array_split``.  A
product ``W x`` then yields this rank's rows of the result, replicated on every rank by an
``Allgatherv`` (:meth:`RowPartition.gather`); a product ``Wᵀ y`` over the rows is a partial sum,
completed by an ``Allreduce`` (:func:`sum_over_ranks`).  Communication is ``O(n·L)`` per product
for ``L`` columns, work ``O(n_out·n_in·L/P)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

Array = np.ndarray


@dataclass(frozen=True)
class RowPartition:
    """Contiguous blocks of ``n`` rows, ``counts[r]`` of them on rank ``r``."""

    comm: MPI.Comm
    counts: Array

    @classmethod
    def of(cls, n: int, comm: MPI.Comm) -> RowPartition:
        """The blocks of ``numpy.array_split(range(n), P)``: the first ``n mod P`` ranks hold
        ``⌊n/P⌋ + 1`` rows, the others ``⌊n/P⌋`` (computed, not split: this runs in every
        gradient)."""
        size = comm.size
        counts = np.full(size, n // size)
        counts[: n % size] += 1
        return cls(comm, counts)

    @property
    def rows(self) -> slice:
        """This rank's rows."""
        start = int(self.counts[: self.comm.rank].sum())
        return slice(start, start + int(self.counts[self.comm.rank]))

    @property
    def size(self) -> int:
        """The number of rows on this rank."""
        return int(self.counts[self.comm.rank])

    def gather(self, local: Array, axis: int = 0) -> Array:
        """All rows of an array distributed along ``axis`` (``Allgatherv``), on every rank."""
        if self.comm.size == 1:
            return local
        moved = np.ascontiguousarray(np.moveaxis(local, axis, 0))
        tail = moved.shape[1:]
        out = np.empty((int(self.counts.sum()), *tail))
        self.comm.Allgatherv(moved, [out, self.counts * int(np.prod(tail, dtype=int))])
        return np.moveaxis(out, 0, axis)

    def take(self, full: Array, axis: int = 0) -> Array:
        """This rank's rows of an array holding all of them along ``axis``."""
        index = [slice(None)] * full.ndim
        index[axis] = self.rows
        return full[tuple(index)]


def sum_over_ranks(comm: MPI.Comm, a: Array) -> Array:
    """``Σ_r a_r`` on every rank (``Allreduce``)."""
    if comm.size == 1:
        return a
    send = np.ascontiguousarray(a)  # the receive buffer has the same (C) layout
    out = np.empty_like(send)
    comm.Allreduce(send, out)
    return out
