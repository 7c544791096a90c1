"""One RK4 step of the continuum flow: generic against factored weight forces, side by side.

The deep-tanh network (``examples/deep-tanh.toml``) as a Galerkin model with P2 factor spaces on
``cells`` cells per coordinate (tensor input layer), from 4 to 512 cells: 270 to 3.2·10⁶
coefficients. Each step is timed with :class:`discrete.training.Flow` (each ``k_i`` formed as a
vector, scaled by the rates and combined whole) and with
:class:`continuum.schemes.factored_flow.FactoredFlow` (weight forces as their rank-``L``
factors, one GEMM per block per step), from the same state, best of repeats filling about
``--budget`` seconds; ``rel diff`` is the largest difference of the two steps relative to ``max
|θ|``. The ratio fixes ``continuum.schemes.factored_flow.FACTORED_STEP_SIZE``.

With ``--samples L …`` the data has ``L`` samples (``X^l(y) = sin(π(1 + l/128) y + l) + ½``,
``Y^l(x) = ½ cos(π(1 + l/256) x + l)``, the user-scale deep-tanh data of
``benchmarks/accuracy_per_cost.py``) and every cell count is timed at every ``L``: the ratio's
dependence on the rank ``L`` of the forces fixes
:func:`continuum.schemes.factored_flow.factored_pays`, whose choice is printed beside it.

    python benchmarks/factored_flow.py [--cells 4 8 16 32 64 128 256 512] [--samples 3 …]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI  # first: it loads the MPI library that DOLFINx links against

# isort: split
from continuum.app.convergence import with_width
from continuum.models.limit import continuum_model
from continuum.schemes.factored_flow import FACTORED_STEP_SIZE, FactoredFlow, factored_pays
from continuum.settings import load_config
from discrete.experiment import build
from discrete.training import Flow, Rule, State

ROOT = Path(__file__).resolve().parent.parent


def best_step_time(rule: Rule, state: State, budget: float) -> float:
    rule.step(state)
    start = time.perf_counter()
    rule.step(state)
    repeats = int(np.clip(budget / (time.perf_counter() - start), 3, 200))
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        rule.step(state)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[4, 8, 16, 32, 64, 128, 256, 512])
    parser.add_argument("--samples", type=int, nargs="+", default=[3], help="samples L")
    parser.add_argument("--budget", type=float, default=0.5, help="seconds of repeats per case")
    args = parser.parse_args()
    config = load_config(ROOT / "examples" / "deep-tanh.toml")
    print(
        f"factored flow — {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, one "
        f"rank; deep-tanh, P2, tensor input layer; threshold {FACTORED_STEP_SIZE} weight "
        "coefficients"
    )
    header = (
        f"{'L':>4} {'cells':>6} {'coefficients':>13} {'generic s':>11} {'factored s':>11} "
        f"{'ratio':>6}"
    )
    print(header + "  rel diff  chosen")
    print("-" * (len(header) + 18))
    for samples, cells in ((L, c) for L in args.samples for c in args.cells):
        data = {"samples": samples}
        if samples != 3:
            data |= {
                "input": "sin(pi*(1 + l/128)*y + l) + 0.5",
                "target": "0.5*cos(pi*(1 + l/256)*x + l)",
            }
        problem = config.replace(data=data)
        continuum = dataclasses.replace(problem.continuum, cells=cells, scheme="matched")
        setup = build(with_width(dataclasses.replace(problem, continuum=continuum), 8))
        model = continuum_model(setup, MPI.COMM_SELF)
        galerkin, state = model.galerkin, model.state
        rates = setup.dictionary.continuum_rates()
        generic = Flow(galerkin, galerkin.per_group(rates), setup.dt)
        factored = FactoredFlow(galerkin, rates, setup.dt)
        t_generic = best_step_time(generic, state, args.budget)
        t_factored = best_step_time(factored, state, args.budget)
        a, b = generic.step(state).theta, factored.step(state).theta
        diff = np.abs(a - b).max() / np.abs(a).max()
        chosen = "factored" if factored_pays(galerkin.shapes, samples) else "generic"
        print(
            f"{samples:>4} {cells:>6} {galerkin.size:>13} {t_generic:>11.3e} "
            f"{t_factored:>11.3e} {t_generic / t_factored:>6.2f}  {diff:.1e}   {chosen}"
        )


if __name__ == "__main__":
    main()
