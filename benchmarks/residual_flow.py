"""One RK4 step of the depth continuum's flow: generic against factored forces, side by side.

The residual network of ``examples/resnet.toml`` (tanh; ``L = 3`` samples, or ``--samples``)
as its depth continuum with P2 spaces on ``cells`` cells in x and ``depth_cells`` cells in τ:
block fields of ``(2 depth_cells + 1)(2 cells + 1)²`` coefficients.  Each step is timed with
:class:`discrete.training.Flow` (each force formed as a vector, scaled by the rates and
combined whole) and with :class:`continuum.schemes.factored_flow.FactoredFlow` (the forces kept as
their stage factors, docs/physics.md "The factored force in depth"), from the same state,
best of repeats filling about ``--budget`` seconds; ``rel diff`` is the largest difference of
the two steps relative to ``max |θ|``.  The ratio fixes
``continuum.fields.residual.FACTORED_DEPTH_WIDTH``.

    python benchmarks/residual_flow.py [--cells 4 8 16 32 64 128] [--depth-cells 4 16]
        [--samples 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import numpy as np
from mpi4py import MPI  # first: it loads the MPI library that DOLFINx links against

# isort: split
from factored_flow import best_step_time  # benchmarks/, the script's directory

from continuum.fields.residual import FACTORED_DEPTH_WIDTH
from continuum.models.limit import continuum_model
from continuum.schemes.factored_flow import FactoredFlow
from continuum.settings import load_config
from discrete.experiment import build
from discrete.training import Flow

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[4, 8, 16, 32, 64, 128])
    parser.add_argument("--depth-cells", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--samples", type=int, nargs="+", default=[3])
    parser.add_argument("--budget", type=float, default=0.5, help="seconds of repeats per case")
    args = parser.parse_args()
    config = load_config(ROOT / "examples" / "resnet.toml")
    network = dataclasses.replace(config.network, widths=(8, 8, 8), depth=4)
    print(
        f"residual flow — {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, one "
        f"rank; resnet, P2; factored from n_x ≥ {FACTORED_DEPTH_WIDTH} max(L, 3)²"
    )
    header = (
        f"{'L':>3} {'cells':>6} {'depth_cells':>11} {'n_x':>5} {'block coeffs':>13} "
        f"{'generic s':>11} {'factored s':>11} {'ratio':>6}"
    )
    print(header + "  rel diff")
    print("-" * (len(header) + 10))
    cases = [(L, d, c) for L in args.samples for d in args.depth_cells for c in args.cells]
    for samples, depth_cells, cells in cases:
        continuum = dataclasses.replace(config.continuum, cells=cells, depth_cells=depth_cells)
        data = dataclasses.replace(config.data, samples=samples)
        setup = build(dataclasses.replace(config, network=network, data=data, continuum=continuum))
        model = continuum_model(setup, MPI.COMM_SELF)
        fields, state, rates = model.galerkin, model.state, list(model.rates)
        generic = Flow(fields, fields.per_group(rates), setup.dt)
        factored = FactoredFlow(fields, rates, setup.dt)
        t_generic = best_step_time(generic, state, args.budget)
        t_factored = best_step_time(factored, state, args.budget)
        a, b = generic.step(state).theta, factored.step(state).theta
        diff = np.abs(a - b).max() / np.abs(a).max()
        nt, nx, _ = fields.shapes[1][0]
        print(
            f"{samples:>3} {cells:>6} {depth_cells:>11} {nx:>5} {nt * nx * nx:>13} "
            f"{t_generic:>11.3e} {t_factored:>11.3e} {t_generic / t_factored:>6.2f}  {diff:.1e}"
        )


if __name__ == "__main__":
    main()
