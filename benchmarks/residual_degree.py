"""The residual network's depth continuum at high order in x: x degree ``p``, τ degree ``q``.

The ``resnet`` problem of :func:`accuracy_per_cost.user_scale_problems` (``examples/resnet.toml``:
tanh stream of width N through M = N/2 blocks, 3 samples, RK4 dt = 0.02 to t = 1) solved by its
depth continuum with the stream space ``V_x`` of degree ``p`` on ``--cells`` cells and the depth
space ``V_τ`` of degree ``q`` on ``depth_cells`` cells, ``k`` steps of the Runge–Kutta rule
``r`` per τ-cell (``--depth q:k`` for RK4, ``q:k:r`` for another ``[continuum] depth_rule``;
``depth_degree``, ``depth_steps``, docs/convergence.md "Residual networks"),
beside the numpy and JAX residual networks, plain and Richardson-extrapolated at first order
over (N, M) and (2N, 2M) — the routes of ``accuracy_per_cost.py``, timed the same way (best of
``--repeats``, one run when slow; JAX compiled untimed).  Every error is the lattice L2
distance of all fields (block fields weighted by ``Δτ``) on the lattice of width 97 against
the depth continuum of ``--reference`` (p, x cells, q, τ cells, k) by ``--reference-rule``,
whose own error is bounded by its distances to the ``--check`` solutions (by default the
reference at half its τ-cells, at half its k and at x degree − 2, by the same rule).  The FEM
rows are grouped by ``(p, q, k, r)``, ``--quadratures`` of the x spaces (``nodal``: the
Gauss–Lobatto–Legendre rule at the nodes) and ``--schemes`` (``jax``: the same RK4 flow
compiled with JAX, :mod:`continuum.schemes.jax_depth_flow`, compiled by one untimed run;
``jax-adaptive``: the flow in t to ``--tolerance`` compiled, ``jax adapt`` in the route's
name): within a group the τ-cells grow, and the time to a target is the first ``depth_cells``
reaching it.  Every route is timed over ``--window`` seconds at least, and the rows of the
time to every target are timed again, in turn, ``--rounds`` times (those of
``accuracy_per_cost.py``: :func:`accuracy_per_cost.side_by_side`).

    PYTHONPATH=$PWD python benchmarks/residual_degree.py [--degrees 2 3 4 5 6 7 8]
        [--cells 4] [--depth 2:1 3:4 4:2:dop853] [--depth-cells 8 16 32 64 128]
        [--reference 10 4 3 64 8] [--reference-rule rk4] [--schemes matched jax]
        [--quadratures gauss nodal] [--tolerance 1e-8] [--window 1] [--rounds 5]
        [--no-networks]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import platform
import time

from mpi4py import MPI  # noqa: F401  first: it loads the MPI library that DOLFINx links against

# isort: split
import accuracy_per_cost
from accuracy_per_cost import (  # benchmarks/, the script's directory
    ADAPTIVE_TOLERANCE,
    TARGETS,
    ModelReference,
    Problem,
    Row,
    best_time,
    error,
    fem_setup,
    fem_solve,
    jax_routes,
    network_routes,
    numpy_network,
    print_time_to_target,
    side_by_side,
    user_scale_problems,
    with_continuum,
    with_dt,
    with_width,
)

from continuum.settings import Config
from discrete.experiment import build

EVAL_WIDTH = 97
"""Lattice width of the errors (as ``accuracy_per_cost.py``'s resnet problem)."""


def depth_setup(
    config: Config,
    degree: int,
    cells: int,
    depth_degree: int,
    depth_cells: int,
    steps: int,
    rule: str = "rk4",
    scheme: str = "matched",
    quadrature: str = "gauss",
    tolerance: float = ADAPTIVE_TOLERANCE,
):
    """The set-up of the depth continuum at ``degree`` on ``cells`` cells in x and
    ``depth_degree`` on ``depth_cells`` cells in τ with ``steps`` steps of the Runge–Kutta rule
    ``rule`` per τ-cell, advanced by ``[continuum] scheme`` (to ``tolerance`` if adaptive) with
    the x spaces' ``quadrature`` (the arguments in the order of ``--reference``;
    :func:`accuracy_per_cost.fem_setup`)."""
    changes = {"depth_degree": depth_degree, "depth_cells": depth_cells, "depth_steps": steps}
    config = with_continuum(config, **changes, depth_rule=rule)
    return fem_setup(config, degree, cells, scheme, quadrature=quadrature, tolerance=tolerance)


def solve_depth(config: Config, *options, **keywords):
    """The depth continuum of :func:`depth_setup`, advanced to ``t_end``."""
    return fem_solve(depth_setup(config, *options, **keywords))


def fem_routes(p: Problem, args, ref: ModelReference, conv) -> None:
    """One route per ``(τ degree q, k, rule, x cells, p, scheme)``, a row per ``depth_cells``;
    the compiled flows (``scheme = "jax"``, ``"jax-adaptive"``) are compiled by one untimed run,
    as the JAX networks are."""
    cfg, t_end = p.config, p.config.training.steps * p.config.training.dt
    routes = itertools.product(args.depth, args.cells, args.degrees, args.quadratures, args.schemes)
    for (q, steps, rule), cells, degree, quadrature, scheme in routes:
        route = f"FEM P{degree} c={cells} τP{q} k={steps}" + ("" if rule == "rk4" else f" {rule}")
        route += "".join(f" {o}" for o in (quadrature,) if o != "gauss")
        route += {"matched": "", "jax": " jax"}.get(scheme, f" jax adapt tol={args.tolerance:g}")
        for depth_cells in args.depth_cells:
            options = (degree, cells, q, depth_cells, steps, rule, scheme, quadrature)
            # the data and config, untimed as the networks'
            setup = depth_setup(cfg, *options, tolerance=args.tolerance)
            if scheme.startswith("jax"):  # untimed: the loop compiles for the run's dt
                fem_solve(setup)
            else:  # untimed: one step fills the set-up caches
                solve_depth(with_dt(cfg, t_end), *options)
            again = functools.partial(fem_solve, setup)
            seconds, model = best_time(again, args.repeats)
            row = Row(route, depth_cells, int(model.galerkin.size), seconds, 0.0, again=again)
            row.error = error(ModelReference(model).fields(conv), ref.fields(conv))
            row.cost_error = abs(model.cost() - ref.model.cost())
            p.rows.append(row)
            print(
                f"    {route:<33} D={depth_cells:<4} {seconds:9.4f} s  error {row.error:.3e}"
                f"  cost {row.cost_error:.1e}",
                flush=True,
            )


def depth_spec(text: str) -> tuple[int, int, str]:
    """``"q:k"`` or ``"q:k:r"``: the τ degree, the steps per τ-cell and the Runge–Kutta rule
    (``[continuum] depth_rule``; absent: rk4)."""
    q, k, *rule = text.split(":")
    return int(q), int(k), rule[0] if rule else "rk4"


def label(route: str, size: int) -> str:
    return f"D={size}" if route.startswith("FEM") else f"N={size}"


def print_report(p: Problem) -> None:
    print(f"\n--- {p.name}: x degree p on c cells, τ degree q with k steps per τ-cell ---")
    for note in p.notes:
        print(f"  {note}")
    print(f"  {'route':<33} {'size':>6} {'unknowns':>10} {'wall s':>10} {'error':>10} {'cost':>10}")
    for r in p.rows:
        cost = "-" if r.cost_error is None else f"{r.cost_error:.3e}"
        print(
            f"  {r.route:<33} {label(r.route, r.size):>6} {r.unknowns:>10} {r.seconds:>10.4f}"
            f" {r.error:>10.3e} {cost:>10}"
        )
    print_time_to_target(p.rows, label, width=33)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--degrees", type=int, nargs="+", default=[2, 3, 4, 5, 6, 7, 8])
    parser.add_argument("--cells", type=int, nargs="+", default=[4])
    parser.add_argument(
        "--depth",
        type=depth_spec,
        nargs="+",
        default=[(2, 1, "rk4"), (3, 4, "rk4")],
        help="τ rules q:k[:r], the τ degree q and k steps of the rule r (default rk4) per "
        "τ-cell (default 2:1 3:4)",
    )
    parser.add_argument("--depth-cells", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    parser.add_argument(
        "--reference",
        type=int,
        nargs=5,
        default=[10, 4, 3, 64, 8],
        help="p, x cells, q, depth_cells, k of the reference",
    )
    parser.add_argument("--reference-rule", default="rk4", help="the reference's depth_rule")
    parser.add_argument(
        "--check",
        type=int,
        nargs=5,
        action="append",
        help="p, x cells, q, depth_cells, k of a solution whose distance bounds the "
        "reference's own error (repeatable; default: the reference at half its τ-cells, at "
        "half its k, and at x degree − 2)",
    )
    parser.add_argument(
        "--schemes",
        nargs="+",
        default=["matched"],
        choices=("matched", "jax", "jax-adaptive"),
        help="[continuum] scheme of the FEM routes (jax: the RK4 flow compiled with JAX; "
        "jax-adaptive: the flow to --tolerance compiled)",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=ADAPTIVE_TOLERANCE,
        help="[continuum] tolerance of the jax-adaptive routes",
    )
    parser.add_argument(
        "--quadratures",
        nargs="+",
        default=["gauss"],
        choices=("gauss", "nodal"),
        help="[continuum] quadrature of the x spaces (nodal: the GLL rule at the nodes)",
    )
    parser.add_argument("--networks", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--window",
        type=float,
        default=1.0,
        help="seconds of calls every route is timed over, at least (accuracy_per_cost.WINDOW)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="times the rows of the time to every target are timed again, in turn",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, two training steps")
    args = parser.parse_args()
    p = user_scale_problems()["resnet"]
    if args.smoke:
        p.config = p.config.replace(training={"steps": 2})
        args.degrees, args.cells, args.depth_cells = [2, 4], [2], [2, 4]
        args.depth = [(2, 1, "rk4"), (2, 2, "rk4"), (4, 1, "dop853")]
        args.schemes, args.quadratures = ["matched", "jax"], ["gauss", "nodal"]
        args.reference, args.check = [6, 2, 2, 8, 2], [[6, 2, 2, 6, 2], [4, 2, 2, 8, 2]]
        args.widths, args.repeats, args.window, args.rounds = [8, 16], 1, 0.0, 1
    accuracy_per_cost.WINDOW = args.window
    print(
        f"residual degree — {platform.node()} {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, one rank"
    )
    start = time.perf_counter()
    cfg = p.config
    conv = build(with_width(cfg, EVAL_WIDTH)).convention
    x_degree, x_cells, q, depth_cells, steps = args.reference
    rule = args.reference_rule
    ref = ModelReference(solve_depth(cfg, *args.reference, rule))
    checks = args.check or [
        [x_degree, x_cells, q, depth_cells // 2, steps],
        [x_degree, x_cells, q, depth_cells, max(1, steps // 2)],
        [x_degree - 2, x_cells, q, depth_cells, steps],
    ]
    p.notes = [
        f"reference: x degree {x_degree} on {x_cells} cells, τ degree {q} on {depth_cells} "
        f"cells, {steps} {rule} steps each (built in {time.perf_counter() - start:.1f} s, "
        "untimed)"
    ]
    for other in checks:
        check = ModelReference(solve_depth(cfg, *other, rule))
        p.notes.append(
            f"  its distance to (p, cells, q, depth_cells, k) = {tuple(other)}: "
            f"{error(check.fields(conv), ref.fields(conv)):.2e} "
            f"(cost {abs(check.model.cost() - ref.model.cost()):.1e})"
        )
    print("\n".join("  " + note for note in p.notes), flush=True)
    c_ref = ref.model.cost()
    numpy_network(cfg, 8, 1)

    def numpy_run(N: int):
        return numpy_network(cfg, N, args.repeats)

    if args.networks:
        network_routes(p, "discrete", args.widths, numpy_run, ref, c_ref)
        p.jax_widths = args.widths
        jax_routes(p, ref, c_ref, args.repeats)
    fem_routes(p, args, ref, conv)
    side_by_side(p, args.repeats, args.rounds, TARGETS, label)
    print_report(p)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
