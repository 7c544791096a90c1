"""p-convergence on a fixed mesh: the continuum at degrees ``p`` against a high-order reference.

For smooth data and initial fields the continuum fields are analytic, and Lagrange elements of
degree ``p`` on a fixed mesh converge exponentially in ``p`` (docs/physics.md "Continuum").  Each
degree is solved to ``t_end`` with the same mesh, rule, time step and sample schedule, and compared
with the continuum of degree ``p_ref = max(p) + 2`` (:data:`REFERENCE_EXTRA`) in L2 over every
product domain:

    e(p) = ( Σ_m ∫∫ (w_p^(m) − w_ref^(m))² dx dy + Σ_m ∫ (b_p^(m) − b_ref^(m))² dx )^½,

integrated by composite Gauss–Legendre rules on the mesh cells with ``p_ref + 2`` points per
cell and direction (exact for the piecewise polynomials of degree ≤ ``p_ref``).  Both solves
share the time discretisation, so ``e(p)`` is the spatial error of the fully discrete
solution.  The rate is the least-squares fit ``log e(p) = log C − r p``; the reference's own
error is estimated as ``C e^{−r p_ref}`` and reported beside it.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from mpi4py import MPI

from continuum.app.convergence import refuse_fluctuations, with_degree
from continuum.app.run import field_errors
from continuum.models.limit import continuum_model
from continuum.settings import DEGREES, Config
from discrete.config import ConfigError
from discrete.conventions import Convention, layer_weights
from discrete.experiment import build

Array = np.ndarray

REFERENCE_EXTRA = 2
"""The reference degree is ``max(p) + REFERENCE_EXTRA``."""


def composite_gauss(cells: int, points: int) -> tuple[Array, Array]:
    """Gauss–Legendre points and weights with ``points`` nodes on each of ``cells`` equal
    cells of ``[0, 1]`` (the cells of :func:`meshes.interval`)."""
    nodes, weights = np.polynomial.legendre.leggauss(points)
    left = np.arange(cells)[:, None] / cells
    at = (left + (nodes[None, :] + 1) / (2 * cells)).ravel()
    return at, np.tile(weights / (2 * cells), cells)


def quadrature_lattice(convention: Convention, cells: int, points: int) -> Convention:
    """The convention with every layer's neurons moved to the composite Gauss points of its
    domain (tensor products on the square) and their measures to the Gauss weights, so that
    :func:`continuum.app.run.field_errors` of two continua is their L2 distance; one-neuron layers
    and index layers (docs/physics.md "Index layers": no coordinate to integrate over) keep
    their points."""
    x, w = composite_gauss(cells, points)
    layers = []
    for layer in convention.layers:
        if layer.size == 1 or layer.layout == "index":
            layers.append(layer)
            continue
        if layer.layout == "line":
            at, measure = x[:, None], w
        else:
            at = np.column_stack([np.tile(x, len(x)), np.repeat(x, len(x))])
            measure = np.tile(w, len(w)) * np.repeat(w, len(w))
        layers.append(dataclasses.replace(layer, points=at, measure=measure, shape=(len(measure),)))
    return Convention(tuple(layers), convention.weights)


def solved(config: Config, degree: int, comm: MPI.Comm):
    """The continuum model of ``config`` at ``degree``, advanced to ``t_end``, and its setup."""
    setup = build(with_degree(config, degree))
    model = continuum_model(setup, comm)
    if model is None:
        raise ValueError(
            f"{config.source}: [continuum] enabled = false — there is no continuum to converge"
        )
    model.advance_to(config.training.steps * config.training.dt)
    return setup, model


def fields_at(config: Config, degree: int, lattice: Convention, comm: MPI.Comm):
    """``(w, b)`` of the continuum of ``degree`` at ``t_end`` on the points of ``lattice``, and
    the seconds its set-up and solve took."""
    start = time.perf_counter()
    _, model = solved(config, degree, comm)
    seconds = time.perf_counter() - start
    return (*model.evaluate_lattice(lattice), seconds)


def degree_distance(config: Config, degree: int, other: int, comm: MPI.Comm) -> float:
    """The L2 distance ``e`` of the continua of two degrees at ``t_end`` on the same mesh (the
    module docstring's norm): with ``other = degree + 2`` it bounds the error of ``degree``."""
    setup = build(config)
    lattice = quadrature_lattice(setup.convention, config.continuum.cells, max(degree, other) + 2)
    w, b, _ = fields_at(config, degree, lattice, comm)
    w_other, b_other, _ = fields_at(config, other, lattice, comm)
    return float(np.hypot(*field_errors(setup.network, lattice, w, b, w_other, b_other)))


def exponential_fit(degrees: list[int], errors: list[float]) -> tuple[float, float]:
    """``(r, C)`` of the least-squares fit ``log e = log C − r p``."""
    slope, intercept = np.polyfit(degrees, np.log(errors), 1)
    return float(-slope), float(np.exp(intercept))


def p_convergence_study(
    config: Config, degrees: list[int], comm: MPI.Comm = MPI.COMM_WORLD
) -> dict:
    """Errors ``e(p)`` against the reference of degree ``max(p) + 2``, successive rates
    ``log(e(p₁)/e(p₂)) / (p₂ − p₁)``, the fitted rate and the seconds of every solve."""
    refuse_fluctuations(config)
    degrees = sorted(set(degrees))
    highest = DEGREES[-1] - REFERENCE_EXTRA
    wrong = [p for p in degrees if p not in DEGREES or p > highest]
    if len(degrees) < 3 or wrong:
        raise ConfigError(
            f"--degrees: p-convergence needs at least three degrees of {DEGREES[0]} … "
            f"{highest} (the reference has degree max(p) + {REFERENCE_EXTRA} ≤ {DEGREES[-1]}), "
            f"got {' '.join(map(str, degrees))}"
        )
    weights = config.coordinates.weights
    if set(layer_weights(weights, len(config.network.widths) - 1)) != {"product"}:
        raise ConfigError(
            "p-convergence compares the fields of dense layers on product domains; "
            f"[coordinates] weights = {weights!r} maps a layer otherwise"
        )
    reference = max(degrees) + REFERENCE_EXTRA
    setup = build(config)
    lattice = quadrature_lattice(setup.convention, config.continuum.cells, reference + 2)
    w_ref, b_ref, reference_seconds = fields_at(config, reference, lattice, comm)
    errors, seconds = [], []
    for p in degrees:
        w, b, elapsed = fields_at(config, p, lattice, comm)
        seconds.append(elapsed)
        errors.append(float(np.hypot(*field_errors(setup.network, lattice, w, b, w_ref, b_ref))))
    rates = [None] + [
        float(np.log(errors[k - 1] / errors[k]) / (degrees[k] - degrees[k - 1]))
        for k in range(1, len(degrees))
    ]
    rate, constant = exponential_fit(degrees, errors)
    return {
        "experiment": config.experiment.name,
        "t_end": config.training.steps * config.training.dt,
        "cells": config.continuum.cells,
        "reference_degree": reference,
        "reference_seconds": reference_seconds,
        "reference_error_estimate": constant * float(np.exp(-rate * reference)),
        "degrees": degrees,
        "errors": errors,
        "rates": rates,
        "seconds": seconds,
        "fitted_rate": rate,
        "fitted_constant": constant,
    }


def format_p_table(result: dict) -> str:
    lines = [
        f"p-convergence of '{result['experiment']}' at t = {result['t_end']:g} on "
        f"{result['cells']} cells, against degree {result['reference_degree']}",
        "    p    error         rate     seconds",
    ]
    for p, e, r, s in zip(
        result["degrees"], result["errors"], result["rates"], result["seconds"], strict=True
    ):
        lines.append(f"    {p:<4} {e:<13.4e} {'' if r is None else f'{r:<8.3f}':<8} {s:.3f}")
    lines.append(
        f"    fitted: error ≈ {result['fitted_constant']:.3g} exp(−{result['fitted_rate']:.3f} p)"
        f"; reference error ≈ {result['reference_error_estimate']:.1e}"
    )
    return "\n".join(lines)
