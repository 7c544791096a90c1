"""Width convergence: discrete networks of growing width against their continuum limit.

For each width ``N`` the discrete network is trained to the final time and compared with
the continuum fields (solved once per FE degree, with the same rule, time step and sample
schedule) at its lattice points::

    e(N) = ( Σ_m Σ_ij Δx_i Δy_j (w_ij − w(x_i, y_j))² + Σ_m Σ_i Δx_i (b_i − b(x_i))² )^½,

and the observed order between successive widths is ``log(e(N₁)/e(N₂)) / log(N₂/N₁)``,
with a least-squares slope over all of them.  ``e(N)`` also holds the continuum's own error:
its mesh error, so the continuum is solved on half the cells as well, and, for a time scheme
with a step of its own (dt policy ``own`` in :mod:`continuum.models.registry`, e.g. the
perceptron's Crank–Nicolson), its time error, so it is solved at half its step as well; the
study says when either limits the measured order (docs/convergence.md, "Mesh-limited orders").
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from mpi4py import MPI

from continuum.app.run import field_errors
from continuum.models.limit import continuum_model
from continuum.models.registry import SCHEMES, lookup
from continuum.settings import Config
from discrete.config import ConfigError
from discrete.experiment import DiscreteSetup, build
from discrete.training import integrate

MESH_MARGIN = 0.1
"""The continuum's own error must stay below this fraction of the smallest width error for
the measured orders to be those of the width (a tenth: the order is then off by < 0.15)."""
MAX_REFINEMENTS = 4
"""At most this many doublings of the cells, and as many halvings of the continuum's own
step, with ``refine``."""


def with_width(config: Config, N: int) -> Config:
    """The config with every line layer of width > 1 set to ``N`` (grid layers to ``N²``;
    index layers are never refined)."""
    layouts = config.coordinates.layout
    widths = tuple(
        int(n if n == 1 or layout == "index" else (N * N if layout == "grid" else N))
        for n, layout in zip(config.network.widths, layouts, strict=True)
    )
    return config.replace(network={"widths": list(widths)})


def with_degree(config: Config, degree: int) -> Config:
    return config.replace(continuum={"degree": degree})


def with_cells(config: Config, cells: int) -> Config:
    return config.replace(continuum={"cells": cells})


def with_continuum_dt(config: Config, dt: float) -> Config:
    return config.replace(continuum={"dt": dt})


def own_time_step(config: Config) -> float | None:
    """The continuum's step when its time scheme has one of its own (dt policy ``own``: it
    does not cancel against the network's, so its error is part of ``e(N)``), else ``None``."""
    if SCHEMES[lookup(config).scheme].dt != "own":
        return None
    return config.continuum.dt or config.training.dt


def final_state(setup):
    *_, last = integrate(setup.rule, setup.rule.initial(setup.theta0), setup.steps, setup.steps)
    return last


@dataclasses.dataclass(frozen=True)
class Lattice:
    """A trained width: its setup and its field-normalised final fields ``w``, ``b``."""

    setup: DiscreteSetup
    w: list
    b: list

    @classmethod
    def trained(cls, config: Config, N: int) -> Lattice:
        setup = build(with_width(config, N))
        w, b = setup.convention.to_fields(setup.network, final_state(setup).theta)
        return cls(setup, w, b)

    def distance(self, w: list, b: list, wc: list, bc: list) -> float:
        """``(‖w − wc‖² + ‖b − bc‖²)^½`` on this lattice (the norm of ``e(N)``)."""
        net, conv = self.setup.network, self.setup.convention
        return float(np.hypot(*field_errors(net, conv, w, b, wc, bc)))

    def error(self, model) -> float:
        """``e(N)``: the final discrete fields against a solved continuum model."""
        return self.distance(self.w, self.b, *model.evaluate_lattice(self.setup.convention))


def width_error(config: Config, N: int, model) -> float:
    """``e(N)`` at the final time for one width, against a solved continuum model."""
    return Lattice.trained(config, N).error(model)


