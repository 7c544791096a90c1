"""Strong scaling 1 → 2 MPI ranks, and the time per step against the memory-bandwidth bound.

Problem: ``examples/deep-tanh.toml`` (three tanh layers, RK4 gradient flow, 50 steps) with the
continuum enlarged so that it dominates: widths ``--width`` (default 64) and P2 on ``--cells``
cells (default 512: 1025 dofs per factor, 3·1025² ≈ 3.2·10⁶ weight coefficients). The
continuum's output factor (rows of every coefficient matrix) is split over the ranks; the
discrete network is replicated on every rank (as ``synfield run`` does).

Measured for P = 1, 2 ranks:

* ``synfield run CONFIG -q`` under ``mpiexec -n P`` (subprocess): wall time and the
  ``timings_s`` of ``summary.json`` (``setup``: set-up and continuum model; ``run``: training,
  continuum solve, comparison and output), best of ``--repeats``;
* an instrumented child under ``mpiexec -n P`` that builds the same continuum model and times
  ``advance_to(t_end)`` alone (slowest rank, after a barrier): the solver's own scaling, and its
  time per step against the bandwidth bound.

Both in two environments: as inherited (numpy's and PETSc's OpenBLAS start one thread per core
in every rank, so 2 ranks run 4 BLAS threads on 2 cores) and with one BLAS thread per rank
(``OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1`` set for the subprocesses only).

Bandwidth: one RK4 step evaluates 4 gradients, each of which must at least read the local
coefficients ``W`` and write the gradient (``2·8·P_local`` bytes), and the update reads ``θ``,
``k1…k4`` and writes ``θ`` (``6·8·P_local``): at least ``112·P_local`` bytes per step per rank.
Achieved bandwidth = ranks × 112·P_local / (time per step), compared with the copy bandwidth
(numpy ``copyto`` of 800 MB arrays on as many threads as ranks, :mod:`bandwidth`) measured in
the same run. ``ratio`` = copy bandwidth / achieved bandwidth.

    python benchmarks/mpi_scaling.py [--cells 512] [--width 64] [--repeats 2]
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

ROOT = Path(__file__).resolve().parent.parent
MPIEXEC = ROOT / ".venv" / "bin" / "mpiexec"
PYTHON = ROOT / ".venv" / "bin" / "python"
SYNFIELD = ROOT / ".venv" / "bin" / "synfield"
BYTES_PER_COEFFICIENT_STEP = 112


def child(config_path: str) -> None:
    from mpi4py import MPI

    from continuum.app.convergence import final_state
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
    t_end = setup.steps * setup.dt
    start = time.perf_counter()
    model.advance_to(t_end)
    mine = time.perf_counter() - start
    comm.Barrier()
    advance = comm.allreduce(mine, op=MPI.MAX)
    local = model.galerkin.size
    total = comm.allreduce(local)
    largest = comm.allreduce(local, op=MPI.MAX)
    start = time.perf_counter()
    final_state(setup)
    discrete = comm.allreduce(time.perf_counter() - start, op=MPI.MAX)
    if comm.rank == 0:
        print(
            json.dumps(
                {
                    "build": build_s,
                    "advance": advance,
                    "steps": setup.steps,
                    "coefficients": total,
                    "largest_local": largest,
                    "discrete": discrete,
                }
            )
        )


def write_config(folder: Path, width: int, cells: int) -> Path:
    text = (ROOT / "examples" / "deep-tanh.toml").read_text()
    text = re.sub(
        r"^widths\s*=.*$", f"widths = [{width}, {width}, {width}, {width}]", text, flags=re.M
    )
    text = re.sub(r"^cells\s*=.*$", f"cells = {cells}", text, flags=re.M)
    path = folder / f"deep-tanh-w{width}-c{cells}.toml"
    path.write_text(text)
    return path


VARIANTS = {
    "default environment": {},
    "one BLAS thread per rank": {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
}


def environment(variant: str) -> dict[str, str]:
    return {**os.environ, **VARIANTS[variant]}


def synfield_run(ranks: int, config: Path, out: Path, variant: str) -> tuple[float, dict]:
    start = time.perf_counter()
    subprocess.run(
        [
            str(MPIEXEC),
            "-n",
            str(ranks),
            str(SYNFIELD),
            "run",
            str(config),
            "-q",
            "--overwrite",
            "-o",
            str(out),
        ],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        env=environment(variant),
    )
    wall = time.perf_counter() - start
    return wall, json.loads((out / "summary.json").read_text())["timings_s"]


def run_child(ranks: int, config: Path, variant: str) -> dict:
    result = subprocess.run(
        [str(MPIEXEC), "-n", str(ranks), str(PYTHON), __file__, "--child", str(config)],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=environment(variant),
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=512)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bandwidth import stream

    print(f"MPI strong scaling — {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    copy_1, copy_all, _ = stream(800.0, 1.0, os.cpu_count() or 1)
    print(
        f"copy bandwidth (numpy copyto, 800 MB): {copy_1 / 1e9:.2f} GB/s one thread, "
        f"{copy_all / 1e9:.2f} GB/s {os.cpu_count()} threads"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = write_config(tmp, args.width, args.cells)
        print(
            f"problem: deep-tanh, widths [{args.width}]*4, continuum P2 with {args.cells} cells "
            "per factor, RK4 dt = 0.02, 50 steps"
        )
        for variant, extra in VARIANTS.items():
            runs, children = {}, {}
            for ranks in args.ranks:
                tries = [
                    synfield_run(ranks, config, tmp / f"out{ranks}-{k}", variant)
                    for k in range(args.repeats)
                ]
                runs[ranks] = min(tries, key=lambda t: t[0])
                children[ranks] = min(
                    (run_child(ranks, config, variant) for _ in range(args.repeats)),
                    key=lambda c: c["advance"],
                )
            label = " ".join(f"{k}={v}" for k, v in extra.items()) or "as inherited"
            print(f"\n=== {variant} ({label})")
            report(args.ranks[0], runs, children, copy_1, copy_all)


def report(base: int, runs: dict, children: dict, copy_1: float, copy_all: float) -> None:
    print(f"coefficients (all ranks): {children[base]['coefficients']}")
    print("synfield run (mpiexec -n P, end to end; best of repeats)")
    print(
        f"  {'P':>2} {'wall s':>8} {'setup s':>8} {'run s':>8} {'speed-up (wall)':>16} "
        f"{'eff.':>6} {'speed-up (run)':>15} {'eff.':>6}"
    )
    for ranks, (wall, t) in runs.items():
        sw, sr = runs[base][0] / wall, runs[base][1]["run"] / t["run"]
        print(
            f"  {ranks:>2} {wall:>8.2f} {t['setup']:>8.3f} {t['run']:>8.2f} {sw:>16.2f} "
            f"{sw / ranks * base:>6.0%} {sr:>15.2f} {sr / ranks * base:>6.0%}"
        )
    print("continuum solve alone (advance_to, slowest rank) and the bandwidth bound")
    print(
        f"  {'P':>2} {'advance s':>10} {'s / step':>10} {'speed-up':>9} {'eff.':>6} "
        f"{'bytes/step':>11} {'GB/s':>7} {'copy GB/s':>10} {'ratio':>6} "
        f"{'discrete s (replicated)':>24}"
    )
    for ranks, c in children.items():
        per_step = c["advance"] / c["steps"]
        speed = children[base]["advance"] / c["advance"]
        moved = BYTES_PER_COEFFICIENT_STEP * c["coefficients"]
        achieved = moved / per_step
        bound = copy_1 if ranks == 1 else copy_all
        print(
            f"  {ranks:>2} {c['advance']:>10.3f} {per_step:>10.4f} {speed:>9.2f} "
            f"{speed / ranks * base:>6.0%} {moved / 1e6:>9.0f}MB {achieved / 1e9:>7.2f} "
            f"{bound / 1e9:>10.2f} {bound / achieved:>6.1f} {c['discrete']:>24.3f}"
        )


if __name__ == "__main__":
    main()
