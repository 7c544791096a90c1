"""The depth continuum's degrees: which degrees of ``V_τ`` converge to the residual networks'
flow, and the x degree set apart from them (``[continuum] depth_degree``).

The forward map reads the block field ``w(τ)`` at the RK4 stage points only (the τ-cells'
ends and midpoints), so the coefficient gradient is a sum of point evaluations in τ and its
Riesz representative ``M_τ⁻¹ Sᵀ g`` (docs/physics.md "Depth as a coordinate") is consistent
with the L2 gradient of the networks' limit only where the stage rule integrates
``v · g`` accurately for every ``v`` of ``V_τ``: degree 2 (the stage points are the nodes)
and degree 3 converge to the networks' flow; from degree 4 the flow converges, under
refinement, to another limit, and the config refuses it.  The stream space ``V_x`` is not
read at points: with ``depth_degree`` in 1 … 3 its degree goes up to 24, and at fixed τ
discretisation the x error falls exponentially in it."""

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from continuum.app.pconvergence import degree_distance, p_convergence_study, quadrature_lattice
from continuum.app.run import field_errors
from continuum.fields.depth_rule import depth_rule as depth_rule_tableau
from continuum.models.limit import continuum_model
from continuum.settings import Config, load_config, parse_config
from discrete.config import ConfigError
from discrete.experiment import build
from tests.problems import observed_order

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def cost_after_flow(degree: int, cells: int) -> float:
    """The continuum cost of ``examples/resnet.toml`` (width 8) after the flow to t = 0.1,
    at ``degree`` in x and τ on ``cells`` cells in both (built past the config's check)."""
    config = load_config(EXAMPLES / "resnet.toml").replace(
        network={"widths": [8, 8, 8], "depth": 4}, training={"t_end": 0.1}
    )
    continuum = dataclasses.replace(config.continuum, degree=degree, cells=cells, depth_cells=cells)
    setup = build(dataclasses.replace(config, continuum=continuum))
    model = continuum_model(setup, MPI.COMM_SELF)
    model.advance_to(setup.steps * setup.dt)
    return model.cost()


def test_degree_four_converges_to_another_flow_than_degrees_two_and_three():
    """At t = 0.1: degrees 2 and 3 on 4 cells agree to 5e-4 relative (measured 3e-6 and
    1.8e-4) with degree 2 on 8 cells (the networks' limit: 0.104673 there, the network
    N = 64, M = 128 0.104673); degree 4 on 2 and 4 cells agree with each other to 5e-4
    (1.9e-4) and sit 18 % below (0.08579)."""
    p2, p3 = cost_after_flow(2, 4), cost_after_flow(3, 4)
    fine = cost_after_flow(2, 8)
    p4_coarse, p4 = cost_after_flow(4, 2), cost_after_flow(4, 4)
    assert abs(p2 - fine) < 5e-4 * fine
    assert abs(p3 - fine) < 5e-4 * fine
    assert abs(p4 - p4_coarse) < 5e-4 * p4
    assert (fine - p4) > 0.1 * fine


def separate_degrees(
    cells: int,
    depth_cells: int,
    depth_degree: int,
    degree: int = 2,
    depth_steps: int = 1,
    depth_rule: str = "rk4",
) -> Config:
    """``examples/resnet.toml`` at width 8 (4 blocks), 2 samples, flowed to t = 0.1 (5 RK4
    steps): ``degree`` on ``cells`` cells in x, ``depth_degree`` on ``depth_cells`` in τ with
    ``depth_steps`` steps of the Runge–Kutta rule ``depth_rule`` per τ-cell."""
    return load_config(EXAMPLES / "resnet.toml").replace(
        network={"widths": [8, 8, 8], "depth": 4},
        data={"samples": 2},
        training={"t_end": 0.1},
        continuum={
            "degree": degree,
            "cells": cells,
            "depth_cells": depth_cells,
            "depth_degree": depth_degree,
            "depth_steps": depth_steps,
            "depth_rule": depth_rule,
        },
    )


