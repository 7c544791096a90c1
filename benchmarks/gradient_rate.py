"""The continuum gradient near the machine's limits: FLOP/s against dgemm, bytes against copy.

One Galerkin gradient (:meth:`continuum.fields.galerkin.GalerkinNetwork.gradient`, docs/physics.md
"Galerkin fields") of a network with weight blocks ``n_{m+1} × n_m`` and ``L`` samples runs

* the weight products ``W η`` (forward), ``Wᵀ d`` (backward) and ``R Sᵀ`` (the rank-``L``
  gradient block): ``Σ_m 6 n_{m+1} n_m L`` FLOPs, all GEMMs of an ``n × n`` block with an
  ``n × L`` one;
* the factor-space products, as executed: the tabulation ``T u`` (values at the ``n_q``
  quadrature points), the loads ``Tᵀ(ω f)`` and the Riesz images ``M⁻¹ (·)``; dense
  (``2 n_q n L``, and ``4 n_q n L`` for the fused ``[Tᵀω; M⁻¹Tᵀω]``) or cell-batched
  (``2 nnz L``, ``nnz = n_q`` × DOFs per cell, with a dense ``M⁻¹`` (``2 n² L``) up to 400
  DOFs and above it the interiors of blocks of cells condensed on an interval
  (:mod:`continuum.fem.condensation`), whose FLOPs are not counted) as the space's rule picks them
  for ``L`` columns (:func:`continuum.fem.spaces.dense_is_faster`).

The rate is ``FLOPs / time`` (best of repeats, on one core: benchmarks/one_core.py), printed
beside the dgemm rate of the same run (``2048³``); the bytes are the compulsory traffic of the
weight blocks (each read twice, the gradient block written once: ``24 Σ_m n_{m+1} n_m``) beside
numpy's copy bandwidth (read + write of 800 MB).

    python benchmarks/gradient_rate.py [--problems digits deep-tanh-L256] [--profile]
        [--quadrature gauss nodal] [--smoke]

prints the rates at the user-scale sizes of :func:`accuracy_per_cost.user_scale_problems`
and, with ``--profile``, the functions the gradient spends its time in (cProfile); with
``--quadrature nodal`` (``[continuum] quadrature = "nodal"``) the factor spaces' products are
element-wise and only the weight products remain.
"""

from __future__ import annotations

import os

import one_core  # benchmarks/: one core, as `synfield` runs a rank, before numpy loads

# isort: split

import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from continuum.fem.spaces import DENSE_INVERSE_SIZE
from continuum.fields.galerkin import GalerkinNetwork


def best_of(run: Callable[[], object], repeats: int) -> float:
    """Best wall time of ``run()`` over ``repeats`` calls."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def dgemm_rate(n: int = 2048, repeats: int = 3) -> float:
    """FLOP/s of numpy's ``A @ B`` (dgemm, ``n × n``), best of ``repeats``."""
    a, b = np.random.default_rng(0).random((2, n, n))
    return 2.0 * n**3 / best_of(lambda: a @ b, repeats)


