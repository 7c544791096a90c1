"""The FEM's cost per gradient at user scale: the Gauss rule's tolerance and the operator rule.

On the user-scale problems of :func:`accuracy_per_cost.user_scale_problems` (digits, and
deep-tanh with 256 samples) this script measures, side by side in one run:

* ``operators``: one product of a factor space's tabulation ``T`` (``n_q × n``) with ``k``
  columns, dense (BLAS), CSR (SciPy) and cell-batched (:mod:`continuum.fem.cell_batched`),
  CPU time, at the shapes of the problems' spaces, beside what
  :func:`continuum.fem.spaces.dense_is_faster` picks;
* ``gradient``: one full-batch Galerkin gradient (best of 20) and the Gauss rule chosen, per
  code and ``[continuum] quadrature_tolerance`` τ;
* ``routes``: the FEM routes (RK4 as the networks, and the adaptive flow on deep-tanh) to the
  final time, best of ``--repeats``, their field error against the reference of
  ``accuracy_per_cost`` (FEM degree 10), and the time to each target; the FEM rows for a
  target ``e`` use the largest τ ≤ ``e/100`` measured (the quadrature error stays two decades
  below the target, ``tests/test_quadrature_tolerance.py``); beside them the JAX networks,
  plain and Richardson-extrapolated (:func:`accuracy_per_cost.jax_routes`);
* the compiled flow (``[continuum] scheme = "jax"``, :mod:`continuum.schemes.jax_flow`): the
  routes ``… jax`` (wall time of build, compile and run: the time to target a user waits) and
  ``… jax -compile`` (the same run less its compile time, reported separately), and per
  gradient the compiled Riesz gradient alone (one jitted call) and inside the RK4 loop (the
  loop's time over its ``4 × steps`` gradients).

"Before" is the code at ``--baseline`` (a source tree, e.g. the main checkout: its
``continuum`` package runs the same FEM rows in a subprocess with τ = 1e-12, its only rule);
"after" is this tree.  The two codes' FEM rows alternate in ``--rounds`` rounds of
subprocesses, the best time of each row is kept, and the load average is printed at every
round (the machine may be shared).

    python benchmarks/fem_cost.py --baseline /work/main        # a few minutes
    python benchmarks/fem_cost.py --smoke                      # seconds
    python benchmarks/fem_cost.py --dots                       # the float64 dot table alone
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import one_core  # noqa: F401  (benchmarks/: one core for every route, before numpy and jax load)

# isort: split
import numpy as np
from mpi4py import MPI  # first: it loads the MPI library that DOLFINx links against

# isort: split
import accuracy_per_cost as apc  # benchmarks/, the script's directory
import scipy.sparse as sp

from continuum.fem.spaces import FactorSpace

try:
    from continuum.settings import ContinuumConfig
except ImportError:  # a --baseline tree from before the [continuum] schema moved there
    from discrete.config import ContinuumConfig

HERE = Path(__file__).resolve().parent
TOLERANCES = {"deep-tanh-L256": (1e-12, 1e-8, 1e-11), "digits": (1e-12, 1e-6)}
"""τ of the "after" rows per problem (the baseline runs 1e-12 only)."""
TARGETS = {"deep-tanh-L256": (1e-6, 1e-9), "digits": (1e-3, 1e-4)}
ROUTES = {
    "deep-tanh-L256": {
        "FEM p c=4": [3, 4, 5, 6, 7, 8],
        "FEM p c=4 adapt": [3, 4, 5, 6, 7, 8],
        "FEM p c=4 jax": [3, 4, 5, 6, 7, 8],
    },
    "digits": {
        "FEM P2": [16, 32, 64],
        "FEM p c=8": [3, 4, 5, 6, 7, 8],
        "FEM p c=8 jax": [3, 4, 5, 6, 7, 8],
    },
}
COMPILED = " jax"
"""The suffix of the routes of the compiled flow (``[continuum] scheme = "jax"``)."""
GRADIENTS = {"deep-tanh-L256": [(5, 4), (8, 4)], "digits": [(2, 32), (5, 8), (8, 8)]}
"""(degree, cells) of the timed single gradients."""


def has_compiled_flow() -> bool:
    """Whether this code has ``[continuum] scheme = "jax"`` (a ``--baseline`` may not)."""
    from continuum.models.registry import SCHEMES

    return "jax" in SCHEMES


def solve_timed_fem(cfg, options: tuple, calls: list | None = None):
    """``solve_fem(cfg, *options)``; the compiled flow compiles afresh (not reusing the loop
    an earlier model of the same shapes compiled), so its time includes its compile, and
    ``calls`` receives each call's ``(wall seconds, compile seconds)``."""
    if options[2] != "jax":
        return apc.solve_fem(cfg, *options)
    from continuum.schemes.jax_flow import forget_compiled

    forget_compiled()
    start = time.perf_counter()
    model = apc.solve_fem(cfg, *options)
    if calls is not None:
        calls.append((time.perf_counter() - start, model.rule.compile_seconds))
    return model


