"""Set-up cost of the quadrature check (continuum/fem/quadrature.py), with and without its record.

For three continuum models the time from the discrete setup to a built model
(``continuum_model``: spaces, the converged Gauss rule, the fields, the time scheme) is
measured side by side, alternating, best of ``--repeats``:

* ``checked``: an empty record (:data:`continuum.fem.quadrature.VERIFIED_RULES` cleared before
  every build): the check builds the fields with rules ``q`` and ``q + 2`` until they agree,
  as the first model of a process does;
* ``recorded``: the record holds this model's verified rule: the fields are built once.

    python benchmarks/quadrature_check.py [--repeats 30] [--smoke]

``--smoke`` (the suite's run): one repeat.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import time
from pathlib import Path

from mpi4py import MPI

from continuum.fem import quadrature
from continuum.models.limit import continuum_model
from continuum.settings import load_config
from discrete.experiment import build

ROOT = Path(__file__).resolve().parent.parent

CASES = {
    "perceptron span P2 exp, 16 cells": (
        "perceptron",
        {"degree": 2, "cells": 16, "input_layer": "data-span", "scheme": "exponential"},
    ),
    "image layer span P2 exp, 16 cells": (
        "image-layer",
        {"degree": 2, "cells": 16, "input_layer": "data-span", "scheme": "exponential"},
    ),
    "deep-tanh span P2 adapt, 8 cells": (
        "deep-tanh",
        {"degree": 2, "cells": 8, "input_layer": "data-span", "scheme": "adaptive"},
    ),
    "deep-tanh P8, 4 cells": ("deep-tanh", {"degree": 8, "cells": 4, "scheme": "matched"}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--smoke", action="store_true", help="one repeat (the suite's run)")
    args = parser.parse_args()
    if args.smoke:
        args.repeats = 1
    print(f"quadrature check set-up — load average {os.getloadavg()[0]:.2f}, one rank")
    print(f"  {'model':<36} {'rule q':>6} {'checked ms':>11} {'recorded ms':>12} {'saved ms':>9}")
    for label, (example, continuum) in CASES.items():
        config = load_config(ROOT / f"examples/{example}.toml").replace(continuum=continuum)
        setup = build(config)
        q = continuum_model(setup, MPI.COMM_SELF).spaces[-1].quadrature_degree  # warm caches
        best = {"checked": float("inf"), "recorded": float("inf")}
        for _ in range(args.repeats):
            for kind in best:
                if kind == "checked":
                    quadrature.VERIFIED_RULES.clear()
                start = time.perf_counter()
                continuum_model(setup, MPI.COMM_SELF)
                best[kind] = min(best[kind], time.perf_counter() - start)
        checked, recorded = best["checked"] * 1e3, best["recorded"] * 1e3
        print(f"  {label:<36} {q:>6} {checked:>11.2f} {recorded:>12.2f} {checked - recorded:>9.2f}")


if __name__ == "__main__":
    main()