def copy_bandwidth(megabytes: int = 800, repeats: int = 3) -> float:
    """Bytes/s of ``np.copyto`` (each byte read once and written once)."""
    a = np.ones(megabytes * 1_000_000 // 8)
    b = np.empty_like(a)
    return 2.0 * a.nbytes / best_of(lambda: np.copyto(b, a), repeats)


def space_flops(space, samples: int) -> tuple[int, int]:
    """FLOPs of one ``at_quadrature`` and of one ``moments`` call of ``space`` on ``samples``
    columns, as executed (0 for index and one-point layers, and for nodal spaces, whose
    tabulation, loads and Riesz images are element-wise)."""
    if space.elementwise:
        return 0, 0
    n, nq = space.size, len(space.quadrature_weights)
    dense, fused = space.dense_products(samples)
    nnz = sp.csr_matrix(space.tabulation).nnz
    tabulation = nq * n if dense else nnz
    inverse = n * n if n <= DENSE_INVERSE_SIZE else 0
    moments = 2 * nq * n if fused else tabulation + inverse
    return 2 * tabulation * samples, 2 * moments * samples


def gradient_work(g: GalerkinNetwork) -> tuple[int, int, int]:
    """``(weight FLOPs, all counted FLOPs, weight bytes)`` of one full-batch gradient: every
    hidden space is tabulated and loaded with its Riesz image twice (forward and backward),
    the output space once each; the input layer's moments are computed once, not per call."""
    L = g.samples
    weights = sum(6 * n_out * n_in * L for n_out, n_in in g.shapes)
    spaces = g.spaces[1:]
    factor = 0
    for k, space in enumerate(spaces):
        tab, mom = space_flops(space, L)
        factor += (tab + mom) * (1 if k == len(spaces) - 1 else 2)
    return weights, weights + factor, sum(24 * n_out * n_in for n_out, n_in in g.shapes)


def gradient_rate(g: GalerkinNetwork, theta: np.ndarray, repeats: int = 5) -> dict[str, float]:
    """Time of one gradient, its FLOP rates (weights only, all counted) as fractions of the
    dgemm rate, and its weight-byte rate as a fraction of the copy bandwidth; dgemm and copy
    are measured just before and just after the gradient (the larger of the two is used: on a
    shared machine the load changes within seconds)."""
    peak, bandwidth = dgemm_rate(repeats=min(repeats, 3)), copy_bandwidth(repeats=min(repeats, 3))
    calls = max(1, int(0.05 / best_of(lambda: g.gradient(theta), 1)))
    seconds = best_of(lambda: [g.gradient(theta) for _ in range(calls)], repeats) / calls
    peak = max(peak, dgemm_rate(repeats=min(repeats, 3)))
    bandwidth = max(bandwidth, copy_bandwidth(repeats=min(repeats, 3)))
    weights, total, nbytes = gradient_work(g)
    return {
        "peak_gflops": peak / 1e9,
        "copy_gbytes": bandwidth / 1e9,
        "seconds": seconds,
        "weight_gflops": weights / seconds / 1e9,
        "all_gflops": total / seconds / 1e9,
        "weight_fraction": weights / seconds / peak,
        "all_fraction": total / seconds / peak,
        "gbytes": nbytes / seconds / 1e9,
        "byte_fraction": nbytes / seconds / bandwidth,
    }


def describe(label: str, g: GalerkinNetwork, r: dict[str, float]) -> str:
    coefficients = sum(a * b for a, b in g.shapes)
    return (
        f"continuum gradient, {label} ({coefficients} weight coefficients, L = {g.samples}): "
        f"{r['seconds'] * 1e3:.3f} ms; weight products {r['weight_gflops']:.1f} GFLOP/s = "
        f"{r['weight_fraction']:.0%} of dgemm, all counted products {r['all_gflops']:.1f} "
        f"GFLOP/s = {r['all_fraction']:.0%}; weight bytes {r['gbytes']:.1f} GB/s = "
        f"{r['byte_fraction']:.0%} of copy (dgemm {r['peak_gflops']:.1f} GFLOP/s, copy "
        f"{r['copy_gbytes']:.1f} GB/s)"
    )


def main() -> None:
    import argparse
    import cProfile
    import pstats

    from accuracy_per_cost import USER_SCALE, solve_fem, user_scale_problems, with_dt

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    problems = user_scale_problems()
    # the problems of dense Galerkin fields (the residual network's are depth fields)
    dense = [name for name in USER_SCALE if problems[name].gradient_sizes]
    parser.add_argument("--problems", nargs="+", default=dense, choices=dense)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--quadrature", nargs="+", default=["gauss"], choices=("gauss", "nodal"), help="rules"
    )
    parser.add_argument("--smoke", action="store_true", help="P2 on 4 cells, one repeat")
    args = parser.parse_args()
    if args.smoke:
        args.repeats = 1
    print(
        f"gradient rate — {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, on "
        f"cores {sorted(one_core.CORES)}"
    )
    for name in args.problems:
        p = problems[name]
        cfg = with_dt(p.config, p.config.training.steps * p.config.training.dt)  # one step
        sizes = [(2, 4)] if args.smoke else p.gradient_sizes
        for (degree, cells), rule in ((s, q) for s in sizes for q in args.quadrature):
            model = solve_fem(cfg, degree, cells, quadrature=rule)
            g, theta = model.galerkin, model.state.theta
            r = gradient_rate(g, theta, args.repeats)
            label = f"P{degree} {cells} cells, {rule}"
            print(f"  {name}: {describe(label, g, r)}", flush=True)
            if args.profile:
                profile = cProfile.Profile(time.process_time)  # CPU time: robust to load
                profile.runcall(lambda g=g, theta=theta: [g.gradient(theta) for _ in range(20)])
                pstats.Stats(profile).sort_stats("tottime").print_stats(8)


if __name__ == "__main__":
    main()