def has_tolerance() -> bool:
    """Whether this code has ``[continuum] quadrature_tolerance``."""
    return "quadrature_tolerance" in {f.name for f in dataclasses.fields(ContinuumConfig)}


def configured(problem: apc.Problem, tolerance: float):
    """The problem's config with ``quadrature_tolerance = tolerance`` (where the code has it)."""
    if not has_tolerance():
        return problem.config
    return apc.with_continuum(problem.config, quadrature_tolerance=tolerance)


def problems(smoke: bool) -> dict[str, apc.Problem]:
    """The user-scale problems this script measures (those of :data:`ROUTES`)."""
    chosen = apc.user_scale_problems()
    return {name: apc.smoke(p) if smoke else p for name, p in chosen.items() if name in ROUTES}


def fem_options(route: str, size: int) -> tuple:
    """``solve_fem`` arguments of an FEM route (:func:`accuracy_per_cost.route_options`; a
    route ending in ``jax`` with the compiled flow)."""
    options = apc.route_options(route.removesuffix(COMPILED), size)
    degree, cells, integrator, input_layer = options[:4]
    return degree, cells, "jax" if route.endswith(COMPILED) else integrator, input_layer


def compiled_gradient(cfg, degree: int, cells: int, repeats: int) -> tuple[float, float, float]:
    """The compiled flow's gradient, CPU time as the numpy gradient's: one jitted Riesz
    gradient (best of ``repeats`` calls), one gradient inside the RK4 loop (best of 3 runs of
    all steps, over their ``4 × steps`` gradients), and the loop's compile time (wall)."""
    model = solve_timed_fem(cfg, (degree, cells, "jax", "tensor"))
    rule, state = model.rule, model.state
    rule.riesz_gradient(state.theta)  # jit
    call = cpu_best(lambda: rule.riesz_gradient(state.theta), repeats)
    steps = cfg.training.steps
    loop = cpu_best(lambda: rule.leap(state, steps), 3) / (4 * steps)
    return call, loop, rule.compile_seconds


def cpu_best(run, repeats: int) -> float:
    """Best CPU time of ``run()`` over ``repeats`` calls."""
    best = np.inf
    for _ in range(repeats):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best


# ----------------------------------------------------------------------------- worker


def worker(args) -> None:
    """FEM rows and single gradients of this process's code, written to ``args.out`` (JSON of
    rows, and an ``.npz`` of the final lattice fields of each row)."""
    rows, gradients, compiled, fields = [], [], [], {}
    tolerances = None if has_tolerance() else (1e-12,)
    for name, p in problems(args.smoke).items():
        eval_conv = apc.build(apc.with_width(p.config, p.eval_width)).convention
        routes = {r: s[:2] for r, s in ROUTES[name].items()} if args.smoke else ROUTES[name]
        for tol in tolerances or TOLERANCES[name]:
            cfg = configured(p, tol)
            for degree, cells in [(2, 4)] if args.smoke else GRADIENTS[name]:
                model = apc.solve_fem(
                    apc.with_dt(cfg, cfg.training.dt * cfg.training.steps), degree, cells
                )
                g, theta = model.galerkin, model.state.theta
                g.gradient(theta)
                seconds = cpu_best(lambda g=g, theta=theta: g.gradient(theta), args.gradients)
                q = model.spaces[1].quadrature_degree
                gradients.append([name, tol, degree, cells, q, seconds])
                if has_compiled_flow():
                    call, loop, compile_seconds = compiled_gradient(
                        cfg, degree, cells, args.gradients
                    )
                    compiled.append([name, tol, degree, cells, q, call, loop, compile_seconds])
            for route, sizes in routes.items():
                if route.endswith(COMPILED) and not has_compiled_flow():
                    continue
                for size in sizes:
                    options = fem_options(route, size)
                    apc.solve_fem(cfg, *options)  # the quadrature check runs once, untimed
                    calls: list[tuple[float, float]] = []  # (wall s, compile s) of every call
                    seconds, model = apc.best_time(
                        lambda c=cfg, o=options, calls=calls: solve_timed_fem(c, o, calls),
                        args.repeats,
                    )
                    f = apc.ModelReference(model).fields(eval_conv)
                    timings = [(route, seconds)]
                    if route.endswith(COMPILED):  # the same calls less their compile time
                        timings.append((f"{route} -compile", min(t - c for t, c in calls)))
                    for label, t in timings:
                        key = f"{len(rows)}"
                        fields.update({f"{key}/w{m}": w for m, w in enumerate(f.w)})
                        fields.update({f"{key}/b{m}": b for m, b in enumerate(f.b)})
                        rows.append([name, label, size, tol, t, len(f.w)])
    np.savez(args.out + ".npz", **fields)
    Path(args.out).write_text(
        json.dumps({"rows": rows, "gradients": gradients, "compiled": compiled})
    )