def refuse_fluctuations(config: Config) -> None:
    """Both studies measure one network's fields against the continuum's; the fluctuation
    models solve the law of SGD over its sample schedules instead (``synfield ensemble``)."""
    if config.continuum.fluctuations != "none":
        raise ConfigError(
            f"{config.source}: [continuum] fluctuations = {config.continuum.fluctuations!r}: "
            "converge measures the width error of one network's fields, and these fields are "
            "the law of SGD's fluctuations over its sample schedules; compare them with "
            "synfield ensemble CONFIG --over schedule, or set fluctuations = 'none'"
        )


def solved_model(config: Config, lattice: Lattice, comm: MPI.Comm):
    """The continuum model of ``config`` advanced to the final time."""
    model = continuum_model(build(with_width(config, lattice.setup.network.widths[0])), comm)
    if model is None:
        raise ValueError(
            f"{config.source}: [continuum] enabled = false — there is no continuum to converge to"
        )
    model.advance_to(config.training.steps * config.training.dt)
    return model


def comparison_cells(cells: int) -> int:
    """The mesh the continuum on ``cells`` cells is compared with: half as many cells (the
    cheaper solve), or 2 for a single cell."""
    return cells // 2 if cells >= 2 else 2


def mesh_error(model, other, lattice: Lattice) -> float:
    """``‖u_h − u_{2h}‖`` at the lattice: for a mesh order ``q ≥ 1`` in its asymptotic range
    the error of ``u_h`` is ``‖u_h − u_{2h}‖ / (2^q − 1)``, so this bounds it from above.
    (The distance of two solved models at the lattice, whatever they differ in.)"""
    return lattice.distance(
        *model.evaluate_lattice(lattice.setup.convention),
        *other.evaluate_lattice(lattice.setup.convention),
    )


def time_error(model, finer, lattice: Lattice) -> float:
    """``2 ‖u_τ − u_{τ/2}‖`` at the lattice: for a time order ``q ≥ 1`` in its asymptotic
    range the error of ``u_τ`` is ``‖u_τ − u_{τ/2}‖ · 2^q / (2^q − 1) ≤ 2 ‖u_τ − u_{τ/2}‖``."""
    return 2.0 * mesh_error(model, finer, lattice)


def observed_orders(
    widths: list[int], errors: list[float]
) -> tuple[list[float | None], float | None]:
    """Orders between successive widths and the least-squares slope of log e against log N;
    ``None`` where an error is zero (the discrete and continuum fields agree exactly, as for
    a network that never leaves a zero initial state: there is no order to measure)."""
    pair: list[float | None] = [None]  # no order at the first width
    pair += [
        float(np.log(errors[k - 1] / errors[k]) / np.log(widths[k] / widths[k - 1]))
        if errors[k - 1] > 0 and errors[k] > 0
        else None
        for k in range(1, len(widths))
    ]
    measurable = len(widths) > 1 and min(errors) > 0
    fit = float(-np.polyfit(np.log(widths), np.log(errors), 1)[0]) if measurable else None
    return pair, fit


