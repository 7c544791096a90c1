"""Apply the perceptron's data kernel ``A_h = Ξ diag(1/L) Ξᵀ``: factored versus dense.

``Ξ`` holds the load vectors ``ξ_l = ∫ X^l ψ_b dy`` of P1 elements with ``n`` dofs on
``[0, 1]``, ``X^l(y) = sin(π(l+1)y) + ½cos(πly)``. For every ``n`` and ``L`` the table gives the
median wall time of one ``y = A_h x`` (PETSc ``MatMult``), the bytes each representation stores
(factored: ``Ξ`` and ``c``, ``(n+1)·L`` doubles; dense: ``n²`` doubles) and their ratios. The
dense matrix is built only when it needs at most ``--dense-limit`` bytes; both products are
checked against each other.

    python benchmarks/kernel_apply.py [--sizes 1000 10000 100000] [--samples 3 10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from mpi4py import MPI  # first: it loads the MPI library that DOLFINx links against

# isort: split
from dolfinx import fem
from petsc4py import PETSc

import meshes
from continuum.fem.lowrank import LowRankKernel
from continuum.fields.perceptron import CellQuadrature, sample_values
from discrete.expressions import parse_expression

INPUTS = "sin(pi*(l+1)*y) + 0.5*cos(pi*l*y)"


def factored_kernel(dofs: int, samples: int) -> LowRankKernel:
    """``Ξ diag(1/L) Ξᵀ`` for P1 elements with ``dofs`` dofs (loads with 7 Gauss points/cell)."""
    space = fem.functionspace(meshes.interval(MPI.COMM_SELF, dofs - 1), ("Lagrange", 1))
    quadrature = CellQuadrature.on(space, 7)
    inputs = parse_expression(INPUTS, ("y", "l"))
    values = sample_values(lambda y, l: inputs(y=y, l=l), quadrature.points, samples)
    return LowRankKernel.from_columns(quadrature.loads(values), np.full(samples, 1.0 / samples))


def dense_kernel(kernel: LowRankKernel) -> PETSc.Mat:
    """The same kernel assembled into a sequential dense PETSc matrix (``n²`` doubles)."""
    factor = kernel.factor.getDenseArray()
    dense = PETSc.Mat().createDense([kernel.size, kernel.size], comm=MPI.COMM_SELF)
    dense.setUp()
    dense.getDenseArray()[:] = (factor * kernel.weights) @ factor.T
    dense.assemble()
    return dense


def median_apply_seconds(matrix: PETSc.Mat, x: PETSc.Vec, y: PETSc.Vec, budget: float) -> float:
    """Median wall time of ``matrix.mult(x, y)`` over repeats filling about ``budget`` seconds."""
    matrix.mult(x, y)
    start = time.perf_counter()
    matrix.mult(x, y)
    repeats = int(np.clip(budget / max(time.perf_counter() - start, 1e-9), 5, 2000))
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        matrix.mult(x, y)
        times[i] = time.perf_counter() - start
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--samples", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--dense-limit", type=float, default=3.2e9, help="bytes (n = 2e4)")
    parser.add_argument("--budget", type=float, default=0.5, help="seconds of repeats per case")
    args = parser.parse_args()

    columns = ("n", "L", "factored s", "dense s", "time ratio", "factored B", "dense B")
    widths = (7, 3, 10, 10, 10, 10, 12)
    header = " ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))
    header += "  memory ratio  max rel diff"
    print(header)
    print("-" * len(header))
    for dofs in args.sizes:
        for samples in args.samples:
            kernel = factored_kernel(dofs, samples)
            factored = kernel.matrix()
            x, y = factored.createVecs()
            x.setArray(np.random.default_rng(0).standard_normal(dofs))
            factored_time = median_apply_seconds(factored, x, y, args.budget)
            dense_bytes = dofs**2 * np.dtype(PETSc.ScalarType).itemsize
            memory = f"{dense_bytes / kernel.nbytes:>12.0f}"
            if dense_bytes > args.dense_limit:
                cells = (
                    dofs,
                    samples,
                    f"{factored_time:.3e}",
                    "-",
                    "-",
                    kernel.nbytes,
                    dense_bytes,
                )
                tail = f"  {memory}  skipped (would need {dense_bytes / 1e9:.0f} GB)"
            else:
                dense = dense_kernel(kernel)
                y_dense = y.duplicate()
                dense_time = median_apply_seconds(dense, x, y_dense, args.budget)
                dense.destroy()
                factored.mult(x, y)
                difference = np.abs(y.getArray() - y_dense.getArray()).max()
                difference /= np.abs(y_dense.getArray()).max()
                cells = (
                    dofs,
                    samples,
                    f"{factored_time:.3e}",
                    f"{dense_time:.3e}",
                    f"{dense_time / factored_time:.1f}",
                    kernel.nbytes,
                    dense_bytes,
                )
                tail = f"  {memory}  {difference:>12.1e}"
            print(" ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)) + tail)


if __name__ == "__main__":
    main()