def run_worker(tree: Path, label: str, args, directory: str) -> dict:
    """Run :func:`worker` with ``tree``'s packages; its rows, their fields and the code label."""
    out = os.path.join(directory, f"{label}-{time.monotonic_ns()}.json")
    env = dict(os.environ, PYTHONPATH=str(tree))
    command = [sys.executable, str(HERE / "fem_cost.py"), "--worker", "--out", out]
    command += ["--repeats", str(args.repeats), "--gradients", str(args.gradients)]
    command += ["--smoke"] if args.smoke else []
    subprocess.run(command, check=True, env=env, cwd=tree)
    result = json.loads(Path(out).read_text())
    result["fields"] = dict(np.load(out + ".npz"))
    return result


# ----------------------------------------------------------------------------- report


def operator_table(smoke: bool) -> None:
    """``T u`` dense, CSR and cell-batched at the problems' factor-space shapes, and the pick
    of :func:`continuum.fem.spaces.dense_is_faster` (dense or cell-batched)."""
    from continuum.fem.spaces import dense_is_faster
    from meshes import interval

    print("\n=== operators: T u, CPU µs (best of 7 x 20): dense | CSR | cell-batched, rule's pick")
    shapes = (
        [(8, 4), (5, 4)]
        if smoke
        else [
            (5, 4),
            (8, 4),
            (2, 8),
            (5, 8),
            (8, 8),
            (3, 16),
            (2, 16),
            (8, 16),
            (2, 32),
            (2, 64),
            (2, 256),
        ]
    )
    rng = np.random.default_rng(0)
    for degree, cells in shapes:
        space = FactorSpace(interval(MPI.COMM_SELF, cells), degree, 2 * degree + 8)
        csr = sp.csr_matrix(space.tabulation)
        dense = csr.toarray()
        batched = space._batched
        texts = []
        for k in (1, 3, 32, 256):
            u = rng.random((space.size, k))
            td = cpu_best(lambda a=dense, u=u: [a @ u for _ in range(20)], 7) / 20
            ts = cpu_best(lambda a=csr, u=u: [a @ u for _ in range(20)], 7) / 20
            tb = cpu_best(lambda b=batched, u=u: [b.values(u) for _ in range(20)], 7) / 20
            pick = "dense" if dense_is_faster(dense.size, csr.nnz, k) else "batch"
            mark = "" if (td <= tb) == (pick == "dense") else "!"
            texts.append(f"k={k}: {td * 1e6:.1f} | {ts * 1e6:.1f} | {tb * 1e6:.1f} {pick}{mark}")
        print(
            f"  P{degree} {cells:>3} cells {dense.shape[0]:>4} x {dense.shape[1]:<4}  "
            + "   ".join(texts)
        )
    print("  ('!': the rule's pick was the slower of dense and cell-batched in this measurement)")


def repeated(run, times: int) -> None:
    """``run()`` ``times`` times (its results dropped)."""
    for _ in range(times):
        run()