def test_the_x_error_falls_exponentially_in_the_x_degree_at_a_fixed_depth_degree():
    """Degree 2 on 8 τ-cells, 4 cells in x, p = 1 … 8 against p = 10 (the fields at t = 0.1,
    L2 over every product domain): measured 2.0e-1 / 1.7e-2 / … / 1.7e-9, successive rates
    2.49, 2.41, 2.58, 2.74, 2.88, 2.90, 2.56 per degree, fitted 2.68.  Exponential, not
    algebraic: an order-k decay ``p^-k`` has successive rates ``k ln((p+1)/p)``, falling from
    0.69 k to 0.13 k, where these stay ≥ 2.  The reference's own error: ``|u₉ − u₁₀|`` =
    3.5e-10 ≤ e(8)/4 (measured 1/5), so with the ratio ≥ e² per degree the reference is within
    ≈ 3 % of e(8) and moves the fitted rate by < 0.01."""
    config = separate_degrees(cells=4, depth_cells=8, depth_degree=2)
    study = p_convergence_study(config, list(range(1, 9)), MPI.COMM_SELF)
    errors = study["errors"]
    assert errors[-1] < 5e-9
    assert min(study["rates"][1:]) > 2.0
    assert 2.3 < study["fitted_rate"] < 3.0
    assert degree_distance(config, 9, 10, MPI.COMM_SELF) < errors[-1] / 4


@pytest.mark.parametrize(
    ("depth_degree", "depth_steps", "rule", "resolutions", "field_order", "cost_order"),
    [
        (1, 1, "rk4", (16, 32, 64, 256), 2.0, 2.0),
        (2, 1, "rk4", (16, 32, 64, 256), 2.0, 4.2),
        (2, 4, "rk4", (8, 16, 32, 128), 4.25, 4.0),
        (4, 1, "dop853", (8, 16, 32, 128), 4.0, None),
        (4, 2, "dop853", (8, 16, 32, 128), 5.0, None),
    ],
)
def test_the_depth_error_falls_at_the_order_of_the_depth_degree_at_a_high_x_degree(
    depth_degree, depth_steps, rule, resolutions, field_order, cost_order
):
    """Degree 6 on 2 cells in x (fixed), ``depth_cells`` as given against the last, the fields
    at the blocks' depths ``τ_k = (k + ½)/4`` — nodes of ``V_τ`` at these ``depth_cells``, so the
    τ interpolation error ``O(h_τ^{q+1})`` of the fields does not enter and what falls is the
    flow's own error there.  With one RK4
    step per τ-cell the fields at t = 0.1 converge at order 2 — the flow moves the stage values
    of ``w(τ)`` by ``S M_τ⁻¹ Sᵀ g``, consistent with the networks' rates to O(h_τ²) at degrees
    1 and 2 (docs/convergence.md "Residual networks"; measured 2.02, 2.07 and 1.95, 2.05); the
    cost at the order of the forward map, 2 at degree 1 (τ interpolation, measured 2.02, 2.07)
    and 4 at degree 2 (RK4; measured 4.17, 4.10: the stage Riesz map's O(h_τ²) error alternates
    between nodes and midpoints and cancels in the cost to higher order).  With four RK4 steps
    per τ-cell the stage rule is composite Simpson on ``h_τ/4``, the Riesz map consistent to
    the L2 projection, and the fields converge at order 4 (measured 4.13, 4.40; 1.8e-8 at 32
    τ-cells against 1.4e-5 with one step), the cost at 4 (4.04, 4.01).

    By the order-8 tableau at τ degree 4 the stage Riesz map misses the projection by
    ``O(h_τ⁴ k⁻⁸)``: with one step per τ-cell the fields converge at that order 4 (measured
    3.93, 3.98: 6.1e-7 / 4.0e-8 / 2.5e-9), with two at the design order ``q + 1 = 5`` (5.38,
    4.94: 1.75e-8 / 4.2e-10 / 1.4e-11 at 32 τ-cells, against 1.8e-8 by RK4 with four steps at
    degree 2); the cost is exact to ≤ 1.4e-12 from 8 τ-cells (the forward map's order 8)."""
    lattice = quadrature_lattice(build(separate_degrees(2, 2, 2)).convention, 2, 8)
    solved = {}
    for depth_cells in resolutions:
        config = separate_degrees(
            2, depth_cells, depth_degree, degree=6, depth_steps=depth_steps, depth_rule=rule
        )
        setup = build(config)
        model = continuum_model(setup, MPI.COMM_SELF)
        model.advance_to(setup.steps * setup.dt)
        solved[depth_cells] = (model.cost(), *model.evaluate_lattice(lattice))
    cost_ref, w_ref, b_ref = solved.pop(resolutions[-1])
    network = setup.network
    fields = [
        np.hypot(*field_errors(network, lattice, w, b, w_ref, b_ref)) for _, w, b in solved.values()
    ]
    costs = [abs(c - cost_ref) for c, _, _ in solved.values()]
    assert abs(-observed_order(list(solved), fields) - field_order) < 0.3, fields
    if cost_order is None:
        assert max(costs) < 2e-12, costs
    else:
        assert abs(-observed_order(list(solved), costs) - cost_order) < 0.4, costs


