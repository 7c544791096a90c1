"""Probe problems (local theories) under MPI: time per step and MPI calls per step.

Problem: ``examples/goldstein.toml`` (Goldstein's chain, N = 64; its continuum is the wave
equation on the circle, P2 on 128 cells: 256 unknowns, Newmark steps of ``dt = 0.002``),
``--steps`` steps (default 100) of the continuum alone (``model.advance_to``, in intervals of
the example's output period ``[output] every = 25``, as ``synfield run`` advances it), on 1, 2
and 3 ranks, with the two ways :class:`continuum.fields.local._FieldStepper` can step a system of
several ranks:

* ``replicated`` (what the code does up to ``REPLICATED_LIMIT`` unknowns): every rank steps the
  whole system; the fields are gathered and written back once per interval;
* ``distributed`` (``REPLICATED_LIMIT`` set to -1, what larger systems do): the distributed
  matrices, ghost exchanges and inner products, MUMPS solves.

Reported per step, on rank 0: the wall time (slowest rank, after a barrier, best of
``--repeats``) and, in a separate counting run, the MPI calls of the whole process (DOLFINx,
PETSc, MUMPS and mpi4py, which calls the large-count ``_c`` entry points) counted by an
``LD_PRELOAD`` interposer (``benchmarks/mpi_calls.c``, compiled here with ``cc``; without a
compiler only the times are reported): collectives (``Allreduce``, ``Allgatherv``,
``Bcast``, …) and point-to-point calls (``Isend``/``Irecv``/``Send``/``Recv``) separately.
One rank has no MPI traffic.

    python benchmarks/local_mpi.py [--steps 100] [--ranks 1 2 3]

On a machine with fewer cores than ranks the ranks share cores ("oversubscribed"): every
synchronisation then waits for a time slice, and the time per synchronisation, not the
arithmetic, sets the cost of a step.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "goldstein.toml"
POINT_TO_POINT = {
    name + large
    for name in ("MPI_Send", "MPI_Isend", "MPI_Recv", "MPI_Irecv", "MPI_Ssend")
    for large in ("", "_c")
}


def counter() -> ctypes.CDLL | None:
    """The preloaded interposer, or None when the run has none."""
    library = os.environ.get("LD_PRELOAD", "")
    if not library.endswith("mpi_calls.so"):
        return None
    lib = ctypes.CDLL(library)
    lib.mpicalls_name.restype = ctypes.c_char_p
    lib.mpicalls_count.restype = ctypes.c_long
    lib.mpicalls_on_self.restype = ctypes.c_long
    return lib


def counts(lib: ctypes.CDLL | None) -> dict[str, int]:
    """Calls per MPI function; ``… (self)`` those on a communicator of one process."""
    if lib is None:
        return {}
    found = {}
    for i in range(lib.mpicalls_n()):
        name = lib.mpicalls_name(i).decode()
        found[name], found[f"{name} (self)"] = lib.mpicalls_count(i), lib.mpicalls_on_self(i)
    return found


def child(mode: str, steps: int, count: bool) -> None:
    from mpi4py import MPI

    import continuum.fields.local
    from continuum.models.limit import continuum_model
    from continuum.settings import load_config
    from discrete.experiment import build

    if mode == "distributed":
        continuum.fields.local.REPLICATED_LIMIT = -1
    comm = MPI.COMM_WORLD
    setup = build(load_config(CONFIG))
    model = continuum_model(setup, comm)
    every, dt = setup.config.output.every, model.dt
    lib = counter() if count else None
    comm.Barrier()
    if lib is not None:
        lib.mpicalls_enable(1)
    start = time.perf_counter()
    for k in range(0, steps, every):
        model.advance_to(min(k + every, steps) * dt)
    elapsed = time.perf_counter() - start
    if lib is not None:
        lib.mpicalls_enable(0)
    calls = {name: n for name, n in counts(lib).items() if n}
    slowest = comm.allreduce(elapsed, op=MPI.MAX)
    if comm.rank == 0:
        print(json.dumps({"seconds": slowest, "calls": calls}))


def compile_counter(folder: Path) -> str | None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    out = folder / "mpi_calls.so"
    source = ROOT / "benchmarks" / "mpi_calls.c"
    done = subprocess.run(
        [compiler, "-shared", "-fPIC", "-O1", "-o", str(out), str(source), "-ldl"],
        capture_output=True,
    )
    return str(out) if done.returncode == 0 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=("replicated", "distributed"), help=argparse.SUPPRESS)
    parser.add_argument("--count", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.steps, args.count)
        return
    mpiexec = Path(sys.executable).parent / "mpiexec"
    with tempfile.TemporaryDirectory() as folder:
        library = compile_counter(Path(folder))
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))

        def measure(ranks: int, mode: str, count: bool) -> dict:
            command = [str(mpiexec), "-n", str(ranks), sys.executable, __file__]
            command += ["--child", mode, "--steps", str(args.steps)] + ["--count"] * count
            preload = {"LD_PRELOAD": library} if count and library else {}
            done = subprocess.run(command, capture_output=True, text=True, env=env | preload)
            if done.returncode != 0:
                raise SystemExit(done.stderr)
            return json.loads(done.stdout.strip().splitlines()[-1])

        print(f"{CONFIG.name}, {args.steps} continuum steps; {os.cpu_count()} cores")
        print("ranks  stepping      ms/step  collectives/step  point-to-point/step", end="")
        print("  on COMM_SELF/step")
        for ranks in args.ranks:
            for mode in ("replicated", "distributed"):
                if ranks == 1 and mode == "distributed":
                    continue  # one rank: the same path
                seconds = min(measure(ranks, mode, False)["seconds"] for _ in range(args.repeats))
                calls = measure(ranks, mode, True)["calls"]
                p2p = sum(n for name, n in calls.items() if name in POINT_TO_POINT)
                alone = sum(n for name, n in calls.items() if name.endswith("(self)"))
                collectives = sum(calls.values()) - p2p - alone
                label = "(one rank)" if ranks == 1 else mode
                print(
                    f"{ranks:5d}  {label:12s} {1e3 * seconds / args.steps:8.3f}  "
                    f"{collectives / args.steps:16.2f}  {p2p / args.steps:19.2f}  "
                    f"{alone / args.steps:17.2f}"
                )
                if calls:
                    print("       " + ", ".join(f"{k}: {v}" for k, v in sorted(calls.items())))


if __name__ == "__main__":
    main()