def dot_table(smoke: bool) -> None:
    """One float64 ``A @ B`` at the compiled gradient's shapes (``n_q × n`` or ``n × n``
    times ``n × L``): NumPy (OpenBLAS) against XLA inside a jitted ``fori_loop`` whose
    iterations depend on each other (so XLA cannot hoist the product), CPU µs and GFLOP/s."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    print("\n=== dots: one float64 A @ B, CPU µs (best of 5): numpy (OpenBLAS) | XLA in a loop")
    rng = np.random.default_rng(0)
    reps = 20 if smoke else 200
    for n, k, L in (
        [(44, 33, 256)]
        if smoke
        else [(44, 33, 256), (33, 33, 256), (36, 21, 256), (56, 41, 300), (41, 64, 300)]
    ):
        a, b = rng.random((n, k)), rng.random((k, L))

        def chain(a, b, reps=reps):
            def body(_, c):  # the barrier keeps XLA from hoisting a @ b out of the loop
                return c + a @ jax.lax.optimization_barrier(b + 1e-9 * c[0, 0]) * 1e-9

            return jax.lax.fori_loop(0, reps, body, jnp.zeros((a.shape[0], b.shape[1])))

        looped = jax.jit(chain)
        ja, jb = jnp.asarray(a), jnp.asarray(b)
        looped(ja, jb).block_until_ready()
        t_xla = cpu_best(lambda f=looped, x=ja, y=jb: f(x, y).block_until_ready(), 5) / reps
        t_np = cpu_best(lambda x=a, y=b: repeated(lambda: x @ y, reps), 5) / reps
        flops = 2 * n * k * L
        print(
            f"  {n:>3} x {k:<3} @ {k:>3} x {L:<3}  numpy {t_np * 1e6:7.1f} µs "
            f"{flops / t_np / 1e9:5.1f} GFLOP/s | XLA {t_xla * 1e6:7.1f} µs "
            f"{flops / t_xla / 1e9:5.1f} GFLOP/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="source tree of the code before")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--gradients", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds)")
    parser.add_argument("--dots", action="store_true", help="only the float64 dot table")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if args.dots:
        dot_table(args.smoke)
        return
    if args.smoke:
        args.rounds, args.repeats, args.gradients = 1, 1, 2
    print(f"fem cost — {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    start = time.perf_counter()
    operator_table(args.smoke)
    dot_table(args.smoke)
    codes = {"after": HERE.parent}
    if args.baseline is not None:
        codes = {"before": args.baseline.resolve(), **codes}
    results: dict[str, list[dict]] = {label: [] for label in codes}
    with tempfile.TemporaryDirectory() as directory:
        for round_ in range(args.rounds):
            for label, tree in codes.items():
                print(
                    f"  round {round_ + 1}, {label} ({tree}): load average "
                    f"{os.getloadavg()[0]:.2f}",
                    flush=True,
                )
                results[label].append(run_worker(tree, label, args, directory))
    report(results, args)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


def best_rows(runs: list[dict]) -> tuple[dict, dict, dict, dict]:
    """Best time per FEM row and per gradient over the rounds, each row's fields, and the
    compiled flow's gradients (best call, best in-loop, and the compile times seen)."""
    rows, gradients, fields, compiled = {}, {}, {}, {}
    for run in runs:
        for k, (name, route, size, tol, seconds, layers) in enumerate(run["rows"]):
            key = (name, route, size, tol)
            rows[key] = min(rows.get(key, np.inf), seconds)
            w = [run["fields"][f"{k}/w{m}"] for m in range(layers)]
            b = [run["fields"][f"{k}/b{m}"] for m in range(layers)]
            fields[key] = (w, b)
        for name, tol, degree, cells, q, seconds in run["gradients"]:
            key = (name, tol, degree, cells, q)
            gradients[key] = min(gradients.get(key, np.inf), seconds)
        for name, tol, degree, cells, q, call, loop, compile_seconds in run.get("compiled", []):
            key = (name, tol, degree, cells, q)
            old = compiled.get(key, (np.inf, np.inf, []))
            compiled[key] = (min(old[0], call), min(old[1], loop), [*old[2], compile_seconds])
    return rows, gradients, fields, compiled


