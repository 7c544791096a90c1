"""Time per time step against problem size ``n`` (degrees of freedom), and its fitted exponent.

Three implicit solvers, one MPI rank, setup (mesh, assembly, factorisation) timed separately:

* ``flow``  — :class:`continuum.fields.local.FlowSolver`, Crank–Nicolson for the first-order flow
  ``M ẇ + A w = f`` of the local Klein–Gordon theory (``K = 1``, ``J = 25``) on the circle,
  P1 (``n`` = cells); one step = a sparse mat-vec and a MUMPS LU solve;
* ``wave``  — :class:`continuum.fields.local.WaveSolver`, Newmark-β (β = ¼) for the damped dynamics
  ``M (ẅ + γẇ) + A w = f`` (γ = 0.5), same theory and mesh;
* ``perceptron rows`` — the implicit perceptron solver
  (:class:`continuum.fields.perceptron.PerceptronSolver`, θ = ½, P1): each step solves, for every
  x-row, ``(M̃ + θΔt Ξ̃ diag(η/L) Ξ̃ᵀ) u = r`` with the factored operator (CG,
  Cholesky of ``M̃``). Two sweeps: ``per-row`` with 4 x-rows and ``n = n_y`` input dofs (the
  cost of one row solve, ``O(n·L)`` expected), and ``square`` with ``n = n_x·(n_y + 1)`` total
  coefficients on equal meshes (``O(n·L)`` per step expected, i.e. ``O(n_x)`` row solves of
  ``O(n_y L)`` each).

Each step time is the median over batches of steps filling ``--budget`` seconds. The exponent
``p`` of ``time ∝ n^p`` is a least-squares fit over all sizes, over ``n ≥ --fit-from`` (below
that, fixed per-call overheads dominate) and over ``n ≥ 10⁵`` (out of the 2 MiB L2 cache);
``p ≈ 1`` is the expected ``O(n·L)``.

    python benchmarks/step_cost.py [--sizes 1000 3000 ... 1000000]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from mpi4py import MPI  # first: it loads the MPI library that DOLFINx links against

# isort: split
from continuum.fields.local import FlowSolver, LocalTheory, WaveSolver
from continuum.fields.perceptron import PerceptronProblem, PerceptronSolver
from discrete.expressions import parse_expression

COMM = MPI.COMM_SELF
THEORY = dict(stiffness=1.0, mass=25.0, gamma=0.5, periodic=True)


def w0(y: np.ndarray) -> np.ndarray:
    return np.exp(-40.0 * (y - 0.5) ** 2)


def per_step(advance, budget: float) -> float:
    """Median seconds per step of ``advance(k)`` over batches filling about ``budget``."""
    advance(1)
    start = time.perf_counter()
    advance(1)
    once = max(time.perf_counter() - start, 1e-7)
    batch = max(1, int(0.05 / once))
    times = []
    total = 0.0
    while total < budget or len(times) < 3:
        start = time.perf_counter()
        advance(batch)
        elapsed = time.perf_counter() - start
        times.append(elapsed / batch)
        total += elapsed
    return float(np.median(times))


def local_solver(kind: str, n: int, dt: float):
    theory = LocalTheory.constant(
        THEORY["stiffness"], THEORY["mass"], 0.0, 1.0, THEORY["gamma"], THEORY["periodic"]
    )
    if kind == "flow":
        solver = FlowSolver(theory, COMM, n, 1, dt, w0)
    else:
        solver = WaveSolver(theory, COMM, n, 1, dt, w0)
    return solver, solver.fem.V.dofmap.index_map.size_global


def perceptron_problem() -> PerceptronProblem:
    inputs = parse_expression("sin(pi*(l+1)*y) + 0.5*cos(pi*l*y)", ("y", "l"))
    targets = parse_expression("cos(pi*(l+1)*x) * (1 + x)", ("x", "l"))
    return PerceptronProblem(
        inputs=lambda y, l: inputs(y=y, l=l),
        targets=lambda x, l: targets(x=x, l=l),
        samples=3,
        w0=lambda x, y: 0.5 * np.sin(np.pi * x) * np.cos(np.pi * y),
        b0=lambda x: 0.1 * x,
    )


def perceptron_solver(x_cells: int, y_cells: int, dt: float):
    solver = PerceptronSolver(
        perceptron_problem(), COMM, x_cells, 1, "theta", 0.5, dt, input_cells=y_cells
    )
    rows = solver.output_space.dofmap.index_map.size_local
    return solver, rows, solver.n_y


def fit(ns: list[int], ts: list[float], start: int) -> float:
    pairs = [(n, t) for n, t in zip(ns, ts, strict=True) if n >= start]
    if len(pairs) < 2:
        return float("nan")
    n, t = np.array(pairs, dtype=float).T
    return float(np.polyfit(np.log(n), np.log(t), 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[1000, 3000, 10_000, 30_000, 100_000, 300_000, 1_000_000],
    )
    parser.add_argument("--budget", type=float, default=0.5, help="seconds of steps per case")
    parser.add_argument("--fit-from", type=int, default=10_000)
    parser.add_argument("--dt", type=float, default=1e-3)
    args = parser.parse_args()
    print(
        f"step cost — {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, one rank, "
        f"dt = {args.dt:g}; fit over n >= {args.fit_from}"
    )
    header = f"{'solver':<17} {'n':>9} {'setup s':>9} {'s / step':>11} {'ns / dof / step':>16}"
    print(header)
    print("-" * len(header))
    results: dict[str, tuple[list[int], list[float]]] = {}

    def record(name: str, n: int, setup: float, step: float, extra: str = "") -> None:
        results.setdefault(name, ([], []))
        results[name][0].append(n)
        results[name][1].append(step)
        print(
            f"{name:<17} {n:>9} {setup:>9.2f} {step:>11.3e} {step / n * 1e9:>16.1f}  {extra}",
            flush=True,
        )

    for kind in ("flow", "wave"):
        for n in args.sizes:
            start = time.perf_counter()
            solver, dofs = local_solver(kind, n, args.dt)
            setup = time.perf_counter() - start
            record(kind, dofs, setup, per_step(solver.advance, args.budget))
            del solver
    for n in args.sizes:
        start = time.perf_counter()
        solver, rows, n_y = perceptron_solver(3, n - 1, args.dt)
        setup = time.perf_counter() - start
        step = per_step(solver.advance, args.budget)
        record("perceptron row", n_y, setup, step / rows, f"({rows} rows; per row solve)")
        del solver
    for n in args.sizes:
        side = max(2, round(np.sqrt(n)) - 1)
        start = time.perf_counter()
        solver, rows, n_y = perceptron_solver(side, side, args.dt)
        setup = time.perf_counter() - start
        step = per_step(solver.advance, args.budget)
        record("perceptron square", rows * (n_y + 1), setup, step, f"({rows} x {n_y + 1})")
        del solver

    print()
    print("fitted exponent p of time/step ∝ n^p (expected ≈ 1):")
    print(f"  {'solver':<17} {'all sizes':>10} {f'n >= {args.fit_from}':>12} {'n >= 1e5':>10}")
    for name, (ns, ts) in results.items():
        print(
            f"  {name:<17} {fit(ns, ts, 0):>10.3f} {fit(ns, ts, args.fit_from):>12.3f} "
            f"{fit(ns, ts, 100_000):>10.3f}"
        )


if __name__ == "__main__":
    main()