def convergence_study(
    config: Config,
    widths: list[int],
    degrees: list[int] | None,
    comm: MPI.Comm = MPI.COMM_WORLD,
    cells: int | None = None,
    refine: bool = False,
) -> dict:
    """Errors and observed orders for every FE degree and width.

    The continuum is solved on ``cells`` cells (default ``[continuum] cells``) and once more
    on half as many; their distance at the widest lattice bounds the continuum's mesh error
    (:func:`mesh_error`).  A time scheme with a step ``τ`` of its own (:func:`own_time_step`)
    is solved at ``τ/2`` as well, which bounds its time error (:func:`time_error`).  When
    their sum exceeds :data:`MESH_MARGIN` times the smallest width error the measured orders
    are the continuum's, not the width's: ``refine`` then doubles the cells or halves ``τ``,
    whichever error is larger (each up to :data:`MAX_REFINEMENTS` times), until it no longer is;
    otherwise the result says so (``mesh_limited``, ``time_limited``) and
    :func:`format_table` prints a warning.  The discrete networks are trained once per
    width, whatever the degrees, meshes and steps.
    """
    refuse_fluctuations(config)
    degrees = degrees or [config.continuum.degree]
    cells = cells or config.continuum.cells
    result: dict[str, Any] = {
        "experiment": config.experiment.name,
        "t_end": config.training.steps * config.training.dt,
        "degrees": {},
    }
    lattices = [Lattice.trained(config, N) for N in widths]

    def solve(cfg: Config, n_cells: int, tau: float | None):
        cfg = with_cells(cfg, n_cells)
        return solved_model(cfg if tau is None else with_continuum_dt(cfg, tau), lattices[0], comm)

    for p in degrees:
        cfg = with_degree(config, p)
        n_cells, tau = cells, own_time_step(cfg)
        model = solve(cfg, n_cells, tau)
        coarse = solve(cfg, comparison_cells(n_cells), tau)
        finer = None if tau is None else solve(cfg, n_cells, tau / 2)
        doublings = halvings = 0
        while True:
            errors = [lattice.error(model) for lattice in lattices]
            in_space = mesh_error(model, coarse, lattices[-1])
            in_time = 0.0 if finer is None else time_error(model, finer, lattices[-1])
            limited = in_space + in_time > MESH_MARGIN * min(errors)
            space = in_space >= in_time
            if not (refine and limited) or (doublings if space else halvings) == MAX_REFINEMENTS:
                break
            if space:
                doublings += 1
                n_cells *= 2
                coarse, model = model, solve(cfg, n_cells, tau)
                finer = None if tau is None else solve(cfg, n_cells, tau / 2)
            else:
                assert tau is not None and finer is not None  # a time error was measured
                halvings += 1
                tau /= 2
                model, finer = finer, solve(cfg, n_cells, tau / 2)
                coarse = solve(cfg, comparison_cells(n_cells), tau)
        pair, fit = observed_orders(widths, errors)
        result["degrees"][str(p)] = {
            "widths": list(widths),
            "errors": errors,
            "orders": pair,
            "fitted_order": fit,
            "cells": n_cells,
            "continuum_dt": tau,
            "continuum_error": in_space + in_time,
            "mesh_error": in_space,
            "time_error": in_time,
            "mesh_limited": limited and in_space >= in_time,
            "time_limited": limited and in_time > in_space,
            "refinements": doublings + halvings,
        }
    return result


def mesh_warnings(result: dict) -> list[str]:
    """One warning per degree whose measured orders are limited by the continuum's own error:
    its mesh's, or its time step's."""
    out = []
    for p, r in result["degrees"].items():
        if not (r["mesh_limited"] or r["time_limited"]):
            continue
        after = f" (after {r['refinements']} refinements)" if r["refinements"] else ""
        if r["mesh_limited"]:
            cause = (
                f"the continuum's own error (≲ {r['continuum_error']:.2e}, from {r['cells']} "
                f"against {comparison_cells(r['cells'])} cells)"
            )
            fix = "raise --cells" if after else "raise --cells or pass --refine"
            what = "the mesh"
        else:
            cause = (
                f"the continuum's time error (≲ {r['time_error']:.2e}, from [continuum] dt = "
                f"{r['continuum_dt']:g} against {r['continuum_dt'] / 2:g})"
            )
            fix = "lower [continuum] dt" if after else "lower [continuum] dt or pass --refine"
            what = "the continuum's time step"
        out.append(
            f"warning: FE degree {p} on {r['cells']} cells: {cause} exceeds {MESH_MARGIN:g} × "
            f"the smallest width error ({min(r['errors']):.2e}); the observed orders are "
            f"limited by {what}{after}: {fix}"
        )
    return out


def format_table(result: dict) -> str:
    lines = [f"width convergence of '{result['experiment']}' at t = {result['t_end']:g}"]
    for p, r in result["degrees"].items():
        step = "" if r["continuum_dt"] is None else f", dt = {r['continuum_dt']:g}"
        lines.append(
            f"  FE degree {p}, {r['cells']} cells{step} (continuum error ≲ "
            f"{r['continuum_error']:.2e}):"
        )
        lines.append("    N        error         order")
        for N, e, o in zip(r["widths"], r["errors"], r["orders"], strict=True):
            lines.append(f"    {N:<8} {e:<13.4e} {'' if o is None else f'{o:.3f}'}")
        fit = r["fitted_order"]
        lines.append(
            "    fitted order: " + ("none (an error is zero)" if fit is None else f"{fit:.3f}")
        )
    return "\n".join(lines + mesh_warnings(result))