def report(results: dict[str, list[dict]], args) -> None:
    best = {label: best_rows(runs) for label, runs in results.items()}
    print("\n=== gradient: one full-batch gradient, CPU ms (best of rounds x repeats)")
    for label, (_, gradients, _, compiled) in best.items():
        for key, seconds in gradients.items():
            name, tol, degree, cells, q = key
            line = (
                f"  {label:<6} {name:<15} P{degree} {cells:>2} cells  tau {tol:.0e}  q = {q:>2}  "
                f"{seconds * 1e3:7.3f} ms"
            )
            if key in compiled:
                call, loop, compile_seconds = compiled[key]
                line += (
                    f"   jax: call {call * 1e3:7.3f} ms, in the RK4 loop {loop * 1e3:7.3f} ms "
                    f"(compile {min(compile_seconds):.2f}-{max(compile_seconds):.2f} s)"
                )
            print(line)
    for name, p in problems(args.smoke).items():
        print(f"\n=== routes: {name}")
        eval_conv = apc.build(apc.with_width(p.config, p.eval_width)).convention
        ref = apc.ModelReference(
            apc.solve_fem(p.config, apc.REFERENCE_DEGREE, p.reference_cells or 16)
        )
        ref_fields = ref.fields(eval_conv)
        p.rows = []
        apc.jax_routes(p, ref, None, args.repeats)
        for label, (rows, _, fields, _) in best.items():
            for (problem, route, size, tol), seconds in rows.items():
                if problem != name:
                    continue
                w, b = fields[(problem, route, size, tol)]
                e = apc.error(apc.Fields(eval_conv, w, b), ref_fields)
                p.rows.append(apc.Row(f"{label} {route} tau={tol:.0e}", size, 0, seconds, e))
        for r in sorted(p.rows, key=lambda r: (r.route, r.size)):
            print(
                f"  {r.route:<42} {apc.size_label(r.route, r.size):>6} {r.seconds:9.4f} s  "
                f"error {r.error:.3e}"
            )
        print_targets(p, name)


def tolerance_of(route: str) -> float | None:
    """τ of an FEM row's route label (``… tau=1e-08``), ``None`` for a network route."""
    return float(route.rsplit("tau=", 1)[1]) if "tau=" in route else None


def print_targets(p: apc.Problem, name: str) -> None:
    """Time to each target per route, and the fastest JAX network route against the fastest
    FEM route of each code with τ ≤ target/100."""
    routes = list(dict.fromkeys(r.route for r in sorted(p.rows, key=lambda r: r.route)))
    reached: dict[tuple[str, float], float] = {}
    print("  time to target: first size reaching it, its time [log-log interpolated]")
    print("  " + f"{'route':<42}" + "".join(f"{f'e <= {t:g}':>28}" for t in TARGETS[name]))
    for route in routes:
        cells = []
        for target in TARGETS[name]:
            row, interp = apc.time_to_target([r for r in p.rows if r.route == route], target)
            if row is None:
                cells.append("not reached")
                continue
            reached[(route, target)] = interp if interp is not None else row.seconds
            label = apc.size_label(route.split(" tau=")[0].split(" ", 1)[-1], row.size)
            cells.append(f"{label} {row.seconds:.4f} [{reached[(route, target)]:.4f}]")
        print("  " + f"{route:<42}" + "".join(f"{c:>28}" for c in cells))
    for target in TARGETS[name]:
        networks = {
            kind: [t for (r, e), t in reached.items() if e == target and r in routes]
            for kind, routes in (("fastest", ("jax", "jax richardson")), ("plain", ("jax",)))
        }
        for code in ("before", "after"):
            fem = {
                flow: [
                    t
                    for (r, e), t in reached.items()
                    if e == target
                    and r.startswith(code)
                    and fem_flow(r) == flow
                    and (tolerance_of(r) or 1) <= target / 100
                ]
                for flow in FLOWS
            }
            parts = [f"{flow} {min(t):.4f} s" for flow, t in fem.items() if t]
            if not parts:
                continue
            line = f"  {name} e <= {target:g}: FEM {code}: " + ", ".join(parts)
            for kind, times in networks.items():
                if not times:
                    line += f"; no {kind} JAX network reaches it"
                    continue
                ratios = ", ".join(
                    f"{flow} {min(times) / min(t):.2f}x" for flow, t in fem.items() if t
                )
                line += f"; {kind} JAX network {min(times):.4f} s, network/FEM: {ratios}"
            print(line)


FLOWS = ("numpy", "jax", "jax -compile")
"""The FEM flows compared: the numpy routes, the compiled flow with and without its compile."""


def fem_flow(route: str) -> str:
    """Which of :data:`FLOWS` an FEM row's route label is."""
    head = route.split(" tau=")[0]
    if head.endswith(f"{COMPILED} -compile"):
        return "jax -compile"
    return "jax" if head.endswith(COMPILED) else "numpy"


if __name__ == "__main__":
    main()
