"""Ensembles over random initialisations: mean and spread of the fields.

An i.i.d. random initialisation has no pointwise field limit (SPEC 2): the noise is treated
statistically.  With ``[init] kind = "random"`` (smooth mean ``w̄(x, y)`` plus ``scale``
times seeded noise), the ensemble of ``S`` seeds ``seed, seed + 1, …`` is split over the
ranks (``MPI.Comm.Split``: each member trains on a communicator of its own), the first two
moments are reduced over the whole job, and the mean field is compared with the continuum
solution started from the smooth mean::

    w̄_S = (1/S) Σ_s w_s,      σ_S² = (1/(S−1)) Σ_s (w_s − w̄_S)².

For a linear network the dynamics commute with the average, so ``w̄_S`` converges to the
noise-free trajectory at the sampling rate ``σ/√S``.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np
from mpi4py import MPI

from discrete.config import Config
from discrete.experiment import build
from discrete.training import integrate

from .limit import continuum_model
from .output import version
from .run import lattice_l2

Array = np.ndarray


def member_config(config: Config, seed: int) -> Config:
    return dataclasses.replace(config, init=dataclasses.replace(config.init, seed=seed))


def member_fields(config: Config) -> tuple[Array, list[list[Array]], list[list[Array]]]:
    """Output times and the field-normalised ``w``, ``b`` of every layer at those times."""
    setup = build(config)
    net, conv = setup.network, setup.convention
    times, ws, bs = [], [], []
    every = config.output.every
    for state in integrate(setup.rule, setup.rule.initial(setup.theta0), setup.steps, every):
        w, b = conv.to_fields(net, state.theta)
        times.append(state.t)
        ws.append([net.layers[m].dense(w[m]) for m in range(net.depth)])
        bs.append(b)
    return np.array(times), ws, bs


def run_ensemble(config: Config, seeds: int, outdir: str | Path, comm: MPI.Comm) -> dict:
    """Train ``seeds`` members split over the ranks; write ``outdir/ensemble.h5`` and
    ``outdir/summary.json`` (seeds, ranks, output times, ``‖w̄_S − w_h‖`` at each)."""
    if config.init.kind != "random":
        raise ValueError("an ensemble needs [init] kind = 'random' (a smooth mean plus noise)")
    if seeds < 2:
        raise ValueError(f"an ensemble needs at least 2 seeds, got {seeds}")
    member_comm = comm.Split(color=comm.rank, key=0)
    mine = list(range(comm.rank, seeds, comm.size))
    sums = squares = times = None
    for s in mine:
        times, ws, bs = member_fields(member_config(config, config.init.seed + s))
        flat = np.concatenate(
            [np.concatenate([a.ravel() for a in w + b]) for w, b in zip(ws, bs, strict=True)]
        )
        sums = flat if sums is None else sums + flat
        squares = flat**2 if squares is None else squares + flat**2
    member_comm.Free()
    size = comm.allreduce(0 if sums is None else sums.size, op=MPI.MAX)
    total = np.zeros(size) if sums is None else sums
    total_sq = np.zeros(size) if squares is None else squares
    comm.Allreduce(MPI.IN_PLACE, total)
    comm.Allreduce(MPI.IN_PLACE, total_sq)
    times = comm.bcast(times, root=0)
    mean = total / seeds
    std = np.sqrt(np.maximum(total_sq - seeds * mean**2, 0.0) / (seeds - 1))

    smooth = dataclasses.replace(
        config, init=dataclasses.replace(config.init, kind="expression", scale=0.0)
    )
    setup = build(smooth)
    net, conv = setup.network, setup.convention
    model = continuum_model(setup, comm)
    shapes = [(layer.n_out, layer.n_in) for layer in net.layers]
    sizes = [a * b for a, b in shapes] + [a for a, _ in shapes]
    per_time = sum(sizes)
    mean = mean.reshape(len(times), per_time)
    std = std.reshape(len(times), per_time)
    result = {"seeds": seeds, "ranks": comm.size, "l2_error_mean": []}
    rows: dict[str, list[Array]] = {}
    for k, t in enumerate(times):
        parts = np.split(mean[k], np.cumsum(sizes)[:-1])
        sparts = np.split(std[k], np.cumsum(sizes)[:-1])
        wm = [p.reshape(s) for p, s in zip(parts[: net.depth], shapes, strict=True)]
        ws = [p.reshape(s) for p, s in zip(sparts[: net.depth], shapes, strict=True)]
        for m in range(net.depth):
            rows.setdefault(f"/ensemble/layer{m}/w_mean", []).append(wm[m])
            rows.setdefault(f"/ensemble/layer{m}/w_std", []).append(ws[m])
            rows.setdefault(f"/ensemble/layer{m}/b_mean", []).append(parts[net.depth + m])
            rows.setdefault(f"/ensemble/layer{m}/b_std", []).append(sparts[net.depth + m])
        if model is not None:
            model.advance_to(t)
            wc = [net.layers[m].dense(a) for m, a in enumerate(model.lattice_fields()[0])]
            err = np.sqrt(
                sum(
                    lattice_l2(wm[m] - wc[m], conv.layers[m + 1].measure, conv.layers[m].measure)
                    ** 2
                    for m in range(net.depth)
                )
            )
            result["l2_error_mean"].append(float(err))
            for m in range(net.depth):
                rows.setdefault(f"/continuum/layer{m}/w_at_lattice", []).append(wc[m])
    if comm.rank == 0:
        outdir = Path(outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        with h5py.File(outdir / "ensemble.h5", "w") as f:
            f.attrs.update(
                {
                    "synfield_version": version(),
                    "config": config.text,
                    "ranks": comm.size,
                    "seeds": seeds,
                    "created": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            )
            f["/ensemble/times"] = times
            f["/ensemble/seeds"] = config.init.seed + np.arange(seeds)
            for name, values in rows.items():
                f[name] = np.array(values)
            if result["l2_error_mean"]:
                f["/comparison/l2_error_mean"] = np.array(result["l2_error_mean"])
        summary = {"experiment": config.experiment.name, **result, "times": list(times)}
        (outdir / "summary.json").write_text(json.dumps(summary, indent=2))
    return result