def test_degree_above_three_in_x_is_accepted_with_a_depth_degree_of_one_to_three():
    text = (EXAMPLES / "resnet.toml").read_text().replace("degree = 2", "degree = 8")
    config = parse_config(text.replace("depth_cells = 16", "depth_cells = 16\ndepth_degree = 2"))
    assert (config.continuum.degree, config.continuum.depth_degree) == (8, 2)
    model = continuum_model(build(config.replace(continuum={"cells": 2})), MPI.COMM_SELF)
    assert (model.spaces[1].degree, model.depth_space.degree) == (8, 2)
    assert model.galerkin.shapes[1][0] == (33, 17, 17)  # (2·16 + 1) τ, (8·2 + 1) x coefficients


@pytest.mark.parametrize("degree", [4, 8])
def test_the_config_refuses_degrees_above_three_for_residual_networks(degree):
    """``degree`` ≥ 4 alone sets the τ degree too: refused, naming ``depth_degree``."""
    text = (EXAMPLES / "resnet.toml").read_text().replace("degree = 2", f"degree = {degree}")
    message = (
        '[continuum] degree: expected one of 1, 2, 3 with [network] architecture = "residual", '
        '[continuum] depth_rule = "rk4" and no [continuum] depth_degree'
    )
    with pytest.raises(
        ConfigError, match=re.escape(message) + ".*set \\[continuum\\] depth_degree"
    ):
        parse_config(text)
    assert parse_config(text.replace(f"degree = {degree}", "degree = 3")).continuum.degree == 3


