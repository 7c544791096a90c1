"""Ensembles over random initialisations or over SGD sample schedules: mean, spread and a
low-rank sketch of the covariance of the fields.

An i.i.d. random initialisation has no pointwise field limit (docs/physics.md "Random initial
fields"): the noise is treated statistically. With ``[init] kind = "random"`` (smooth mean
``w̄(x, y)`` plus ``scale`` times seeded noise), the ensemble of ``S`` seeds ``seed, seed + 1, …``
is split over the ranks (each member a discrete run on one rank, one member per rank in each
round), the first two moments are reduced over the whole job, and the mean field is compared with
the continuum solution started from the smooth mean::

    w̄_S = (1/S) Σ_s w_s,      σ_S² = (1/(S−1)) Σ_s (w_s − w̄_S)².

For a linear network the dynamics commute with the average, so ``w̄_S`` converges to the
noise-free trajectory at the sampling rate ``σ/√S``.

``over = "schedule"`` (docs/physics.md "SGD fluctuations"): the members share the initial fields and
differ in the SGD sample schedule only (``[training] seed + s``; SGD, or momentum SGD with i.i.d.
batches); with ``[continuum] fluctuations = "moments"`` the ensemble mean and variance are compared
with the continuum's mean field and ``w_var_at_lattice`` of every layer (the exact law of
:mod:`continuum.fields.fluctuations`, or the linear-noise law of
:mod:`continuum.fields.linear_noise`).

Members are trained in rounds of one per rank and gathered to rank 0, which accumulates them
in seed order: the result does not depend on the number of ranks, bit for bit.  The
covariance of the flat field vector ``f`` (every layer's ``w``, then every layer's ``b``) is
sketched in one pass (Nyström, Tropp et al. 2017): with a seeded Gaussian ``Ω`` (``P × k``),
``Y = C Ω`` is accumulated from ``Σ_s f_s (f_sᵀ Ω)`` and

    C ≈ Y (Ωᵀ Y)⁺ Yᵀ = U diag(λ) Uᵀ,

exact when ``rank C ≤ k`` (a linear layer under SGD has ``rank C ≤ L²``: its fields are affine
in the ``L × L`` random propagator of :mod:`discrete.fluctuations`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from mpi4py import MPI

from continuum.app.run import lattice_l2, on_root
from continuum.io import layout
from continuum.io.output import version
from continuum.io.rundir import FolderError, make_folder, whole, write_summary
from continuum.models.limit import continuum_model
from continuum.settings import Config
from discrete.config import draws_batches
from discrete.experiment import build
from discrete.training import integrate

Array = np.ndarray

OVER = ("init", "schedule")
ENSEMBLE_FILE = "ensemble.h5"
"""The file an ensemble writes into its output folder (docs/parallel-and-output.md)."""
SKETCH_RANK = 16


def member_config(config: Config, seed: int, over: str = "init") -> Config:
    """The member of seed ``seed``: a new initial noise, or a new sample schedule."""
    if over == "schedule":
        return config.replace(training={"seed": seed})
    return config.replace(init={"seed": seed})


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


def flat_fields(ws: list[list[Array]], bs: list[list[Array]]) -> Array:
    """``(nt, P)``: per output time every layer's ``w`` (row-major), then every ``b``."""
    return np.array(
        [np.concatenate([a.ravel() for a in w + b]) for w, b in zip(ws, bs, strict=True)]
    )


def nystrom(Y: Array, omega: Array) -> tuple[Array, Array]:
    """Eigenvalues ``λ`` (descending) and vectors ``U`` of ``Y (Ωᵀ Y)⁺ Yᵀ`` for a positive
    semidefinite ``C`` with ``Y = C Ω`` and orthonormal ``Ω`` (Tropp et al. 2017, Alg. 3, with
    the pseudo-inverse of ``B = Ωᵀ Y`` taken on its eigenvalues above rounding, so that a
    covariance of rank below ``k`` is reproduced exactly)."""
    B = 0.5 * (omega.T @ Y + Y.T @ omega)
    mu, V = np.linalg.eigh(B)
    keep = mu > 1e3 * np.finfo(float).eps * max(float(np.abs(mu).max(initial=0.0)), 0.0)
    k = omega.shape[1]
    if not np.any(keep):
        return np.zeros(k), np.zeros((Y.shape[0], k))
    F = Y @ (V[:, keep] / np.sqrt(mu[keep]))
    U, sing, _ = np.linalg.svd(F, full_matrices=False)
    values, vectors = np.zeros(k), np.zeros((Y.shape[0], k))
    values[: len(sing)], vectors[:, : len(sing)] = sing**2, U
    return values, vectors


