"""Strong scaling 1 → 2 MPI ranks of the digits classifier's continuum: rows or samples split.

Problem: ``examples/digits.toml`` as shipped (64 → N → N → 10 tanh, cross-entropy, 300
training rows, full-batch RK4 flow at dt = 0.01 to t = 10: 1000 steps; continuum P2 on 32
cells, 65 dofs per hidden factor, 9 035 weight coefficients), with ``[continuum] distribute``
set to ``rows`` and to ``samples`` (what ``auto`` chooses here: 300 samples ≥ 65 rows,
:mod:`continuum.fem.distribution`).

For every repeat, side by side: one rank, then two ranks splitting rows, then two ranks
splitting samples, each an ``mpiexec -n P`` child with one BLAS thread per rank
(``OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1``) that builds the continuum model and times
``advance_to(t_end)`` alone (the slowest rank, after a barrier), then writes its final
coefficients.  Printed first: one gradient of all samples against one of half of them on
one process (the work each of two ranks does when they split the samples, without
communication: the speed-up the split allows), and the time of the gradient's ``Allreduce``
alone between two ranks (the one collective per gradient of the samples split, without the
wait for the slower rank).  Then the continuum solve time of each, the
speed-up over one rank (best of the repeats and per repeat, the ratio of one side-by-side
run), and the largest difference of any coefficient from the one-rank run.

``--quadrature nodal`` solves the same continuum with the Gauss–Lobatto–Legendre rule at the
nodes (``[continuum] quadrature = "nodal"``); ``--scheme adaptive`` the flow to a tolerance
(``[continuum] scheme = "adaptive"``: with the samples split, one PETSc TS per rank on the
whole ``θ``), whose proposed next step is left out of the differences (the error estimate's
rounding, docs/hostile-inputs.md).

    OPENBLAS_NUM_THREADS=1 python benchmarks/samples_scaling.py [--repeats 3] [--t-end 10]
        [--quadrature gauss|nodal] [--scheme matched|adaptive] [--smoke]

``--smoke`` (the suite's run): one repeat of 5 steps, and few repeats of the gradient and of
the ``Allreduce``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def child(config_path: str, out: str) -> None:
    from mpi4py import MPI

    from continuum.models.limit import continuum_model
    from continuum.settings import load_config
    from discrete.experiment import build

    comm = MPI.COMM_WORLD
    setup = build(load_config(config_path))
    comm.Barrier()
    start = time.perf_counter()
    model = continuum_model(setup, comm)
    comm.Barrier()
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    model.advance_to(setup.steps * setup.dt)
    advance = comm.allreduce(time.perf_counter() - start, op=MPI.MAX)
    rows = model.rows()  # collective
    accuracy = model.held_out().get("accuracy_test")
    if comm.rank == 0:
        np.savez(out, **{name.replace("/", "_"): value for name, value in rows.items()})
        summary = {"build": build_s, "advance": advance, "steps": setup.steps}
        summary.update(distribution=model.distribution, accuracy_test=accuracy)
        print(json.dumps(summary))


def write_config(folder: Path, distribute: str, t_end: float, quadrature: str, scheme: str) -> Path:
    text = (ROOT / "examples" / "digits.toml").read_text()
    text = re.sub(r"^t_end\s*=.*$", f"t_end = {t_end}", text, flags=re.M)
    text = re.sub(
        r"^(cells\s*=.*)$",
        rf'\1\ndistribute = "{distribute}"\nquadrature = "{quadrature}"\nscheme = "{scheme}"',
        text,
        flags=re.M,
    )
    path = folder / f"digits-{distribute}.toml"
    path.write_text(text)
    return path


def run_child(ranks: int, *args: str) -> dict:
    """Run this script under ``mpiexec -n ranks`` with ``args`` (one BLAS thread per rank) and
    return the JSON its rank 0 prints last."""
    result = subprocess.run(
        [str(BIN / "mpiexec"), "-n", str(ranks), sys.executable, __file__, *args],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **ONE_THREAD},
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def work_split(config: Path, repeats: int) -> tuple[float, float, int]:
    """Seconds of one gradient of all samples and of the first half (one process, in this
    one: the work each of two ranks splitting the samples does, without communication), and
    the numbers the samples split sums per gradient (the gradient and the cost)."""
    from mpi4py import MPI

    from continuum.models.limit import continuum_model
    from continuum.settings import load_config
    from discrete.experiment import build

    model = continuum_model(build(load_config(config)), MPI.COMM_SELF)
    galerkin, theta = model.galerkin, model.state.theta
    half = np.arange(galerkin.samples // 2)
    times = []
    for samples in (None, half):
        start = time.perf_counter()
        for _ in range(repeats):
            galerkin.gradient(theta, samples)
        times.append((time.perf_counter() - start) / repeats)
    return times[0], times[1], galerkin.size + 1


def allreduce_child(size: int, calls: int) -> None:
    """Print the seconds of one ``Allreduce`` of ``size`` numbers (under ``mpiexec``; mean of
    ``calls`` after a warm-up)."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    send, out = np.ones(size), np.empty(size)
    for _ in range(min(calls, 200)):
        comm.Allreduce(send, out)
    comm.Barrier()
    start = time.perf_counter()
    for _ in range(calls):
        comm.Allreduce(send, out)
    seconds = comm.allreduce((time.perf_counter() - start) / calls, op=MPI.MAX)
    if comm.rank == 0:
        print(json.dumps({"allreduce": seconds}))


