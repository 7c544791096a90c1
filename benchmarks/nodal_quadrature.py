"""Nodal against Gauss quadrature: error and time per solve of the Galerkin fields, side by side.

For the user-scale problems of :mod:`accuracy_per_cost` — ``digits`` (64 → N → N → 10, 300
rows, cross-entropy, to t = 0.4) on 16 and 32 cells at ``p = 2 … 9``, and ``deep-tanh-L256``
(four tanh layers, 256 samples, to t = 1) on 4 cells at ``p = 2 … 8`` — every ``(cells, p)``
is solved twice with the networks' RK4 and ``dt`` (``scheme = "matched"``, or with
``--scheme jax`` the same RK4 compiled with JAX, :mod:`continuum.schemes.jax_flow`, each
model solved once untimed first so that the timed solves reuse its compiled loop):

* ``gauss``: ``[continuum] quadrature = "gauss"``, the checked Gauss rule (its check run once
  untimed per model, as :mod:`accuracy_per_cost` does: the timed runs use the recorded rule);
* ``nodal``: ``quadrature = "nodal"``, the Gauss–Lobatto–Legendre rule at the element's nodes
  (:class:`continuum.fem.spaces.NodalSpace`: identity tabulation, diagonal mass).

Both errors are measured against one reference, the Gauss continuum of degree 10 on
``reference_cells`` cells (its own error bounded by its distance to a second reference,
printed), in :func:`accuracy_per_cost.error` on the evaluation lattice of width 97; times are
the best of up to ``--repeats`` solves (config to final fields; runs over 0.5 s once), one
BLAS thread.  Each row shows the DOFs and the quadrature points of one hidden layer's space,
and the milliseconds of one full-batch gradient of the numpy fields at the final coefficients
(Gauss, nodal; best of 3 × 10 calls): the force alone, without the time loop.

    PYTHONPATH=$PWD python benchmarks/nodal_quadrature.py [--problems digits deep-tanh-L256]
    PYTHONPATH=$PWD python benchmarks/nodal_quadrature.py --smoke      # seconds
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# importing accuracy_per_cost pins the process to one core (benchmarks/one_core.py)
from accuracy_per_cost import (
    REFERENCE_DEGREE,
    ModelReference,
    best_time,
    error,
    solve_fem,
    user_scale_problems,
    with_continuum,
    with_dt,
    with_width,
)
from gradient_rate import best_of

from continuum.settings import Config
from discrete.experiment import build

ROOT = Path(__file__).resolve().parent.parent
EVAL_WIDTH = 97


@dataclass(frozen=True)
class Case:
    """One problem: its config, the meshes and degrees compared, the reference mesh and the
    second reference ``(degree, cells)`` that bounds the first one's error."""

    name: str
    config: Config
    cells: tuple[int, ...]
    degrees: tuple[int, ...]
    reference_cells: int
    check: tuple[int, int]


def cases() -> dict[str, Case]:
    problems = user_scale_problems()
    return {
        "digits": Case(
            "digits", problems["digits"].config, (16, 32), tuple(range(2, 10)), 48, (10, 40)
        ),
        "deep-tanh-L256": Case(
            "deep-tanh-L256",
            problems["deep-tanh-L256"].config,
            (4,),
            tuple(range(2, 9)),
            8,
            (REFERENCE_DEGREE, 6),
        ),
    }


def smoke(case: Case) -> Case:
    """Two training steps, two degrees on the smallest mesh, a degree-6 reference."""
    return dataclasses.replace(
        case,
        config=case.config.replace(training={"steps": 2}),
        cells=case.cells[:1],
        degrees=case.degrees[:2],
        reference_cells=case.cells[0],
        check=(5, case.cells[0]),
    )


def layer_sizes(model) -> tuple[int, int]:
    """DOFs and quadrature points of the first hidden layer's space."""
    space = model.galerkin.layer_space(1)
    return space.size, len(space.quadrature_weights)


def gradient_ms(model, calls: int = 10, rounds: int = 3) -> float:
    """Milliseconds of one full-batch gradient of the model's fields at its final coefficients
    (best of ``rounds`` × ``calls``)."""
    g, theta = model.galerkin, model.state.theta
    return 1e3 * best_of(lambda: [g.gradient(theta) for _ in range(calls)], rounds) / calls


def run_case(case: Case, repeats: int, reference_degree: int, scheme: str) -> list[str]:
    cfg = case.config
    t_end = cfg.training.steps * cfg.training.dt
    eval_conv = build(with_width(cfg, EVAL_WIDTH)).convention
    start = time.perf_counter()
    ref = ModelReference(solve_fem(cfg, reference_degree, case.reference_cells))
    ref_fields = ref.fields(eval_conv)
    other = ModelReference(solve_fem(cfg, *case.check)).fields(eval_conv)
    print(
        f"\n=== {case.name}: t_end = {t_end:g}, {cfg.training.steps} RK4 steps of "
        f"{cfg.training.dt:g} (scheme {scheme!r})\n    reference: Gauss degree "
        f"{reference_degree} on "
        f"{case.reference_cells} cells; distance to degree {case.check[0]} on "
        f"{case.check[1]} cells {error(other, ref_fields):.1e} "
        f"({time.perf_counter() - start:.1f} s, untimed)"
    )
    header = (
        f"    {'cells':>5} {'p':>2} {'dofs':>5} {'n_q':>5} | {'gauss error':>11} {'time s':>8}"
        f" | {'nodal error':>11} {'time s':>8} | {'time ratio':>10} {'error ratio':>11}"
        f" | {'gradient ms':>15}"
    )
    print(header)
    lines = []
    nodal_cfg = with_continuum(cfg, quadrature="nodal")
    for cells in case.cells:
        for p in case.degrees:
            solve_fem(with_dt(cfg, t_end), p, cells)  # the Gauss check, once, untimed
            results = {}
            for name, c in (("gauss", cfg), ("nodal", nodal_cfg)):
                if scheme == "jax":
                    solve_fem(c, p, cells, scheme)  # compiles the loop, untimed
                seconds, model = best_time(
                    lambda c=c, p=p, cells=cells: solve_fem(c, p, cells, scheme), repeats
                )
                e = error(ModelReference(model).fields(eval_conv), ref_fields)
                results[name] = (e, seconds, layer_sizes(model), gradient_ms(model))
            (eg, tg, (dofs, nq), gg), (en, tn, _, gn) = results["gauss"], results["nodal"]
            line = (
                f"    {cells:>5} {p:>2} {dofs:>5} {nq:>5} | {eg:11.2e} {tg:8.3f} | {en:11.2e} "
                f"{tn:8.3f} | {tg / tn:10.2f} {en / eg:11.2f} | {gg:7.3f} {gn:7.3f}"
            )
            print(line, flush=True)
            lines.append(line)
    return lines


def commit() -> str:
    proc = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return proc.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=list(cases()), choices=list(cases()))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scheme", default="matched", choices=["matched", "jax"])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that it runs")
    args = parser.parse_args()
    print(
        f"nodal quadrature — {platform.node()} {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, one rank, commit "
        f"{commit()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    start = time.perf_counter()
    for name in args.problems:
        case = cases()[name]
        if args.smoke:
            case = smoke(case)
        repeats = 1 if args.smoke else args.repeats
        run_case(case, repeats, 6 if args.smoke else REFERENCE_DEGREE, args.scheme)
    print(
        f"\ntotal {time.perf_counter() - start:.0f} s, load average {os.getloadavg()[0]:.2f} "
        "at the end"
    )


if __name__ == "__main__":
    main()