class Accumulator:
    """Sums of ``d``, ``d²`` and ``d (dᵀ Ω)`` over members added in seed order, with
    ``d = f − f_first`` (the shift keeps the variance free of cancellation)."""

    def __init__(self, omega_seed: int, rank: int):
        self.count = 0
        self.shift: Array | None = None
        self.sum: Array | None = None
        self.square: Array | None = None
        self.sketch: Array | None = None
        self.omega: Array | None = None
        self.omega_seed, self.rank = omega_seed, rank

    def add(self, flat: Array) -> None:
        if self.shift is None:
            rng = np.random.default_rng(self.omega_seed)
            omega = rng.standard_normal((flat.shape[1], min(self.rank, flat.shape[1])))
            self.omega = np.linalg.qr(omega)[0]
            self.shift = flat.copy()
            self.sum, self.square = np.zeros_like(flat), np.zeros_like(flat)
            self.sketch = np.zeros((*flat.shape, self.omega.shape[1]))
        assert self.sum is not None and self.square is not None  # set with the shift
        assert self.sketch is not None and self.omega is not None
        d = flat - self.shift
        self.count += 1
        self.sum += d
        self.square += d**2
        self.sketch += d[:, :, None] * (d @ self.omega)[:, None, :]

    def result(self) -> tuple[Array, Array, Array, Array]:
        """Mean and standard deviation ``(nt, P)``, sketch eigenvalues ``(nt, k)`` and
        eigenvectors ``(nt, P, k)`` of the sample covariance."""
        S = self.count
        assert self.shift is not None and self.sum is not None and self.square is not None
        assert self.sketch is not None and self.omega is not None  # at least one member
        d_mean = self.sum / S
        std = np.sqrt(np.maximum(self.square - S * d_mean**2, 0.0) / (S - 1))
        values, vectors = [], []
        for k in range(len(d_mean)):
            Y = (self.sketch[k] - S * np.outer(d_mean[k], d_mean[k] @ self.omega)) / (S - 1)
            lam, U = nystrom(Y, self.omega)
            values.append(lam)
            vectors.append(U)
        return self.shift + d_mean, std, np.array(values), np.array(vectors)


def check_ensemble(config: Config, seeds: int, over: str) -> None:
    if over not in OVER:
        raise ValueError(f"ensemble --over {over!r}: choose one of {OVER}")
    if over == "init" and config.init.kind != "random":
        raise ValueError(
            "an ensemble over init needs [init] kind = 'random' (a smooth mean plus noise)"
        )
    if over == "init" and config.continuum.fluctuations != "none":
        raise ValueError(
            "[continuum] fluctuations describes the law over SGD schedules: use --over "
            "schedule, or drop the key for an ensemble over init"
        )
    if over == "schedule" and not draws_batches(config.training):
        raise ValueError(
            "an ensemble over schedule needs [training] rule = 'sgd' (or 'momentum' with "
            f"sampling = 'replacement'), got {config.training.rule!r}"
        )
    if seeds < 2:
        raise ValueError(f"an ensemble needs at least 2 seeds, got {seeds}")


def ready_folder(outdir: Path, overwrite: bool) -> None:
    """Create ``outdir`` before the members train, and refuse to replace an ensemble there
    unless ``overwrite``.

    Raises:
        FolderError: the folder cannot be made, or holds an ``ensemble.h5``.
    """
    make_folder(outdir)
    if not overwrite and (outdir / ENSEMBLE_FILE).exists():
        raise FolderError(
            f"{outdir} already holds an ensemble ({ENSEMBLE_FILE}); pass --overwrite to "
            "replace it, or choose another folder with -o"
        )


