"""The digits classifier of infinite width against networks of width 16 … 1024.

Problem: ``examples/digits.toml`` (64 → N → N → 10 tanh, softmax cross-entropy, pixels
scaled to [0, 1], η = 20, full-batch RK4 flow to t = 10), every width and the continuum
trained by the same rule with the same step on the same rows, so that all are compared at
equal training time, on the example's 300 training and 300 test rows.  Changed from the
example, to keep the RK4 flow inside its stability region and the continuum's own error
visible:

* ``--dt 0.01`` (the example: 0.02): the largest eigenvalue ``λ`` of the linearised flow
  ``θ̇ = −η ∂C/∂θ`` grows during training to about 164 (the continuum of the example at
  t = 5), and RK4 is stable for ``hλ ≤ 2.785`` (:func:`discrete.stability.stable_step`):
  at dt = 0.02 the flow leaves the stability region near t = 5 (the spikes of the training
  cost in docs/digits-field-theory.png).  The script measures ``λ`` along the continuum's
  trajectory (power iteration on the Jacobian of the force, central differences) at every
  ``--every`` time units and refuses a ``dt`` beyond the bound of the largest;
* ``--cells 100`` (the example: 32): P2 nodes that are none of the lattice points of any
  width 2^k (docs/convergence.md), so the continuum's mesh error is not hidden there.

One gradient of the width-N network costs about ``6 N² L`` flops: the width 1024 (4 000
gradients of 0.07–0.17 s with one BLAS thread) dominates; the whole run takes 8–15 minutes
on a shared 2-core machine (``OPENBLAS_NUM_THREADS=1``; ``--t-end 5`` halves it).

Printed: the stiffness along the trajectory, then per width the final training cost,
training and test accuracy, test cost, the largest distance of the network's test outputs
``Z_N`` from the continuum's ``Z_∞`` and the wall time; the same for the continuum; the
fitted order of ``max |Z_N − Z_∞|`` in ``1/N``, beside the continuum's own error (its
distance from the continuum on half the cells).  Writes the figure ``docs/digits-accuracy.png``
(``--figure``; accuracies against N beside the continuum's, and the output distance).

    python benchmarks/digits_accuracy.py [--widths 16 32 64 128 256 512 1024]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI  # before DOLFINx

from continuum.app.convergence import with_width
from continuum.models.limit import continuum_model
from continuum.settings import Config, load_config
from discrete.experiment import build
from discrete.stability import stable_step
from discrete.training import Rule, integrate

ROOT = Path(__file__).resolve().parent.parent
Array = np.ndarray


def stiffness(rule: Rule, theta: Array, iterations: int = 60) -> float:
    """The largest eigenvalue ``λ`` of ``−∂F/∂θ`` for the force ``F = −η ∂C/∂θ`` at ``θ``
    (power iteration; ``J u`` by central differences of ``F``).  ``−∂F/∂θ`` is similar to
    a symmetric matrix (the rates and the mass matrices are positive), so ``λ`` is real."""
    u = np.random.default_rng(0).standard_normal(theta.size)
    u /= np.linalg.norm(u)
    eps = 1e-6 * max(1.0, float(np.linalg.norm(theta)))
    lam = 0.0
    for _ in range(iterations):
        v = -(rule.force(theta + eps * u) - rule.force(theta - eps * u)) / (2 * eps)
        lam = float(u @ v)
        u = v / np.linalg.norm(v)
    return lam


def configured(args: argparse.Namespace) -> Config:
    config = load_config(ROOT / "examples" / "digits.toml")
    return config.replace(
        data={"samples": args.samples, "test": args.test},
        training={"dt": args.dt, "t_end": args.t_end},
        continuum={"cells": args.cells},
    )


def solve_continuum(config: Config, every: float | None):
    """The continuum trained to ``t_end``, its figures, and ``λ`` at every ``every`` (none
    for ``None``)."""
    start = time.perf_counter()
    model = continuum_model(build(config), MPI.COMM_SELF)
    T = config.training.steps * config.training.dt
    stiff = []
    for t in np.arange(0.0, T + 1e-9, every) if every else []:
        model.advance_to(t)
        stiff.append((float(t), stiffness(model.rule, model.state.theta)))
    model.advance_to(T)
    data = model.setup.data
    figures = {"cost": model.cost(), **model.held_out(), "seconds": time.perf_counter() - start}
    outputs = model.galerkin.outputs(model.state.theta, data.X_test.T).T
    return figures, outputs, stiff


def train_network(config: Config, N: int, Z_inf: Array) -> dict[str, float]:
    start = time.perf_counter()
    s = build(with_width(config, N))
    *_, last = integrate(s.rule, s.rule.initial(s.theta0), s.steps, s.steps)
    cost_test, acc_test = s.cost.on(last.theta, s.data.X_test, s.data.Y_test)
    Z = s.network.forward(last.theta, s.data.X_test).output
    return {
        "cost": s.cost.value(last.theta),
        "accuracy_train": s.cost.on(last.theta, s.data.X, s.data.Y)[1],
        "cost_test": cost_test,
        "accuracy_test": acc_test,
        "distance": float(np.abs(Z - Z_inf).max()),
        "seconds": time.perf_counter() - start,
    }


def figure(path: Path, widths: list[int], rows: list[dict], limit: dict, mesh: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key, label, style in (("accuracy_train", "train", "o-"), ("accuracy_test", "test", "s-")):
        line = ax1.semilogx([*widths], [r[key] for r in rows], style, base=2, label=label)
        ax1.axhline(limit[key], ls="--", color=line[0].get_color(), label=f"{label}, N = ∞")
    ax1.set(xlabel="width N", ylabel="accuracy", title="digits, networks against the continuum")
    ax1.legend(fontsize=8)
    distance = [r["distance"] for r in rows]
    ax2.loglog(widths, distance, "o-", base=2, label=r"$\max |Z_N - Z_\infty|$ (test rows)")
    ax2.loglog(
        widths,
        distance[0] * (widths[0] / np.array(widths)) ** 2,
        "k:",
        base=2,
        label=r"$\propto N^{-2}$",
    )
    ax2.axhline(mesh, color="gray", ls="--", label=r"$\max |Z_\infty^{h} - Z_\infty^{2h}|$")
    ax2.set(xlabel="width N", title="outputs approach the continuum's")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 128, 256, 512, 1024])
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--dt", type=float, default=0.01)
    parser.add_argument("--t-end", type=float, default=10.0)
    parser.add_argument("--cells", type=int, default=100)
    parser.add_argument("--every", type=float, default=1.0, help="stiffness check interval")
    parser.add_argument("--figure", type=Path, default=ROOT / "docs" / "digits-accuracy.png")
    args = parser.parse_args()
    config = configured(args)
    print(
        f"digits accuracy against width — {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.2f}; {args.samples - args.test} training rows, {args.test} test "
        f"rows, RK4 flow η = 20, dt = {args.dt:g}, t_end = {args.t_end:g}, continuum P2 on "
        f"{args.cells} cells"
    )
    limit, Z_inf, stiff = solve_continuum(config, args.every)
    coarse = config.replace(continuum={"cells": args.cells // 2})
    mesh = float(np.abs(solve_continuum(coarse, None)[1] - Z_inf).max())
    print(f"continuum's own error: max|Z_∞(h) − Z_∞(2h)| = {mesh:.2e} ({args.cells // 2} cells)")
    rule = build(config).rule
    lam = max(s for _, s in stiff)
    bound = stable_step(rule, lam, 1.0)
    along = ", ".join(f"t={t:g}: {s:.1f}" for t, s in stiff)
    print(f"stiffness λ of the continuum's flow: {along}")
    print(f"largest λ = {lam:.1f}: RK4 stable for dt ≤ {bound:.4f}; dt·λ = {args.dt * lam:.3f}")
    if args.dt > bound:
        raise SystemExit(f"dt = {args.dt:g} is beyond the stability bound {bound:.4f}")
    head = ("N", "C train", "acc train", "C test", "acc test", "max|Z−Z∞|", "s")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    rows = []
    for N in args.widths:
        r = train_network(config, N, Z_inf)
        rows.append(r)
        print(
            f"| {N} | {r['cost']:.5f} | {r['accuracy_train']:.4f} | {r['cost_test']:.5f} | "
            f"{r['accuracy_test']:.4f} | {r['distance']:.2e} | {r['seconds']:.1f} |",
            flush=True,
        )
    print(
        f"| ∞ | {limit['cost']:.5f} | {limit['accuracy_train']:.4f} | {limit['cost_test']:.5f} "
        f"| {limit['accuracy_test']:.4f} | — | {limit['seconds']:.1f} |"
    )
    distance = np.array([r["distance"] for r in rows])
    fit = -np.polyfit(np.log(args.widths), np.log(distance), 1)[0]
    widths = np.array(args.widths, dtype=float)
    orders = np.log(distance[:-1] / distance[1:]) / np.log(widths[1:] / widths[:-1])
    print(f"orders of max|Z_N − Z_∞| between widths: {np.round(orders, 2)}; fitted {fit:.2f}")
    figure(args.figure, args.widths, rows, limit, mesh)
    print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
