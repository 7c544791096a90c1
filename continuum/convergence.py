"""Width convergence: discrete networks of growing width against their continuum limit.

For each width ``N`` the discrete network is trained to the final time and compared with
the continuum fields (solved once per FE degree, with the same rule, time step and sample
schedule) at its lattice points::

    e(N) = ( Σ_m Σ_ij Δx_i Δy_j (w_ij − w(x_i, y_j))² + Σ_m Σ_i Δx_i (b_i − b(x_i))² )^½,

and the observed order between successive widths is ``log(e(N₁)/e(N₂)) / log(N₂/N₁)``,
with a least-squares slope over all of them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from mpi4py import MPI

from discrete.config import Config
from discrete.experiment import build
from discrete.training import integrate

from .limit import continuum_model
from .run import field_errors


def with_width(config: Config, N: int) -> Config:
    """The config with every line layer of width > 1 set to ``N`` (grid layers to ``N²``;
    index layers are never refined)."""
    layouts = config.coordinates.layout
    widths = tuple(
        n if n == 1 or layout == "index" else (N * N if layout == "grid" else N)
        for n, layout in zip(config.network.widths, layouts, strict=True)
    )
    return dataclasses.replace(config, network=dataclasses.replace(config.network, widths=widths))


def with_degree(config: Config, degree: int) -> Config:
    return dataclasses.replace(
        config, continuum=dataclasses.replace(config.continuum, degree=degree)
    )


def final_state(setup):
    *_, last = integrate(setup.rule, setup.rule.initial(setup.theta0), setup.steps, setup.steps)
    return last


def width_error(config: Config, N: int, model) -> float:
    """``e(N)`` at the final time for one width, against a solved continuum model."""
    setup = build(with_width(config, N))
    theta = final_state(setup).theta
    net, conv = setup.network, setup.convention
    w, b = conv.to_fields(net, theta)
    wc, bc = model.evaluate_lattice(conv)
    err_w, err_b = field_errors(net, conv, w, b, wc, bc)
    return float(np.hypot(err_w, err_b))


def observed_orders(widths: list[int], errors: list[float]) -> tuple[list[float | None], float]:
    """Orders between successive widths and the least-squares slope of log e against log N."""
    pair = [None] + [
        float(np.log(errors[k - 1] / errors[k]) / np.log(widths[k] / widths[k - 1]))
        for k in range(1, len(widths))
    ]
    fit = float(-np.polyfit(np.log(widths), np.log(errors), 1)[0]) if len(widths) > 1 else None
    return pair, fit


def convergence_study(
    config: Config, widths: list[int], degrees: list[int] | None, comm: MPI.Comm = MPI.COMM_WORLD
) -> dict:
    """Errors and observed orders for every FE degree and width."""
    degrees = degrees or [config.continuum.degree]
    result = {
        "experiment": config.experiment.name,
        "t_end": config.training.steps * config.training.dt,
        "degrees": {},
    }
    for p in degrees:
        cfg = with_degree(config, p)
        model = continuum_model(build(with_width(cfg, widths[0])), comm)
        if model is None:
            raise ValueError(
                f"{config.source}: [continuum] enabled = false — there is no continuum to "
                "converge to"
            )
        model.advance_to(cfg.training.steps * cfg.training.dt)
        errors = [width_error(cfg, N, model) for N in widths]
        pair, fit = observed_orders(widths, errors)
        result["degrees"][str(p)] = {
            "widths": list(widths),
            "errors": errors,
            "orders": pair,
            "fitted_order": fit,
        }
    return result


def format_table(result: dict) -> str:
    lines = [f"width convergence of '{result['experiment']}' at t = {result['t_end']:g}"]
    for p, r in result["degrees"].items():
        lines.append(f"  FE degree {p}:")
        lines.append("    N        error         order")
        for N, e, o in zip(r["widths"], r["errors"], r["orders"], strict=True):
            lines.append(f"    {N:<8} {e:<13.4e} {'' if o is None else f'{o:.3f}'}")
        lines.append(f"    fitted order: {r['fitted_order']:.3f}")
    return "\n".join(lines)
