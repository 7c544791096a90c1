"""Figures of a finished run, read from its ``fields.h5`` (and ``ensemble.h5``): PNG, headless.

``synfield plot OUTDIR`` (and ``synfield run --plot``) draws what one looks at first
(docs/parallel-and-output.md, "Figures"):

* ``cost.png``: the discrete cost ``C(θ(t))`` beside the continuum's ``C[w_h(t)]``;
* ``errors.png``: the comparison errors ``‖w − w_h‖`` and ``‖b − b_h‖`` at the lattice;
* ``fields-layer{m}.png``: the weight field of layer ``m`` at chosen output times, the
  discrete lattice values beside the continuum at the same points and their difference —
  heatmaps over ``(x, y)`` for a line-by-line layer, curves when one side has a single
  neuron, and for a grid layer the slice through the middle row of the grid;
* ``ensemble.png`` (from ``ensemble.h5``): the mean field ``w̄_S`` ± one standard deviation
  along the middle output neuron, the continuum beside it, and ``‖w̄_S − w_h‖`` over time.

Every figure is drawn on a :class:`matplotlib.figure.Figure` with the Agg canvas (no
display, no pyplot state).  :func:`plot_run` returns the arrays it drew, by file name, so
what is shown can be checked against the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from matplotlib.figure import Figure

from continuum.io import layout
from continuum.io.rundir import whole

Array = np.ndarray
DPI = 100
"""Pixels per inch of every PNG."""


@dataclass
class Drawn:
    """One written figure: its path, its size in pixels and the arrays drawn in it."""

    path: Path
    size: tuple[int, int]
    data: dict[str, Array] = field(default_factory=dict)


def _save(fig: Figure, path: Path, data: dict[str, Array]) -> Drawn:
    """Draw ``fig`` into ``path`` whole (:func:`~continuum.io.rundir.whole`)."""
    with whole(path) as partial:
        fig.savefig(partial, dpi=DPI, format="png")
    width, height = fig.get_size_inches() * DPI
    return Drawn(path, (round(width), round(height)), data)


def output_indices(times: Array, chosen: list[float] | None) -> list[int]:
    """Output steps nearest to the ``chosen`` times (default: first, middle, last).

    Raises:
        ValueError: a chosen time outside the output times (by more than half an interval).
    """
    if chosen is None:
        return sorted({0, (len(times) - 1) // 2, len(times) - 1})
    first, last = float(times[0]), float(times[-1])
    half = (last - first) / (2 * (len(times) - 1)) if len(times) > 1 else 0.0
    for t in chosen:
        if not first - half <= t <= last + half:
            raise ValueError(
                f"time {t:g} lies outside the output times of this run, t = {first:g} … "
                f"{last:g} ({len(times)} output steps); choose times in that range"
            )
    return sorted({int(np.argmin(np.abs(times - t))) for t in chosen})


def logarithmic(*curves: Array) -> bool:
    """A log axis for positive values spanning more than a decade, else a linear one."""
    values = np.concatenate([np.ravel(c) for c in curves])
    return bool(np.all(values > 0) and values.max() > 10 * values.min())


def _series(fig: Figure, times: Array, curves: dict[str, Array], ylabel: str, title: str):
    ax = fig.add_subplot()
    for k, (label, values) in enumerate(curves.items()):
        style: dict[str, Any] = {"marker": "o", "ms": 4} if k == 0 else {"ls": "--", "lw": 2}
        ax.plot(times, values, label=label, **style)
    if logarithmic(*curves.values()):
        ax.set_yscale("log")
    ax.set_xlabel("training time t")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()


def plot_cost(h5: h5py.File, outdir: Path) -> Drawn | None:
    discrete, continuum = layout.diagnostic("cost_discrete"), layout.diagnostic("cost_continuum")
    if discrete not in h5:
        return None
    times = h5[layout.DISCRETE_TIMES][()]
    curves = {"discrete C(θ)": h5[discrete][()]}
    if continuum in h5:
        curves["continuum C[w_h]"] = h5[continuum][()]
    fig = Figure(figsize=(6.4, 4.0))
    _series(fig, times, curves, "cost", "cost, discrete and continuum")
    return _save(fig, outdir / "cost.png", {"times": times, **curves})


def plot_errors(h5: h5py.File, outdir: Path) -> Drawn | None:
    names = {
        "‖w − w_h‖": layout.comparison("l2_error_w"),
        "‖b − b_h‖": layout.comparison("l2_error_b"),
    }
    curves = {label: h5[name][()] for label, name in names.items() if name in h5}
    curves = {label: values for label, values in curves.items() if np.any(values)}
    if not curves:
        return None
    times = h5[layout.DISCRETE_TIMES][()][: min(len(v) for v in curves.values())]
    fig = Figure(figsize=(6.4, 4.0))
    _series(fig, times, curves, "lattice L2 distance", "discrete against continuum")
    return _save(fig, outdir / "errors.png", {"times": times, **curves})


def grid_slice(values: Array, coords: Array) -> tuple[Array, Array, float]:
    """The columns of a grid layer (``coords`` of shape ``(n², 2)``) on its middle row
    ``y₂ = const``: the values there, their ``y₁`` and the row's ``y₂``."""
    rows = np.unique(coords[:, 1])
    middle = float(rows[len(rows) // 2])
    on_row = np.flatnonzero(coords[:, 1] == middle)
    order = on_row[np.argsort(coords[on_row, 0])]
    return values[..., order], coords[order, 0], middle


def layer_axes(h5: h5py.File, m: int, shape: tuple[int, int]) -> tuple[Array, Array, str]:
    """``x`` (output) and ``y`` (input) coordinates of layer ``m``'s stored weights, and a
    note when the input is a grid (sliced) or the weights are banded components."""
    coords_in = h5[layout.coordinates(m)][()]
    x = h5[layout.coordinates(m + 1)][()][:, 0]
    if len(coords_in) != shape[1]:  # banded storage: one column per offset
        return x, np.arange(shape[1], dtype=float), "component s"
    if coords_in.shape[1] == 2:
        _, y1, row = grid_slice(np.zeros(len(coords_in)), coords_in)
        return x, y1, f"y₁ (row y₂ = {row:.3g})"
    return x, coords_in[:, 0], "y"


def plot_fields(h5: h5py.File, outdir: Path, m: int, chosen: list[float] | None):
    name, ref = layout.discrete_field(f"layer{m}", "w"), layout.lattice_field(f"layer{m}", "w")
    if name not in h5 or ref not in h5:
        return None
    times = h5[layout.DISCRETE_TIMES][()]
    steps = output_indices(times[: min(len(h5[name]), len(h5[ref]))], chosen)
    w, wc = h5[name][steps], h5[ref][steps]
    coords_in = h5[layout.coordinates(m)][()]
    x, y, ylabel = layer_axes(h5, m, w.shape[1:])
    if coords_in.shape[1] == 2 and len(coords_in) == w.shape[2]:
        w, wc = grid_slice(w, coords_in)[0], grid_slice(wc, coords_in)[0]
    data = {"times": times[steps], "w": w, "w_continuum": wc}
    if 1 in w.shape[1:]:
        fig = _field_curves(w, wc, x, y, ylabel, times[steps])
    else:
        fig = _field_maps(w, wc, x, y, ylabel, times[steps])
    fig.suptitle(f"layer {m}: weight field w⁽{m}⁾, discrete lattice and continuum")
    fig.tight_layout()
    return _save(fig, outdir / f"fields-layer{m}.png", data)


def _field_curves(w, wc, x, y, ylabel, times) -> Figure:
    """One output neuron (or one input): curves over the other coordinate, per time."""
    along_y = w.shape[1] == 1
    s, label = (y, ylabel) if along_y else (x, "x")
    fig = Figure(figsize=(9.6, 4.0))
    ax, dax = fig.subplots(1, 2)
    for k, t in enumerate(times):
        color = f"C{k}"
        ax.plot(s, wc[k].ravel(), color=color, label=f"continuum, t = {t:.3g}")
        ax.plot(s, w[k].ravel(), "o", color=color, ms=3, label=f"discrete, t = {t:.3g}")
        dax.plot(s, (w[k] - wc[k]).ravel(), color=color, label=f"t = {t:.3g}")
    ax.set_xlabel(label)
    ax.set_ylabel("w")
    ax.legend(fontsize="small")
    dax.set_xlabel(label)
    dax.set_ylabel("w − w_h")
    dax.set_title("discrete − continuum")
    dax.legend(fontsize="small")
    return fig


def _field_maps(w, wc, x, y, ylabel, times) -> Figure:
    """Heatmaps over ``(y, x)``: rows are times; discrete, continuum, difference."""
    fig = Figure(figsize=(11.0, 3.0 * len(times) + 0.6))
    axes = np.atleast_2d(fig.subplots(len(times), 3))
    limit = float(max(np.abs(w).max(), np.abs(wc).max())) or 1.0
    for k, t in enumerate(times):
        diff = w[k] - wc[k]
        largest = float(np.abs(diff).max())
        panels = (
            (w[k], f"discrete w, t = {t:.3g}", limit, "RdBu_r", None),
            (wc[k], f"continuum w_h, t = {t:.3g}", limit, "RdBu_r", None),
            (diff, f"w − w_h, max |·| = {largest:.2e}", largest or 1.0, "PuOr_r", "%.1e"),
        )
        for ax, (values, title, vmax, cmap, ticks) in zip(axes[k], panels, strict=True):
            mesh = ax.pcolormesh(y, x, values, shading="nearest", cmap=cmap, vmin=-vmax, vmax=vmax)
            ax.set_title(title, fontsize="medium")
            ax.set_xlabel(ylabel)
            ax.set_ylabel("x")
            fig.colorbar(mesh, ax=ax, format=ticks)
    return fig


def plot_ensemble(path: Path, outdir: Path) -> Drawn | None:
    with h5py.File(path, "r") as h5:
        if layout.ensemble_statistic(0, "w", "mean") not in h5:
            return None
        times = h5[layout.ENSEMBLE_TIMES][()]
        mean = h5[layout.ensemble_statistic(0, "w", "mean")][-1]
        std = h5[layout.ensemble_statistic(0, "w", "std")][-1]
        ref, distance = layout.lattice_field("layer0", "w"), layout.comparison("l2_error_mean")
        continuum = h5[ref][-1] if ref in h5 else None
        error = h5[distance][()] if distance in h5 else None
        seeds = int(h5.attrs["seeds"])
    row = mean.shape[0] // 2
    data = {"times": times, "w_mean": mean[row], "w_std": std[row]}
    fig = Figure(figsize=(9.6, 4.0))
    ax, eax = fig.subplots(1, 2)
    s = np.arange(mean.shape[1])
    ax.fill_between(s, mean[row] - std[row], mean[row] + std[row], alpha=0.3, label="± σ_S")
    ax.plot(s, mean[row], label=f"mean of {seeds} seeds")
    if continuum is not None:
        ax.plot(s, continuum[row], "k--", label="continuum w_h")
        data["w_continuum"] = continuum[row]
    ax.set_xlabel("input neuron j")
    ax.set_ylabel(f"w(x_{row}, y_j)")
    ax.set_title(f"layer 0 at t = {times[-1]:.3g}, output neuron {row}")
    ax.legend(fontsize="small")
    if error is not None:
        eax.plot(times[: len(error)], error, marker=".")
        if logarithmic(error):
            eax.set_yscale("log")
        data["l2_error_mean"] = error
    eax.set_xlabel("training time t")
    eax.set_ylabel("‖w̄_S − w_h‖")
    eax.set_title("mean field against the continuum")
    eax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return _save(fig, outdir / "ensemble.png", data)


def plot_run(outdir: str | Path, times: list[float] | None = None) -> dict[str, Drawn]:
    """Write every figure the folder's files allow; return them by file name.

    Raises:
        FileNotFoundError: ``outdir`` holds neither ``fields.h5`` nor ``ensemble.h5``.
    """
    outdir = Path(outdir)
    fields, ensemble = outdir / "fields.h5", outdir / "ensemble.h5"
    if not fields.exists() and not ensemble.exists():
        raise FileNotFoundError(f"{outdir} holds no fields.h5 or ensemble.h5 to plot")
    drawn: list[Drawn | None] = []
    if fields.exists():
        with h5py.File(fields, "r", libver="latest", swmr=True) as h5:
            depth = sum(1 for key in h5[layout.DISCRETE] if key.startswith("layer"))
            drawn += [plot_cost(h5, outdir), plot_errors(h5, outdir)]
            drawn += [plot_fields(h5, outdir, m, times) for m in range(depth)]
    if ensemble.exists():
        drawn.append(plot_ensemble(ensemble, outdir))
    return {item.path.name: item for item in drawn if item is not None}
