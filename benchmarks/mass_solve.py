"""The Riesz map ``M⁻¹ b`` of an interval space: dense inverse, SuperLU, condensed blocks.

For Lagrange spaces of degree ``p`` on ``C`` interval cells (``n = C p + 1`` DOFs) and ``k``
columns, side by side in one run on one core (best of repeats):

* ``dense``: the product with the dense inverse (what a space up to
  :data:`continuum.fem.spaces.DENSE_INVERSE_SIZE` DOFs holds);
* ``superlu``: SciPy's SuperLU solve of the assembled mass matrix;
* ``cells``: the static condensation with blocks of one cell
  (:meth:`continuum.fem.spaces.FactorSpace.condensed` with ``p − 1`` interior DOFs a block);
* ``blocks``: the same with the blocks :func:`~continuum.fem.condensation.cells_per_block` picks;

and what :func:`continuum.fem.spaces.condensed_is_faster` picks below the dense size, with
whether it is the faster of ``dense`` and ``blocks`` (``ok``) and by how much the wrong pick
loses (``slower``).  ``--fine``: the same on finer meshes, 1025–16 385 DOFs.  ``--sweep``: the
condensed solve at n = 513 (n = 385 at P12) and 300 columns for every bound on a block's
interior DOFs of :data:`SWEEP` (the choice of
:data:`~continuum.fem.condensation.BLOCK_INTERIOR`).

    OPENBLAS_NUM_THREADS=1 python benchmarks/mass_solve.py [--repeats 9] [--sweep | --fine]
        [--smoke]
"""

from __future__ import annotations

import one_core  # benchmarks/: one core, as `synfield` runs a rank, before numpy loads

# isort: split

import argparse
import os
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from mpi4py import MPI

from continuum.fem import condensation
from continuum.fem.spaces import DENSE_INVERSE_SIZE, FactorSpace, as_dense, condensed_is_faster
from discrete.allocator import retain_freed_memory
from meshes import interval

SPACES = [(1, 512), (2, 32), (2, 64), (2, 128), (2, 256), (4, 32), (4, 64), (4, 128)]
SPACES += [(8, 8), (8, 16), (8, 32), (8, 48), (8, 64), (12, 16), (12, 32)]
COLUMNS = (1, 3, 30, 300)
SWEEP = (1, 3, 7, 11, 15, 23, 31, 63)
FINE = [(1, 1024), (2, 1024), (8, 256), (2, 4096), (4, 4096), (1, 16384)]
DENSE_LIMIT = 2049
"""No dense inverse is formed above this many DOFs (``--fine``: its row reads ``nan``)."""


def best_ms(run: Callable[[], object], repeats: int, calls: int = 20) -> float:
    """Best over ``repeats`` of the mean time of ``calls`` calls, in ms."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        best = min(best, (time.perf_counter() - start) / calls)
    return 1e3 * best


def sweep(spaces: list[tuple[int, int]], repeats: int) -> None:
    """The condensed solve on 300 columns for every bound of :data:`SWEEP` that changes the
    blocks of ``spaces``."""
    print(f"{'space':>10} {'n':>5}  solve (ms) by the interior DOFs of a block")
    for degree, cells in spaces:
        space = FactorSpace(interval(MPI.COMM_SELF, cells), degree)
        b = np.random.default_rng(0).standard_normal((space.size, 300))
        times = {}
        for bound in SWEEP:
            solver = space.condensed(bound)
            interior = solver.interior.shape[1]
            if interior not in times:
                times[interior] = best_ms(partial(solver.solve, b), repeats)
        row = "  ".join(f"{i}: {t:.3f}" for i, t in times.items())
        print(f"{f'P{degree}x{cells}':>10} {space.size:>5}  {row}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--sweep", action="store_true", help="the block size, not the rule")
    parser.add_argument("--fine", action="store_true", help="1025–16 385 DOFs, 1–256 columns")
    parser.add_argument("--smoke", action="store_true", help="two small spaces, one repeat")
    args = parser.parse_args()
    repeats = 1 if args.smoke else args.repeats
    retain_freed_memory()
    load = os.getloadavg()[0]
    print(
        f"M⁻¹ b on cores {sorted(one_core.CORES)}, load average {load:.2f}, best of {repeats},"
        " times in ms"
    )
    if args.sweep:
        big = [(2, 256), (4, 128), (8, 64), (12, 32)]
        sweep([(2, 16), (8, 4)] if args.smoke else big, repeats)
        return
    spaces = [(2, 8), (8, 4)] if args.smoke else FINE if args.fine else SPACES
    columns = (1, 3, 30, 256) if args.fine else COLUMNS
    print(
        f"{'space':>10} {'n':>5} {'k':>4} {'dense':>7} {'superlu':>7} {'cells':>7} "
        f"{'blocks':>7} {'g':>3}  rule"
    )
    for degree, cells in spaces:
        space = FactorSpace(interval(MPI.COMM_SELF, cells), degree)
        mass = sp.csc_matrix(space.mass)
        inverse = np.linalg.inv(as_dense(space.mass)) if space.size <= DENSE_LIMIT else None
        lu = spla.splu(mass)
        single, grouped = space.condensed(degree - 1), space.condensed()
        g = condensation.cells_per_block(cells, degree)
        for k in columns:
            b = np.random.default_rng(k).standard_normal((space.size, k))
            assert np.abs(grouped.solve(b) - lu.solve(b)).max() < 1e-10 * np.abs(b).max()
            times = [
                np.nan if inverse is None else best_ms(partial(np.matmul, inverse, b), repeats),
                best_ms(partial(lu.solve, b), repeats),
                best_ms(partial(single.solve, b), repeats),
                best_ms(partial(grouped.solve, b), repeats),
            ]
            rule = "condensed above the dense size"
            if space.size <= DENSE_INVERSE_SIZE:
                picks = condensed_is_faster(space.size, degree, k)
                faster = times[3] < times[0]
                loss = max(times[0], times[3]) / min(times[0], times[3])
                verdict = "ok" if picks == faster else f"slower {loss:.2f}x"
                rule = f"{'condensed' if picks else 'dense'} ({verdict})"
            cells_text = f"P{degree}x{cells}"
            print(
                f"{cells_text:>10} {space.size:>5} {k:>4} "
                + " ".join(f"{t:7.3f}" for t in times)
                + f" {g:>3}  {rule}"
            )


if __name__ == "__main__":
    main()
