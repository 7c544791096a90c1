"""Achieved memory bandwidth of the factored kernel apply against a STREAM-like copy bound.

In one run:

* ``copy``: ``numpy.copyto(b, a)`` of a large array (``--copy-mb`` MB, far beyond the caches),
  on one thread and on all cores (one slice per thread; numpy releases the GIL);
  bandwidth = 2 × bytes of ``a`` (read ``a``, write ``b``; STREAM's convention, write-allocate
  traffic not counted) / median time. The larger of the two is the bound;
* ``read``: ``a.sum()`` (read-only streaming; printed for reference);
* the perceptron's data kernel ``K = Ξ diag(c) Ξᵀ`` (:mod:`continuum.fem.lowrank`, P1 load vectors
  as in ``benchmarks/kernel_apply.py``) applied once, ``y = K x``: synfield's operator (a PETSc
  ``python`` matrix whose two passes are BLAS ``gemv`` on the column-major factor, on the
  process's BLAS threads), and PETSc's ``MATLRC`` on the same factor (one thread) for
  comparison; both are checked against numpy's ``Ξ @ (c * (Ξᵀ @ x))``.

Bytes per apply: the compulsory traffic, factors once plus the vectors,
``(n·L + L + 2n)·8`` B (read ``Ξ``, ``c``, ``x``; write ``y``). The factored apply reads ``Ξ``
twice (``Ξᵀ x``, then ``Ξ v``), so its traffic is ``(2n·L + L + 2n)·8`` B unless ``Ξ`` stays
in cache between the two passes; both are printed, and "in L3" marks cases whose compulsory
bytes fit in this machine's 32 MiB L3 (those may beat the DRAM copy bound). ``Ξ`` is built in
numpy (:func:`p1_load_columns`, checked against the DOLFINx loads) because a DOLFINx mesh of
10⁷ cells takes minutes to create. ``ratio`` = copy bandwidth / achieved bandwidth (compulsory
bytes): the target is that the factored apply comes within 3× of the bound (``ratio ≤ 3``) on
out-of-cache sizes. The verdict is printed twice: counting the compulsory bytes, and counting
the bytes the product streams (``Ξ`` twice), whose achieved bandwidth is the memory system's.

    python benchmarks/bandwidth.py [--sizes 100000 1000000 10000000] [--samples 3 10]
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from mpi4py import MPI  # first: it loads the MPI library that DOLFINx links against

# isort: split
from petsc4py import PETSc

from continuum.fem.lowrank import LowRankKernel
from discrete.expressions import parse_expression

# isort: split
from kernel_apply import INPUTS, factored_kernel  # same folder (benchmarks/)

L3_BYTES = 32 * 2**20


def p1_load_columns(dofs: int, samples: int, points: int = 7) -> np.ndarray:
    """``Ξ``: P1 load vectors ``∫ X^l φ_j dy`` on ``dofs − 1`` equal cells of [0, 1], in numpy.

    The same columns as :func:`kernel_apply.factored_kernel` (up to DOLFINx's dof numbering),
    without building a DOLFINx mesh (which takes about 11 s per 10⁶ cells).
    """
    cells = dofs - 1
    h = 1.0 / cells
    ref, ref_w = np.polynomial.legendre.leggauss(points)
    ref, ref_w = (ref + 1) / 2, ref_w / 2
    inputs = parse_expression(INPUTS, ("y", "l"))
    columns = np.zeros((dofs, samples))
    for l in range(samples):
        y = (np.arange(cells)[:, None] + ref[None, :]) * h
        f = np.broadcast_to(inputs(y=y, l=l), y.shape) * (ref_w * h)[None, :]
        columns[:-1, l] += f @ (1.0 - ref)
        columns[1:, l] += f @ ref
    return columns


def numpy_kernel(dofs: int, samples: int) -> LowRankKernel:
    return LowRankKernel.from_columns(
        p1_load_columns(dofs, samples), np.full(samples, 1.0 / samples)
    )


def matrix_lrc(kernel: LowRankKernel) -> PETSc.Mat:
    """PETSc's ``MATLRC`` ``Ξ diag(c) Ξᵀ`` on the kernel's factor (one thread)."""
    weights = PETSc.Vec().createSeq(kernel.rank, comm=MPI.COMM_SELF)
    weights.setArray(kernel.weights)
    operator = PETSc.Mat().createLRC(None, kernel.factor, weights, None)
    operator.setUp()
    return operator


def check_against_dolfinx(dofs: int = 10_000, samples: int = 3) -> float:
    """Relative difference of the Gram matrices ``ΞᵀΞ`` (invariant under dof renumbering)."""
    a = factored_kernel(dofs, samples).factor.getDenseArray()
    b = p1_load_columns(dofs, samples)
    return float(np.abs(a.T @ a - b.T @ b).max() / np.abs(a.T @ a).max())


def median_seconds(run, budget: float, least: int = 5, most: int = 500) -> float:
    run()
    start = time.perf_counter()
    run()
    once = max(time.perf_counter() - start, 1e-9)
    repeats = int(np.clip(budget / once, least, most))
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        run()
        times[i] = time.perf_counter() - start
    return float(np.median(times))


def stream(megabytes: float, budget: float, threads: int) -> tuple[float, float, float]:
    """Copy (one thread), copy (``threads`` threads on slices) and read bandwidths in B/s."""
    n = int(megabytes * 1e6 / 8)
    a = np.random.default_rng(0).standard_normal(n)
    b = np.empty_like(a)
    copy = median_seconds(lambda: np.copyto(b, a), budget)
    read = median_seconds(lambda: a.sum(), budget)
    bounds = np.linspace(0, n, threads + 1).astype(int)
    parts = [(b[i:j], a[i:j]) for i, j in itertools.pairwise(bounds)]
    with ThreadPoolExecutor(threads) as pool:  # numpy releases the GIL while copying

        def parallel() -> None:
            list(pool.map(lambda p: np.copyto(*p), parts))

        copy_threads = median_seconds(parallel, budget)
    return 2 * a.nbytes / copy, 2 * a.nbytes / copy_threads, a.nbytes / read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--samples", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--copy-mb", type=float, default=800.0)
    parser.add_argument("--budget", type=float, default=1.0, help="seconds of repeats per case")
    args = parser.parse_args()

    print(
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; one MPI rank; "
        f"PETSc/numpy BLAS threads as configured (OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')})"
    )
    print(
        f"factor check: Gram matrix of the numpy P1 loads vs DOLFINx's (n = 10⁴): "
        f"rel. diff {check_against_dolfinx():.1e}"
    )
    copy_1, copy_p, read_bw = stream(args.copy_mb, args.budget, os.cpu_count() or 1)
    copy_bw = max(copy_1, copy_p)
    print(
        f"copy  bandwidth ({args.copy_mb:.0f} MB arrays): {copy_1 / 1e9:6.2f} GB/s one thread, "
        f"{copy_p / 1e9:6.2f} GB/s {os.cpu_count()} threads  (2 x bytes / time); "
        f"bound used: {copy_bw / 1e9:.2f} GB/s"
    )
    print(f"read  bandwidth ({args.copy_mb:.0f} MB array):  {read_bw / 1e9:6.2f} GB/s  (a.sum())")
    print()
    cols = ("n", "L", "Ξ MB", "synfield s", "GB/s", "ratio", "2-pass GB/s")
    cols += ("MATLRC s", "GB/s", "ratio")
    widths = (9, 3, 8, 10, 7, 6, 12, 10, 7, 6)
    header = " ".join(f"{c:>{w}}" for c, w in zip(cols, widths, strict=True))
    print(header + "  in L3")
    print("-" * (len(header) + 7))
    results = []
    for n in args.sizes:
        for L in args.samples:
            kernel = numpy_kernel(n, L)
            matrix, lrc = kernel.matrix(), matrix_lrc(kernel)
            x, y = matrix.createVecs()
            x.setArray(np.random.default_rng(1).standard_normal(n))
            xi, c, xa = kernel.factor.getDenseArray(), kernel.weights, x.getArray()
            expected = xi @ (c * (xi.T @ xa))
            seconds = []
            for m in (matrix, lrc):
                seconds.append(median_seconds(lambda m=m, x=x, y=y: m.mult(x, y), args.budget))
                check = np.abs(y.getArray() - expected).max() / np.abs(expected).max()
                assert check < 1e-12, check
            t_petsc, t_numpy = seconds
            compulsory = (n * L + L + 2 * n) * 8
            two_pass = (2 * n * L + L + 2 * n) * 8
            bw_p, bw_n = compulsory / t_petsc, compulsory / t_numpy
            cells = (
                n,
                L,
                f"{n * L * 8 / 1e6:.1f}",
                f"{t_petsc:.3e}",
                f"{bw_p / 1e9:.2f}",
                f"{copy_bw / bw_p:.2f}",
                f"{two_pass / t_petsc / 1e9:.2f}",
                f"{t_numpy:.3e}",
                f"{bw_n / 1e9:.2f}",
                f"{copy_bw / bw_n:.2f}",
            )
            in_l3 = "yes" if compulsory < L3_BYTES else "no"
            print(" ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)) + f"  {in_l3}")
            results.append((n, L, copy_bw / bw_p, copy_bw * t_petsc / two_pass, in_l3))
            matrix.destroy()
            lrc.destroy()
    print()
    out_of_cache = [r for r in results if r[4] == "no"]
    if not out_of_cache:
        print("target (ratio <= 3 out of cache): no out-of-cache size measured")
        return
    for column, bytes_counted in (
        (2, "the compulsory bytes (Ξ once)"),
        (3, "the bytes the product streams (Ξ twice)"),
    ):
        worst = max(out_of_cache, key=lambda r: r[column])
        verdict = "MET" if worst[column] <= 3 else "MISSED"
        print(
            f"target: factored apply within 3x of the copy bound on out-of-cache sizes, counting "
            f"{bytes_counted}: worst ratio {worst[column]:.2f} (n = {worst[0]}, L = {worst[1]}): "
            f"{verdict}"
        )


if __name__ == "__main__":
    main()
