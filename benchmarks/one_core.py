"""One core per benchmark process, so that no route gains or loses by threading.

A benchmark that compares routes side by side gives each the same machine: one core, as
``synfield`` runs a rank (continuum/app/cli.py).  ``OPENBLAS_NUM_THREADS=1`` bounds numpy's
BLAS, but XLA's CPU runtime (jaxlib 0.8) ignores ``--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1``: with those flags a jitted product of width 2048 still runs on
every core (``python benchmarks/one_core.py`` prints the rates; benchmarks/README.md "One core
per route").  :func:`pin` therefore binds the process to one core (``sched_setaffinity``)
before numpy or JAX start a thread, which bounds every thread pool at once.

Importing the module pins the process (:data:`CORES`).  ``BENCHMARK_CORES=all`` keeps the
cores the process was given (to measure what threading buys); a process already bound to one
core (``taskset -c 3``) stays there.

Usage: ``python benchmarks/one_core.py [--smoke]`` (about 10 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def pin() -> set[int]:
    """One BLAS thread and one core (the lowest the process may use) for this process and the
    threads it starts, unless ``BENCHMARK_CORES=all``; the caller's thread variables win.
    Returns the cores kept."""
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    cores = os.sched_getaffinity(0)
    if os.environ.get("BENCHMARK_CORES", "1") != "all":
        cores = {min(cores)}
        os.sched_setaffinity(0, cores)
    return cores


def product_rates(widths: tuple[int, ...] = (81, 2048), samples: int = 300) -> list[str]:
    """GFLOP/s of a jitted ``tanh(A B) Bᵀ`` (``A``: samples × n, ``B``: n × n, float64; the
    products of a dense layer's forward and backward pass) and of numpy's ``A @ B``, best of
    five, in this process."""
    import jax
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    f = jax.jit(lambda a, b: jnp.tanh(a @ b) @ b.T)
    lines = []
    for n in widths:
        a, b = rng.random((samples, n)), rng.random((n, n))
        ja, jb = jnp.asarray(a), jnp.asarray(b)
        f(ja, jb).block_until_ready()
        repeats = max(3, int(2e9 / (4 * samples * n * n)))
        rates = []
        for flops, run in (
            (4 * samples * n * n, lambda a=ja, b=jb: f(a, b).block_until_ready()),
            (2 * samples * n * n, lambda a=a, b=b: a @ b),
        ):
            best = float("inf")
            for _ in range(5):
                start = time.perf_counter()
                for _ in range(repeats):
                    run()
                best = min(best, (time.perf_counter() - start) / repeats)
            rates.append(flops / best / 1e9)
        lines.append(f"n = {n:5d}: jax {rates[0]:6.1f} GFLOP/s, numpy {rates[1]:6.1f} GFLOP/s")
    return lines


GIVEN = frozenset(os.sched_getaffinity(0))
"""The cores this process was given, before :func:`pin`."""

CORES = pin()
"""The cores this process runs on."""


def main() -> None:
    """The product rates of :func:`product_rates` in three fresh processes: every core, every
    core with XLA's one-thread flags, and one core by :func:`pin` (``--smoke``: width 81
    alone)."""
    widths = (81,) if "--smoke" in sys.argv else (81, 2048)
    if "--child" in sys.argv:
        print(f"  cores {sorted(CORES)}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
        print("\n".join(f"  {line}" for line in product_rates(widths)), flush=True)
        return
    os.sched_setaffinity(0, GIVEN)  # undo the import's pin: each child binds its own cores
    flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    for label, env in (
        ("every core, no flags", {"BENCHMARK_CORES": "all"}),
        ("every core, XLA's one-thread flags", {"BENCHMARK_CORES": "all", "XLA_FLAGS": flags}),
        ("one core (pin)", {}),
    ):
        print(label, flush=True)
        child = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | env
        subprocess.run([sys.executable, __file__, "--child", *sys.argv[1:]], env=child, check=True)


if __name__ == "__main__":
    main()