def allreduce_seconds(size: int, calls: int) -> float:
    """:func:`allreduce_child` on two ranks."""
    return run_child(2, "--allreduce", str(size), str(calls))["allreduce"]


def largest_difference(a: Path, b: Path) -> float:
    """The largest difference of any coefficient (not of the adaptive step proposed next)."""
    with np.load(a) as x, np.load(b) as y:
        fields = [k for k in x.files if not k.endswith("next_step")]
        return max(float(np.abs(x[k] - y[k]).max()) for k in fields)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--allreduce":
        allreduce_child(int(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--t-end", type=float, default=10.0)
    parser.add_argument(
        "--quadrature", choices=("gauss", "nodal"), default="gauss", help="[continuum] quadrature"
    )
    parser.add_argument(
        "--scheme", choices=("matched", "adaptive"), default="matched", help="[continuum] scheme"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (the suite's run)")
    args = parser.parse_args()
    if args.smoke:
        args.repeats, args.t_end = 1, 0.05
    gradients, calls = (5, 100) if args.smoke else (50, 5000)
    print(
        f"digits continuum, 1 → 2 ranks — {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.2f}, one BLAS thread per rank, t_end = {args.t_end:g}, "
        f"{args.quadrature} quadrature, scheme {args.scheme}"
    )
    runs = [("1 rank", 1, "rows"), ("2 ranks, rows", 2, "rows"), ("2 ranks, samples", 2, "samples")]
    times: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        configs = {
            d: write_config(folder, d, args.t_end, args.quadrature, args.scheme)
            for d in ("rows", "samples")
        }
        full, half, size = work_split(configs["samples"], gradients)
        print(
            f"one gradient on one process: all samples {full * 1e3:.2f} ms, half of them "
            f"{half * 1e3:.2f} ms (the work split: {full / half:.2f}×); the Allreduce of its "
            f"{size} numbers on two ranks alone: {allreduce_seconds(size, calls) * 1e6:.0f} µs"
        )
        differences: dict[str, float] = {}
        for k in range(args.repeats):
            line = []
            for label, ranks, distribute in runs:
                out = folder / f"{ranks}-{distribute}.npz"
                result = run_child(ranks, "--child", str(configs[distribute]), str(out))
                assert result["distribution"] == distribute
                times[label].append(result["advance"])
                if ranks > 1:
                    differences[label] = largest_difference(folder / "1-rows.npz", out)
                line.append(f"{label}: {result['advance']:.2f} s")
            one = times["1 rank"][-1]
            ratios = ", ".join(f"{label} {one / times[label][-1]:.2f}×" for label, _, _ in runs[1:])
            print(f"repeat {k + 1} ({result['steps']} steps): " + "; ".join(line))
            print(f"  speed-up over 1 rank in this run: {ratios}")
    print(f"\n  {'run':<18} {'best s':>8} {'speed-up (best)':>16} {'max |Δθ| vs 1 rank':>20}")
    best_one = min(times["1 rank"])
    for label, _, _ in runs:
        best = min(times[label])
        diff = f"{differences[label]:.1e}" if label in differences else "—"
        print(f"  {label:<18} {best:>8.2f} {best_one / best:>16.2f} {diff:>20}")


if __name__ == "__main__":
    main()
