"""Time steps with and without keeping freed memory in the process (``discrete.allocator``).

Each configuration runs in a fresh child process (the allocator settings are per process):
``off`` leaves glibc's adaptive mmap and trim thresholds alone, ``on`` is what every training
rule does (:func:`discrete.allocator.retain_freed_memory`).  Measured per RK4 step (best of
3 runs of 10 steps, after one warm-up step), for the three-layer tanh network of
``examples/deep-tanh.toml`` at width ``N`` and its Galerkin continuum (data-span input layer,
P2 on ``cells`` cells), and the ratio off/on side by side.

    python benchmarks/allocator.py [--widths 64 256] [--cells 32 96]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def step_seconds(rule, state, steps: int = 10, repeats: int = 3) -> float:
    state = rule.step(state)
    best = float("inf")
    for _ in range(repeats):
        s, start = state, time.perf_counter()
        for _ in range(steps):
            s = rule.step(s)
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def child(mode: str, widths: list[int], cells: list[int]) -> None:
    from mpi4py import MPI  # first: it loads the MPI library that DOLFINx links against

    import discrete.training
    from continuum.app.convergence import with_width
    from continuum.models.limit import continuum_model
    from continuum.settings import load_config
    from discrete.experiment import build

    if mode == "off":
        discrete.training.retain_freed_memory = lambda: False
    config = load_config(ROOT / "examples" / "deep-tanh.toml")
    out = {}
    for N in widths:
        setup = build(with_width(config, N))
        out[f"network N={N} ({setup.theta0.size} parameters)"] = step_seconds(
            setup.rule, setup.rule.initial(setup.theta0)
        )
    for c in cells:
        cfg = dataclasses.replace(
            config,
            continuum=dataclasses.replace(config.continuum, cells=c, input_layer="data-span"),
        )
        model = continuum_model(build(with_width(cfg, 8)), MPI.COMM_SELF)
        size = model.state.theta.size
        out[f"FEM span P2 c={c} ({size} coefficients)"] = step_seconds(model.rule, model.state)
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--cells", type=int, nargs="+", default=[32, 96])
    parser.add_argument("--child", choices=["off", "on"])
    args = parser.parse_args()
    if args.child:
        child(args.child, args.widths, args.cells)
        return
    sizes = ["--widths", *map(str, args.widths), "--cells", *map(str, args.cells)]
    results = {}
    for mode in ("off", "on"):
        done = subprocess.run(
            [sys.executable, __file__, "--child", mode, *sizes],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"allocator — {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, one rank")
    print(f"  {'case':<44} {'off ms/step':>12} {'on ms/step':>11} {'off/on':>7}")
    for case, on in results["on"].items():
        off = results["off"][case]
        print(f"  {case:<44} {off * 1e3:>12.3f} {on * 1e3:>11.3f} {off / on:>7.2f}")


if __name__ == "__main__":
    main()