@pytest.mark.parametrize("depth_degree", [4, 8])
def test_the_config_refuses_depth_degrees_above_three(depth_degree):
    text = (EXAMPLES / "resnet.toml").read_text()
    text = text.replace("depth_cells = 16", f"depth_cells = 16\ndepth_degree = {depth_degree}")
    message = (
        '[continuum] depth_degree: expected one of 1, 2, 3 with [network] architecture = "residual"'
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(text)
    disabled = text.replace("[continuum]", "[continuum]\nenabled = false")
    assert parse_config(disabled).continuum.depth_degree == depth_degree  # nothing to solve


@pytest.mark.parametrize("key", ["depth_degree = 2", "depth_steps = 4", 'depth_rule = "dop853"'])
def test_the_depth_keys_belong_to_residual_networks(key):
    text = (EXAMPLES / "deep-tanh.toml").read_text().replace("[continuum]", f"[continuum]\n{key}")
    name = key.split(" = ")[0]
    message = f'[continuum] {name}: only used with [network] architecture = "residual"'
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(text)


def stage_consistency(
    depth_degree: int, depth_steps: int, depth_cells: int, depth_rule: str = "rk4"
) -> float:
    """``max_j |S M_τ⁻¹ Sᵀ (w ⊙ f) − f|(τ_j)`` over the stage points of the depth continuum
    (its own ``S M_τ⁻¹ Sᵀ``), ``w`` the stage rule's weights, summed over the stages at each
    point: composite Simpson on the RK4 steps ``δ`` (``δ/6 · (1, 4, 1)``), ``δ b_i`` at the
    points ``τ_n + c_i δ`` of a tableau; ``f = cos 3τ + τ²`` (built past the config's check of
    the τ degree)."""
    config = separate_degrees(1, depth_cells, 2, degree=1, depth_steps=depth_steps)
    continuum = dataclasses.replace(
        config.continuum, depth_degree=depth_degree, depth_rule=depth_rule
    )
    model = continuum_model(build(dataclasses.replace(config, continuum=continuum)), MPI.COMM_SELF)
    galerkin = model.galerkin
    tableau = depth_rule_tableau(depth_rule)
    tau = (np.arange(galerkin.steps)[:, None] + tableau.c).ravel() * galerkin.step
    weights = np.tile(tableau.b, galerkin.steps) * galerkin.step
    at_points = np.zeros(len(galerkin.stage_basis))
    values = np.zeros(len(galerkin.stage_basis))
    np.add.at(at_points, galerkin.stage_points, weights)
    values[galerkin.stage_points] = tau
    f = np.cos(3 * values) + values**2
    return float(np.abs(galerkin._stage_coupling @ (at_points * f) - f).max())


def test_the_stage_riesz_map_misses_the_projection_by_h_to_the_four_minus_q_over_k_to_the_four():
    """docs/convergence.md "Residual networks": with ``k`` RK4 steps per τ-cell the stage
    rule's error relative to the L2 projection is ``O(h^{4 − min(q, 4)} k⁻⁴)``.  Degree 2, 8 / 16
    / 32 cells: order 2 with one step (2.0e-2 / 5.2e-3 / 1.3e-3), the projection's 3 with four
    (4.1e-4 / 5.2e-5 / 6.7e-6); degree 4: no convergence in h (5.2 at every h with one step,
    2.0e-2 with four: ``k⁻⁴`` = 1/256, measured 1/257)."""
    cells = [8, 16, 32]
    p2 = {k: [stage_consistency(2, k, c) for c in cells] for k in (1, 4)}
    p4 = {k: [stage_consistency(4, k, c) for c in cells] for k in (1, 4)}
    assert abs(-observed_order(cells, p2[1]) - 2.0) < 0.2, p2
    assert abs(-observed_order(cells, p2[4]) - 3.0) < 0.3, p2
    assert min(p4[1]) > 1.0 and abs(observed_order(cells, p4[1])) < 0.1, p4
    assert abs(observed_order(cells, p4[4])) < 0.1, p4
    assert 150 < p4[1][-1] / p4[4][-1] < 400, p4


@pytest.mark.parametrize(("name", "order"), [("rk4", 4), ("dop853", 8)])
def test_the_depth_rules_tableaux_have_their_order(name, order):
    """The stage rule ``(c, b)`` of each tableau integrates ``τ^{k−1}`` over a step exactly for
    ``k ≤ order`` (``Σ_i b_i c_i^{k−1} = 1/k``, to rounding) and not at ``k = order + 1``
    (dop853: 2.7e-5 off, RK4: 1/120); the rows of ``A`` sum to ``c`` and ``A`` is strictly
    lower triangular (explicit)."""
    tableau = depth_rule_tableau(name)
    assert tableau.order == order and len(tableau.c) == tableau.stages == len(tableau.A)
    for k in range(1, order + 1):
        assert abs(tableau.b @ tableau.c ** (k - 1) - 1 / k) < 1e-14, k
    assert abs(tableau.b @ tableau.c**order - 1 / (order + 1)) > 1e-6
    np.testing.assert_allclose(tableau.A.sum(axis=1), tableau.c, atol=1e-14)
    assert not np.triu(tableau.A).any()


def test_the_order_eight_stage_riesz_map_misses_the_projection_by_h_to_the_eight_minus_q():
    """With the order-8 tableau (``depth_rule = "dop853"``) the stage rule is exact to degree 7
    per step, and the stage Riesz map's error is that of the L2 projection, ``O(h^{q+1})``, or
    the stage rule's ``O(h^{8−q} k⁻⁸)``, whichever is larger (docs/convergence.md "Residual
    networks").  One step per τ-cell, 8 / 16 / 32 cells: order 3 at degree 2 (3.96e-4 /
    5.10e-5 / 6.42e-6), 4 at 3 (1.17e-5 / 7.35e-7 / 4.60e-8) and at 4 (1.34e-5 / 8.61e-7 /
    5.41e-8), 3 at 5 (2.25e-4 / … / 3.51e-6), 2 at 6 (2.61e-2 / … / 1.70e-3), 0.9 at 7
    (1.56e-1 / 9.87e-2 / 5.46e-2, 2.86e-2 at 64); degree 8: no convergence (5.8 at every h).
    Two steps at degree 4: the projection's order 5 (1.74e-7 / 5.59e-9 / 1.88e-10)."""
    cells = [8, 16, 32]
    for q, order in [(2, 3), (3, 4), (4, 4), (5, 3), (6, 2)]:
        errors = [stage_consistency(q, 1, c, "dop853") for c in cells]
        assert abs(-observed_order(cells, errors) - order) < 0.15, (q, errors)
    two_steps = [stage_consistency(4, 2, c, "dop853") for c in cells]
    assert abs(-observed_order(cells, two_steps) - 5.0) < 0.2, two_steps
    seventh = [stage_consistency(7, 1, c, "dop853") for c in cells]
    assert 0.6 < -observed_order(cells, seventh) < 1.1, seventh
    eighth = [stage_consistency(8, 1, c, "dop853") for c in cells]
    assert min(eighth) > 1.0 and abs(observed_order(cells, eighth)) < 0.05, eighth


def test_the_order_eight_rule_admits_depth_degrees_up_to_seven():
    """``depth_rule = "dop853"`` takes τ degrees 4 … 7 and refuses 8, naming both keys; RK4
    still refuses 4."""
    text = (EXAMPLES / "resnet.toml").read_text()

    def with_depth(degree: int, rule: str) -> str:
        keys = f"depth_cells = 16\ndepth_degree = {degree}\ndepth_rule = {rule!r}"
        return text.replace("depth_cells = 16", keys.replace("'", '"'))

    for degree in (4, 7):
        continuum = parse_config(with_depth(degree, "dop853")).continuum
        assert (continuum.depth_degree, continuum.depth_rule) == (degree, "dop853")
    message = (
        "[continuum] depth_degree: expected one of 1, 2, 3, 4, 5, 6, 7 with [network] "
        'architecture = "residual" and [continuum] depth_rule = "dop853" (at degree 8 and above'
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(with_depth(8, "dop853"))
    with pytest.raises(ConfigError, match=re.escape('depth_rule = "rk4" (at degree 4 and above')):
        parse_config(with_depth(4, "rk4"))
    alone = text.replace("degree = 2", "degree = 5").replace(
        "depth_cells = 16", 'depth_cells = 16\ndepth_rule = "dop853"'
    )
    assert parse_config(alone).continuum.degree == 5  # degree sets the τ degree too