def run_ensemble(
    config: Config,
    seeds: int,
    outdir: str | Path,
    comm: MPI.Comm,
    over: str = "init",
    overwrite: bool = False,
) -> dict:
    """Train ``seeds`` members split over the ranks; write ``outdir/ensemble.h5`` (an existing
    one is replaced only with ``overwrite``)."""
    check_ensemble(config, seeds, over)
    outdir = Path(outdir)
    on_root(comm, lambda: ready_folder(outdir, overwrite))  # rank 0 looks, every rank hears
    base = config.init.seed if over == "init" else config.training.seed
    acc = Accumulator(base, SKETCH_RANK)
    times = None
    for first in range(0, seeds, comm.size):
        s = first + comm.rank
        flat = None
        if s < seeds:
            times, member_w, member_b = member_fields(member_config(config, base + s, over))
            flat = flat_fields(member_w, member_b)
        gathered = comm.gather(flat, root=0)
        if comm.rank == 0:
            assert gathered is not None  # the root's gather
            for member in gathered:
                if member is not None:
                    acc.add(member)
    times = comm.bcast(times, root=0)
    stats = comm.bcast(acc.result() if comm.rank == 0 else None, root=0)
    mean, std, sketch_values, sketch_vectors = stats

    if over == "init":
        smooth = config.replace(init={"kind": None, "scale": None, "seed": None})
        setup = build(smooth)
        model = continuum_model(setup, comm)
    else:
        setup = build(config)
        model = None
        if config.continuum.enabled and config.continuum.fluctuations == "moments":
            model = continuum_model(setup, comm)
    net, conv = setup.network, setup.convention
    shapes = [(layer.n_out, layer.n_in) for layer in net.layers]
    sizes = [a * b for a, b in shapes] + [a for a, _ in shapes]
    result: dict[str, Any] = {"seeds": seeds, "over": over, "ranks": comm.size, "l2_error_mean": []}
    if over == "schedule" and model is not None:
        result["l2_error_var"] = []
    rows: dict[str, list[Array]] = {}
    for k, t in enumerate(times):
        parts = np.split(mean[k], np.cumsum(sizes)[:-1])
        sparts = np.split(std[k], np.cumsum(sizes)[:-1])
        wm = [p.reshape(s) for p, s in zip(parts[: net.depth], shapes, strict=True)]
        ws = [p.reshape(s) for p, s in zip(sparts[: net.depth], shapes, strict=True)]
        for m in range(net.depth):
            rows.setdefault(layout.ensemble_statistic(m, "w", "mean"), []).append(wm[m])
            rows.setdefault(layout.ensemble_statistic(m, "w", "std"), []).append(ws[m])
            b_mean, b_std = parts[net.depth + m], sparts[net.depth + m]
            rows.setdefault(layout.ensemble_statistic(m, "b", "mean"), []).append(b_mean)
            rows.setdefault(layout.ensemble_statistic(m, "b", "std"), []).append(b_std)
        if model is not None:
            model.advance_to(t)
            wc = [net.layers[m].dense(a) for m, a in enumerate(model.lattice_fields()[0])]
            measures = [
                (conv.layers[m + 1].measure, conv.layers[m].measure) for m in range(net.depth)
            ]
            err = np.sqrt(
                sum(lattice_l2(wm[m] - wc[m], *measures[m]) ** 2 for m in range(net.depth))
            )
            result["l2_error_mean"].append(float(err))
            for m in range(net.depth):
                rows.setdefault(layout.lattice_field(f"layer{m}", "w"), []).append(wc[m])
            if "l2_error_var" in result:
                var_w, _ = model.layer_variances()
                for m in range(net.depth):
                    variance = layout.lattice_variance(f"layer{m}", "w")
                    rows.setdefault(variance, []).append(var_w[m])
                err = [lattice_l2(ws[m] ** 2 - var_w[m], *measures[m]) for m in range(net.depth)]
                result["l2_error_var"].append(float(np.sqrt(np.sum(np.square(err)))))
    if comm.rank == 0:
        with whole(outdir / ENSEMBLE_FILE) as partial, h5py.File(partial, "w") as f:
            f.attrs.update(
                {
                    "synfield_version": version(),
                    "config": config.text,
                    "ranks": comm.size,
                    "seeds": seeds,
                    "over": over,
                    "created": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            )
            f[layout.ENSEMBLE_TIMES] = times
            f[layout.ENSEMBLE_SEEDS] = base + np.arange(seeds)
            for name, values in rows.items():
                f[name] = np.array(values)
            f[layout.COVARIANCE_VALUES] = sketch_values
            f[layout.COVARIANCE_VECTORS] = sketch_vectors
            f[layout.COVARIANCE].attrs["layout"] = (
                "flat field vector: every layer's w (row-major), then every layer's b; "
                "C ≈ vectors diag(values) vectorsᵀ"
            )
            for key in ("l2_error_mean", "l2_error_var"):
                if result.get(key):
                    f[layout.comparison(key)] = np.array(result[key])
        times_list = [float(t) for t in times]
        write_summary(outdir, {"experiment": config.experiment.name, **result, "times": times_list})
    return result
