"""Where the digits route's error lies along the hidden layers: cell by cell, at the nodes.

The 1e-6 route of the digits problem (``accuracy_per_cost.py``, ``FEM p c=4 nodal jax`` at
``p = 12``: 49 nodes a hidden layer) is measured over its own nodes against the same route at
the reference degree.  Its error is the GLL rule's, ``O(ρ^{−2p})`` for the analytic fields,
with ``ρ`` set by the poles of ``tanh(z(x))`` nearest the cell.  A mesh graded towards the
cells with the nearest poles would pay only if their errors were far above the others': this
script prints, for every weight layer and its every hidden coordinate (the rows ``x`` of a
layer's output, the columns ``y`` of its input), the largest error over the nodes of each
cell, their spread (largest over smallest), and the error of the whole route at ``p − 2`` and
``p``, whose ratio is what two degrees more on every cell buy.  Run 24 in
benchmarks/README.md.

    python benchmarks/node_errors.py [--degree 12] [--reference 24] [--cells 4]
"""

from __future__ import annotations

import argparse

import numpy as np
from mpi4py import MPI  # first: it loads the MPI library that DOLFINx links against

# isort: split
from accuracy_per_cost import (  # benchmarks/, the script's directory
    ModelReference,
    error,
    solve_fem,
    user_scale_problems,
)

Array = np.ndarray


def route(config, degree: int, cells: int):
    """The digits route ``FEM p c=<cells> nodal jax`` at ``degree``, advanced to the end."""
    return solve_fem(config, degree, cells, "jax", "tensor", "nodal")


def cell_maxima(values: Array, points: Array, cells: int) -> Array:
    """The largest ``|values|`` over the nodes of each cell (a vertex counts in both cells)."""
    x = points[:, 0]
    maxima = np.zeros(cells)
    for c in range(cells):
        inside = (x >= c / cells - 1e-12) & (x <= (c + 1) / cells + 1e-12)
        maxima[c] = np.abs(values[inside]).max()
    return maxima


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--degree", type=int, default=12)
    parser.add_argument("--reference", type=int, default=24)
    parser.add_argument("--cells", type=int, default=4)
    parser.add_argument("--smoke", action="store_true", help="degrees 4 and 6 to t = 0.02")
    args = parser.parse_args()
    config = user_scale_problems()["digits"].config
    if args.smoke:
        args.degree, args.reference = 4, 6
        config = config.replace(training={"t_end": 0.02})
    reference = ModelReference(route(config, args.reference, args.cells))
    print(
        f"digits to t = {config.training.steps * config.training.dt:g}: FEM p c={args.cells} "
        f"nodal jax at its nodes against p = {args.reference}"
    )
    totals = {}
    for degree in (args.degree - 2, args.degree):
        model = route(config, degree, args.cells)
        nodes = model.node_lattice()
        own, ref = ModelReference(model).fields(nodes), reference.fields(nodes)
        totals[degree] = error(own, ref)
        if degree != args.degree:
            continue
        for m in range(len(own.w)):
            difference = np.abs(own.w[m] - ref.w[m])
            for axis, side, layer in ((1, "rows x", m + 1), (0, "columns y", m)):
                coords = nodes.layers[layer]
                if coords.layout != "line":
                    continue
                maxima = cell_maxima(difference.max(axis=axis), coords.points, args.cells)
                cells = "  ".join(f"{v:.2e}" for v in maxima)
                spread = maxima.max() / maxima.min()
                print(f"  layer {m} w, {side:>9}: by cell {cells}   spread {spread:.1f}")
    coarse, fine = totals[args.degree - 2], totals[args.degree]
    print(
        f"  whole route: p = {args.degree - 2} {coarse:.3e}, p = {args.degree} {fine:.3e} "
        f"(two degrees on every cell: {coarse / fine:.1f}x)"
    )


if __name__ == "__main__":
    if MPI.COMM_WORLD.size != 1:
        raise SystemExit("node_errors.py runs on one rank")
    main()
