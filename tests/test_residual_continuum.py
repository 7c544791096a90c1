"""The depth continuum of residual networks (docs/physics.md "Depth as a coordinate"): exact
gradient, orders in M, N and depth_cells (docs/convergence.md, "Residual networks")."""

import dataclasses

import h5py
import numpy as np
import pytest
from mpi4py import MPI

import continuum.fields.residual
from continuum.app.run import run_experiment
from continuum.fields.depth_mechanics import depth_bulk_boundary, depth_energy_balance, layer_pairs
from continuum.models.limit import continuum_model
from continuum.schemes.factored_flow import FactoredFlow
from continuum.settings import Config
from discrete.experiment import DiscreteSetup, build
from discrete.mechanics import energy_balance
from discrete.training import Flow, integrate, run
from tests.configs import Document, document, load
from tests.problems import observed_order
from tests.test_mpi import shared_tmpdir

# quadratic in x, y and τ: the FE spaces hold them exactly, so only the depth and width
# discretisations of the network separate it from the continuum at t = 0
POLYNOMIAL = ("1 + x*y", "0.8*(x - y)*(1 + tau) - 0.5*x*y", "1 - x*y", "0.3*x*(1 - x)*tau")
SMOOTH = (
    "cos(pi*(x - y))",
    "1.5*sin(pi*(x + 2*y))*cos(2*pi*tau)",
    "1 + x*y",
    "0.5*cos(pi*x)*sin(pi*tau)",
)


def residual(
    n: int = 8,
    blocks: int = 4,
    cells: int = 4,
    depth_cells: int = 4,
    fields: tuple[str, str, str, str] = SMOOTH,
    act: str = "tanh",
    bias: bool = True,
    degree: int = 2,
    depth_degree: int | None = None,
    depth_steps: int = 1,
    depth_rule: str = "rk4",
) -> Document:
    """The resnet problem at width ``n`` with ``blocks`` blocks, ``fields`` (``w`` of the input
    layer, the blocks and the readout, ``b`` of the blocks), on ``cells`` × ``depth_cells``, at
    ``degree`` in x and ``depth_degree`` in τ (absent: ``degree``), ``depth_steps`` steps of the
    Runge–Kutta rule ``depth_rule`` per τ-cell."""
    continuum = {
        "cells": cells,
        "depth_cells": depth_cells,
        "degree": degree,
        "depth_steps": depth_steps,
        "depth_rule": depth_rule,
    }
    if depth_degree is not None:
        continuum["depth_degree"] = depth_degree
    return document(
        "resnet",
        network={"widths": [n, n, n], "depth": blocks, "activation": act, "bias": bias},
        init={"weight": list(fields[:3]), "bias": ["0.1*x", fields[3], "0"] if bias else "0"},
        continuum=continuum,
    )


def setup_for(**problem) -> DiscreteSetup[Config]:
    """The network of :func:`residual` ``(**problem)``, built."""
    return build(load(residual(**problem)))


@pytest.mark.parametrize(
    ("act", "bias", "degree", "depth_degree", "depth_steps", "depth_rule"),
    [
        ("tanh", True, 2, None, 1, "rk4"),
        ("softplus", False, 2, None, 1, "rk4"),
        ("tanh", True, 6, 2, 1, "rk4"),
        ("tanh", True, 4, 2, 3, "rk4"),
        ("tanh", True, 4, 4, 1, "dop853"),
    ],
)
def test_depth_continuum_gradient_is_the_exact_gradient_of_its_forward_map(
    act, bias, degree, depth_degree, depth_steps, depth_rule
):
    """The adjoint of the explicit Runge–Kutta step in τ against central differences of the
    continuum cost (also at degree 6 in x with degree 2 in τ, with three RK4 steps per τ-cell,
    and by the 12-stage order-8 tableau at degree 4 in τ): measured 4e-11, 2e-11, 1.6e-10,
    2.6e-11, 1.1e-10 relative."""
    problem = setup_for(
        cells=3,
        depth_cells=3,
        act=act,
        bias=bias,
        degree=degree,
        depth_degree=depth_degree,
        depth_steps=depth_steps,
        depth_rule=depth_rule,
    )
    model = continuum_model(problem, MPI.COMM_SELF)
    fields = model.galerkin
    rng = np.random.default_rng(5)
    theta = model.state.theta + 0.2 * rng.standard_normal(fields.size)
    _, grad = fields.coefficient_gradient(theta)
    picks = rng.choice(fields.size, 60, replace=False)
    eps = 1e-4  # at 1e-6 the rounding ε|C|/eps leads (1.1e-10 at degree 6); here ≤ 1.3e-12
    fd = []
    for k in picks:
        e = np.zeros(fields.size)
        e[k] = eps
        fd.append((fields.value(theta + e) - fields.value(theta - e)) / (2 * eps))
    assert np.linalg.norm(np.array(fd) - grad[picks]) < 1e-8 * np.linalg.norm(grad[picks])


def test_depth_discretisation_converges_at_its_design_order():
    """RK4 with one step per τ-cell, stages at the degree-2 nodes: design order 4 in
    depth_cells (measured 4.5 for the cost and 4.6 for s(1, x) at 4, 8, 16, 32 cells)."""
    solutions = {}
    for depth_cells in (4, 8, 16, 32, 128):
        model = continuum_model(setup_for(n=8, blocks=2, depth_cells=depth_cells), MPI.COMM_SELF)
        s = model.galerkin.forward(model.state.theta, slice(None)).s
        solutions[depth_cells] = (model.cost(), s[-1])
    ref_cost, ref_s = solutions.pop(128)
    cells = list(solutions)
    cost_errors = [abs(c - ref_cost) for c, _ in solutions.values()]
    stream_errors = [np.abs(s - ref_s).max() for _, s in solutions.values()]
    assert 3.5 < -observed_order(cells, cost_errors) < 5.0
    assert 3.5 < -observed_order(cells, stream_errors) < 5.0


def test_residual_networks_converge_to_the_depth_continuum_at_order_one_in_blocks():
    """N = 128, M = 4, 8, 16 against the continuum (16 cells in x and τ): the cost at t = 0
    and after a flow to t = 0.2, and the change of the block fields over the flow, at the
    blocks' τ_k (measured orders 0.99, 0.99, 0.99)."""
    model = continuum_model(
        setup_for(n=8, blocks=4, cells=16, depth_cells=16, fields=POLYNOMIAL), MPI.COMM_SELF
    )
    nets = {M: setup_for(n=128, blocks=M, fields=POLYNOMIAL) for M in (4, 8, 16)}
    cost0 = model.cost()
    start = {M: np.array(model.evaluate_lattice(s.convention)[0][1:-1]) for M, s in nets.items()}
    model.advance_to(0.2)
    cost1 = model.cost()
    errors: dict[str, list[float]] = {"cost0": [], "cost1": [], "w": []}
    for M, s in nets.items():
        traj = run(s.rule, s.theta0, s.steps, every=s.steps)
        w0 = np.array(s.convention.to_fields(s.network, traj.thetas[0])[0][1:-1])
        w1 = np.array(s.convention.to_fields(s.network, traj.thetas[-1])[0][1:-1])
        wc = np.array(model.evaluate_lattice(s.convention)[0][1:-1])
        change = (w1 - w0) - (wc - start[M])
        errors["cost0"].append(abs(traj.costs[0] - cost0))
        errors["cost1"].append(abs(traj.costs[-1] - cost1))
        errors["w"].append(float(np.sqrt(np.sum(change**2) / (M * 128**2))))
    for name, errs in errors.items():
        assert abs(-observed_order(list(nets), errs) - 1.0) < 0.15, (name, errs)


def test_residual_network_width_order_at_fixed_depth():
    """M = 4 fixed, N = 16, 32, 64, 128: successive differences of the cost after the flow
    fall at order 2 in 1/N (cell placement; measured 2.00)."""
    costs = []
    for n in (16, 32, 64, 128):
        s = setup_for(n=n, blocks=4)
        costs.append(run(s.rule, s.theta0, s.steps, every=s.steps).costs[-1])
    assert abs(-observed_order([16, 32, 64], np.abs(np.diff(costs))) - 2.0) < 0.2


DAMPED = {"rule": "momentum", "gamma": 2.0, "momentum_scheme": "rk4", "steps": 8}
"""The heavy ball (RK4) in place of the flow, eight steps."""


def damped_run() -> Config:
    """The damped resnet problem of three blocks, written every other step."""
    return load(residual(blocks=3), training=DAMPED, output={"every": 2, "quiet": True})


def test_residual_run_writes_blocks_and_the_stream_and_resumes_exactly(tmp_path):
    """fields.h5 (docs/parallel-and-output.md "fields.h5"): /discrete/block{k}, /continuum/block{k}
    at τ_k, the stream s(t, τ, x); a run cut after three output steps resumes to the uninterrupted
    result."""
    config = damped_run()
    full, cut = tmp_path / "full", tmp_path / "cut"
    run_experiment(config, full, MPI.COMM_SELF)
    run_experiment(config, cut, MPI.COMM_SELF)
    with h5py.File(cut / "fields.h5", "a") as f:  # as if killed after three output steps
        for name in ("/discrete/times", "/continuum/times"):
            f[name].resize((3,))
    run_experiment(config, cut, MPI.COMM_SELF, resume=True)
    setup = build(config)
    model = continuum_model(setup, MPI.COMM_SELF)
    tau = (np.arange(3) + 0.5) / 3
    with h5py.File(full / "fields.h5") as a, h5py.File(cut / "fields.h5") as b:
        assert len(a["/discrete/times"]) == len(b["/discrete/times"]) == 5
        for name in ("/discrete/block2/W", "/continuum/block1/w_at_lattice", "/continuum/stream/s"):
            np.testing.assert_allclose(a[name][()], b[name][()], rtol=0, atol=1e-12, err_msg=name)
        assert a["/discrete/block0/w"].shape == (5, 8, 8)
        # the discrete block fields at t = 0 are the block formula at τ_k
        x = (np.arange(8) + 0.5) / 8
        w_init = 1.5 * np.sin(np.pi * (x[:, None] + 2 * x[None, :]))
        for k in range(3):
            expected = w_init * np.cos(2 * np.pi * tau[k])
            np.testing.assert_allclose(a[f"/discrete/block{k}/w"][0], expected, atol=1e-14)
        # the stream starts at s(0) = ∫ w^in X dy + b^in and its last τ is the readout's input
        s = a["/continuum/stream/s"][0]
        assert s.shape == (3, 5, 9)
        s0 = model.galerkin.forward(model.state.theta, slice(None)).s
        grid = np.column_stack([a["/continuum/stream/x"][()]])
        E = model.spaces[1].evaluation_matrix(grid).toarray()
        np.testing.assert_allclose(s, np.einsum("ia,nal->lni", E, s0), atol=1e-13)
        np.testing.assert_allclose(a["/continuum/stream/tau"][()], np.linspace(0, 1, 5))
        np.testing.assert_allclose(a["/continuum/stream/x"][()], np.linspace(0, 1, 9))
        # the adjoint p(t, τ, x) beside it: δC/δb^in(x) = (1/L) Σ_l p^l(0, x), the Riesz
        # gradient's input-bias part, to rounding
        p = a["/continuum/stream/p"][0]
        assert p.shape == s.shape
        p0 = model.galerkin.adjoint_field(model.state.theta)
        np.testing.assert_allclose(p, np.einsum("ia,nal->lni", E, p0), atol=1e-13)
        _, grad = model.galerkin.gradient(model.state.theta)
        bias_in = model.galerkin.b(grad, 0)
        scale = np.abs(bias_in).max()
        np.testing.assert_allclose(p0[0].mean(axis=1), bias_in, rtol=0, atol=1e-13 * scale)
        assert scale > 1e-3  # not a trivial zero
        np.testing.assert_allclose(
            a["/continuum/stream/p"][()], b["/continuum/stream/p"][()], rtol=0, atol=1e-12
        )
    # stream.xdmf: the same values as P1 functions on the DOLFINx mesh of the rectangle
    with h5py.File(full / "stream.h5") as x:
        steps = sorted(x["/Function/s_sample2"], key=float)
        assert len(steps) == 5
        values = x["/Function/s_sample2"][steps[0]][()].ravel()
        geometry = x["/Mesh/mesh/geometry"][()]
    expected = s[2][
        np.rint(geometry[:, 0] * 4).astype(int), np.rint(geometry[:, 1] * 8).astype(int)
    ]
    np.testing.assert_allclose(values, expected, atol=1e-14)
    assert len(geometry) == 45 and (full / "stream.xdmf").exists()
    with h5py.File(full / "stream.h5") as x:
        adjoint = x["/Function/p_sample2"][steps[0]][()].ravel()
    at_nodes = (np.rint(geometry[:, 0] * 4).astype(int), np.rint(geometry[:, 1] * 8).astype(int))
    np.testing.assert_allclose(adjoint, p[2][at_nodes], atol=1e-14)


def test_the_stream_output_keeps_the_nodes_of_a_high_x_degree(tmp_path):
    """Degree 4 in x (Gauss–Lobatto–Legendre nodes, not uniform) with degree 2 in τ (three RK4
    steps per τ-cell: the stream recorded at the τ-cell ends): stream.xdmf's mesh has its
    vertices at the recorded grid ``τ × x`` and the P1 values there are the recorded stream."""
    problem = residual(blocks=2, cells=2, depth_cells=2, degree=4, depth_degree=2, depth_steps=3)
    run_experiment(load(problem, training=DAMPED, output={"quiet": True}), tmp_path, MPI.COMM_SELF)
    with h5py.File(tmp_path / "fields.h5") as f:
        s, tau, x = (f[f"/continuum/stream/{name}"][()] for name in ("s", "tau", "x"))
    assert s.shape[1:] == (3, 3, 9)  # the τ-cell ends of 2 cells, not the 6 RK4 steps'
    np.testing.assert_allclose(tau, [0, 0.5, 1])
    gll = (1 + np.array([-1, -np.sqrt(3 / 7), 0, np.sqrt(3 / 7), 1])) / 2  # degree 4, [0, 1]
    np.testing.assert_allclose(x[:5], gll / 2, atol=1e-4)  # the first of 2 cells
    with h5py.File(tmp_path / "stream.h5") as out:
        last = sorted(out["/Function/s_sample1"], key=float)[-1]
        values = out["/Function/s_sample1"][last][()].ravel()
        geometry = out["/Mesh/mesh/geometry"][()]
    i_tau = np.abs(geometry[:, :1] - tau[None, :]).argmin(axis=1)
    i_x = np.abs(geometry[:, 1:2] - x[None, :]).argmin(axis=1)
    np.testing.assert_allclose(geometry[:, 0], tau[i_tau], atol=1e-14)
    np.testing.assert_allclose(geometry[:, 1], x[i_x], atol=1e-14)
    assert len(set(zip(i_tau, i_x, strict=True))) == len(tau) * len(x) == len(geometry)
    np.testing.assert_allclose(values, s[-1, 1][i_tau, i_x], atol=1e-14)


def damped(n: int, blocks: int, depth_cells: int):
    return build(
        load(residual(n=n, blocks=blocks, cells=8, depth_cells=depth_cells), training=DAMPED)
    )


def continuum_balance(setup):
    model = continuum_model(setup, MPI.COMM_SELF)
    model.advance_to(setup.steps * setup.dt)
    state = model.state
    return depth_energy_balance(model.galerkin, state.theta, state.velocity, list(model.rates), 2.0)


@pytest.mark.parametrize(
    "continuum",
    [
        {},
        {"degree": 4, "depth_degree": 2, "depth_steps": 3},
        {"degree": 4, "depth_degree": 4, "depth_rule": "dop853"},
    ],
)
def test_depth_energy_continuity_closes(continuum):
    """``∂_t e + ∂_τ f = −2γe`` per τ-cell to the depth discretisation error (the density
    residual, relative, falls at order 3.16: 3.0e-5, 3.2e-6, 3.7e-7 at 8, 16, 32 cells; at x
    degree 4 with three RK4 steps per τ-cell 2.8e-6, 3.6e-7, 4.3e-8, order 3.03; by the order-8
    tableau at degree 4 in x and τ 1.1e-8, 4.1e-10, 1.0e-11, orders 4.81, 5.31), and to
    rounding (≤ 4e-16 relative) for the end layers and summed over depth."""
    cells, densities = [8, 16, 32], []
    for depth_cells in cells:
        setup = damped(8, 4, depth_cells)
        balance = continuum_balance(build(setup.config.replace(continuum=continuum)))
        r = balance.residual()
        assert np.max(np.abs(r[[0, -1]])) < 1e-13 * balance.scale()
        assert abs(r.sum()) < 1e-13 * balance.scale()
        densities.append(np.max(np.abs(r[1:-1])) * depth_cells / balance.scale())
    assert -observed_order(cells, densities) > 2.7


def test_block_energies_and_fluxes_converge_to_the_depth_continuum():
    """N = 128, M = 8, 16, 32 blocks against the continuum on M τ-cells, after the damped
    dynamics to t = 0.16: the energy densities ``E_k/Δτ → e`` (measured order 1.03) and the
    fluxes ``F_k → f(k/M)`` (measured 1.17; the power into the cost dominates)."""
    blocks, energy, flux = [8, 16, 32], [], []
    for M in blocks:
        setup = damped(128, M, M)
        *_, last = integrate(setup.rule, setup.rule.initial(setup.theta0), setup.steps, setup.steps)
        discrete = energy_balance(
            setup.cost, last.theta, last.velocity, setup.dictionary.rates(), 2.0
        )
        cont = continuum_balance(setup)
        assert np.max(np.abs(discrete.residual())) < 1e-12 * discrete.scale()
        density = np.abs(discrete.energy - cont.energy)[1:-1] * M
        energy.append(np.max(density) / np.max(np.abs(cont.energy[1:-1]) * M))
        flux.append(np.max(np.abs(discrete.flux - cont.flux)) / np.max(np.abs(cont.flux)))
    assert abs(-observed_order(blocks, energy) - 1.0) < 0.15, energy
    assert 0.85 < -observed_order(blocks, flux) < 1.35, flux


def test_depth_continuum_bulk_boundary_identity_on_a_trajectory():
    """``L = (1/2η) ∫ φ̇² − C_l`` of the depth continuum equals ``L_bulk + L_boundary`` with the
    block biases traded for the stream's stage slopes (the continuum of Δs/Δτ), for every
    sample, on a damped trajectory at t = 0.16, for degree 2 and degree 1 in x and τ, degree 4
    in x with degree 2 in τ, one and three RK4 steps per τ-cell, and degree 1 in τ by the
    order-8 tableau (its τ nodes, the cell ends, are stage points; those of degree 2 are not,
    and the decomposition is refused)."""
    cases = [(2, None, 1, "rk4"), (1, None, 1, "rk4"), (4, 2, 1, "rk4"), (4, 2, 3, "rk4")]
    for degree, depth_degree, steps, rule in [*cases, (4, 1, 1, "dop853")]:
        cfg = damped(8, 4, 5).config.replace(
            continuum={
                "degree": degree,
                "depth_degree": depth_degree,
                "depth_steps": steps,
                "depth_rule": rule,
            }
        )
        model = continuum_model(build(cfg), MPI.COMM_SELF)
        model.advance_to(0.16)
        g, state, rates = model.galerkin, model.state, list(model.rates)
        kinetic = 0.5 * layer_pairs(g, state.velocity, state.velocity, rates).sum()
        for sample in range(3):
            parts = depth_bulk_boundary(g, state.theta, state.velocity, rates, sample)
            L = kinetic - g.value(state.theta, np.array([sample]))
            assert abs(L - parts.bulk - parts.boundary) < 1e-12 * abs(parts.bulk)
    cfg = damped(8, 4, 5).config.replace(continuum={"depth_degree": 2, "depth_rule": "dop853"})
    model = continuum_model(build(cfg), MPI.COMM_SELF)
    with pytest.raises(ValueError, match="not stage points of the depth rule dop853"):
        depth_bulk_boundary(model.galerkin, model.state.theta, model.state.velocity, rates, 0)


def simpson_defect(balances, T: float) -> float:
    """``max |E(T) − E(0) − ∫ (F_in − F_out − 2γE) dt|`` over the layers of a list of balances
    at equal steps (Simpson's rule; an even number of steps)."""
    n = len(balances) - 1
    energy = np.array([b.energy for b in balances])
    rhs = np.array([b.flux[:-1] - b.flux[1:] + b.friction for b in balances])
    w = np.ones(n + 1)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    integral = (T / n) / 3.0 * (w[:, None] * rhs).sum(axis=0)
    return float(np.max(np.abs(energy[-1] - energy[0] - integral)))


def test_depth_energy_balance_along_trajectories_has_the_integrator_order():
    """Along RK4 trajectories of the damped dynamics to T = 0.4 (10, 20, 40 steps): the
    network's per-block balance and the continuum's end layers and total over τ close at
    order 4 in the time step (measured 4.0 and 4.0)."""
    T, steps = 0.4, [10, 20, 40]
    net_defects, cont_defects = [], []
    for n in steps:
        setup = damped(8, 4, 4)
        cfg = setup.config
        cfg = dataclasses.replace(
            cfg, training=dataclasses.replace(cfg.training, dt=T / n, steps=n)
        )
        setup = build(cfg)
        traj = run(setup.rule, setup.theta0, n, every=1)
        rates = setup.dictionary.rates()
        net_defects.append(
            simpson_defect(
                [
                    energy_balance(setup.cost, th, v, rates, 2.0)
                    for th, v in zip(traj.thetas, traj.velocities, strict=True)
                ],
                T,
            )
        )
        model = continuum_model(setup, MPI.COMM_SELF)
        balances = []
        for t in traj.times:
            model.advance_to(t)
            b = depth_energy_balance(
                model.galerkin, model.state.theta, model.state.velocity, list(model.rates), 2.0
            )
            # the τ-cells summed: one layer for the blocks, exact instantaneously
            inner = slice(1, -1)
            balances.append(
                dataclasses.replace(
                    b,
                    energy=np.array([b.energy[0], b.energy[inner].sum(), b.energy[-1]]),
                    rate=np.array([b.rate[0], b.rate[inner].sum(), b.rate[-1]]),
                    flux=b.flux[[0, 1, -2, -1]],
                    friction=np.array([b.friction[0], b.friction[inner].sum(), b.friction[-1]]),
                )
            )
        cont_defects.append(simpson_defect(balances, T))
    assert -observed_order(steps, net_defects) > 3.7, net_defects
    assert -observed_order(steps, cont_defects) > 3.7, cont_defects


@pytest.mark.parametrize(
    ("degree", "bias", "depth_steps", "depth_rule"),
    [(2, True, 1, "rk4"), (1, False, 1, "rk4"), (2, True, 3, "rk4"), (4, True, 1, "dop853")],
)
def test_factored_rk4_of_the_depth_continuum_is_its_rk4(degree, bias, depth_steps, depth_rule):
    """Three steps of the flow with the forces kept as their stage factors (shifts through
    ``S M_τ⁻¹ Sᵀ``, docs/physics.md "The factored force in depth") equal three generic RK4 steps
    to rounding (measured 1.1e-16 relative; also with three RK4 steps in τ per τ-cell, and with
    the forces' stage factors of the 12-stage order-8 tableau at degree 4 in x and τ)."""
    setup = setup_for(n=8, blocks=4, cells=4, depth_cells=3, bias=bias, depth_steps=depth_steps)
    cfg = setup.config.replace(continuum={"degree": degree, "depth_rule": depth_rule})
    model = continuum_model(build(cfg), MPI.COMM_SELF)
    fields, rates = model.galerkin, list(model.rates)
    generic = Flow(fields, fields.per_group(rates), setup.dt)
    factored = FactoredFlow(fields, rates, setup.dt)
    a = b = model.state
    for _ in range(3):
        a, b = generic.step(a), factored.step(b)
    assert np.abs(a.theta - model.state.theta).max() > 1e-3  # the fields moved
    assert np.abs(b.theta - a.theta).max() <= 1e-13 * np.abs(a.theta).max()


@pytest.mark.parametrize(
    ("rule", "threshold", "factored"),
    [("flow", 0, True), ("flow", None, False), ("momentum", 0, False)],
)
def test_the_flow_of_a_wide_depth_continuum_is_factored(monkeypatch, rule, threshold, factored):
    """The flow uses the factored RK4 from ``n_x ≥ FACTORED_DEPTH_WIDTH max(L, 3)²`` (here lowered
    to 0; n_x = 9 is below the real one), every other rule its own step."""
    if threshold is not None:
        monkeypatch.setattr(continuum.fields.residual, "FACTORED_DEPTH_WIDTH", threshold)
    cfg = setup_for(cells=4, depth_cells=3).config
    cfg = dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, rule=rule))
    assert isinstance(continuum_model(build(cfg), MPI.COMM_SELF).rule, FactoredFlow) == factored


@pytest.mark.mpi
@pytest.mark.parametrize(
    ("cells", "degree", "depth_degree", "rule", "nt", "nx", "rows"),
    [
        (4, 2, None, "rk4", 7, 9, (5, 4)),
        (2, 5, 1, "rk4", 4, 11, (6, 5)),
        (2, 3, 4, "dop853", 13, 7, (4, 3)),
    ],
)
def test_two_ranks_hold_their_rows_and_give_the_fields_of_one_rank(
    cells, degree, depth_degree, rule, nt, nx, rows
):
    """Under two ranks each holds its rows of w(τ, x, y) and of the end layers' weights (the
    biases replicated), and the gradient (full batch and minibatch), its Riesz representative,
    the generic and the factored RK4 of the flow and the depth energy balance equal those of
    one rank to 1e-10 (one τ and x degree, degree 5 in x with degree 1 in τ, two RK4 steps per
    τ-cell, and degree 3 in x with degree 4 in τ by the order-8 tableau, two steps)."""
    comm = MPI.COMM_WORLD
    assert comm.size == 2, "run this test under mpiexec -n 2"
    steps = 1 if depth_degree is None else 2
    problem = {"cells": cells, "degree": degree, "depth_degree": depth_degree, "depth_steps": steps}
    problem["depth_rule"] = rule
    setup = setup_for(n=8, blocks=4, depth_cells=3, **problem)
    one, two = continuum_model(setup, MPI.COMM_SELF), continuum_model(setup, comm)
    f1, f2 = one.galerkin, two.galerkin
    rows = rows[comm.rank]
    assert f2.W(two.state.theta, 1).shape == (nt, rows, nx)
    assert f2.W(two.state.theta, 0).shape == (rows, nx)
    assert f2.b(two.state.theta, 1).shape == (nt, nx)
    weights = sum(f2.W(two.state.theta, p).size for p in range(3))
    assert comm.allreduce(weights) == nt * nx * nx + 2 * nx * nx
    assert f2.size == weights + nt * nx + 2 * nx < f1.size

    def gathered(fields, theta):
        w, b = fields.unpack(theta)
        return np.concatenate([a.ravel() for a in (*w, *b)])

    def agree(a, b):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * np.abs(a).max())

    theta1, theta2 = one.state.theta, two.state.theta
    agree(gathered(f1, theta1), gathered(f2, theta2))
    for method in ("gradient", "coefficient_gradient"):
        for samples in (None, np.array([2, 0])):  # the full batch and a minibatch (SGD)
            (c1, g1) = getattr(f1, method)(theta1, samples)
            (c2, g2) = getattr(f2, method)(theta2, samples)
            assert abs(c1 - c2) < 1e-14
            agree(gathered(f1, g1), gathered(f2, g2))
    rates = list(one.rates)
    for rule in (Flow, FactoredFlow):
        a, b = one.state, two.state
        for _ in range(2):
            if rule is Flow:
                a = rule(f1, f1.per_group(rates), setup.dt).step(a)
                b = rule(f2, f2.per_group(rates), setup.dt).step(b)
            else:
                a, b = rule(f1, rates, setup.dt).step(a), rule(f2, rates, setup.dt).step(b)
        agree(gathered(f1, a.theta), gathered(f2, b.theta))
    velocity1 = a.theta - theta1
    velocity2 = b.theta - theta2
    e1 = depth_energy_balance(f1, theta1, velocity1, rates, 2.0)
    e2 = depth_energy_balance(f2, theta2, velocity2, rates, 2.0)
    for name in ("energy", "rate", "flux"):
        agree(getattr(e1, name), getattr(e2, name))


@pytest.mark.mpi
def test_a_residual_run_on_two_ranks_resumes_to_the_one_rank_result():
    """A damped run on two ranks cut after three output steps and resumed there equals the
    uninterrupted run on one rank (every dataset of fields.h5 to 1e-10)."""
    comm = MPI.COMM_WORLD
    assert comm.size == 2, "run this test under mpiexec -n 2"
    tmp = shared_tmpdir(comm)
    config = damped_run()
    run_experiment(config, tmp / "cut", comm)
    if comm.rank == 0:
        with h5py.File(tmp / "cut" / "fields.h5", "a") as f:
            for name in ("/discrete/times", "/continuum/times"):
                f[name].resize((3,))
        run_experiment(config, tmp / "one", MPI.COMM_SELF)
    comm.Barrier()
    run_experiment(config, tmp / "cut", comm, resume=True)
    if comm.rank == 0:
        with h5py.File(tmp / "one" / "fields.h5") as a, h5py.File(tmp / "cut" / "fields.h5") as b:
            assert b.attrs["ranks"] == 2 and len(b["/continuum/times"]) == 5
            names = []
            a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
            compared = [n for n in names if n.startswith(("continuum", "discrete", "comparison"))]
            assert "continuum/blocks/coefficients" in compared
            for name in compared:
                np.testing.assert_allclose(
                    b[name][()], a[name][()], rtol=0, atol=1e-10, err_msg=name
                )
    comm.Barrier()


def test_the_depth_continuum_checks_its_rule_in_x_as_the_galerkin_fields_do():
    """Before, the Gauss rule in x was ``2p + 2`` whatever the data (the resnet example's fields
    moved by 1.7e-8 relative with the checked rule).  With the steep inputs ``sin(8πy)`` on 2
    cells of P2 that rule's initial cost is 2.1e-2 relative off a rule of degree 60; the
    checked rule (degree 24) agrees with it to 1.3e-14.  Inputs ``1/y``, not integrable on the
    first cell, are refused (before: run, at a continuum cost 0.53 against the network's
    0.69)."""
    from continuum.fem.quadrature import with_quadrature
    from continuum.fields.residual import DepthFields
    from continuum.models.limit import data_function

    steep = load(residual(cells=2, depth_cells=2)).replace(data={"input": "sin(8*pi*y) + 0.5"})
    setup = build(steep)
    model = continuum_model(setup, MPI.COMM_SELF)
    fields, theta, layers = model.galerkin, model.state.theta, setup.convention.layers

    def cost(q: int) -> float:
        return DepthFields(
            setup.network,
            tuple(with_quadrature(list(fields.spaces), q)),
            fields.depth,
            data_function(steep.data.input, layers[0], "y"),
            data_function(steep.data.target, layers[-1], "x"),
            setup.data.samples,
            rule=fields.rule,
        ).value(theta)

    exact = cost(60)
    assert abs(cost(6) - exact) > 1e-3 * abs(exact)
    assert fields.inputs.quadrature_degree > 6
    assert abs(fields.value(theta) - exact) <= 1e-12 * abs(exact)
    singular = steep.replace(data={"input": "1/y"})
    with pytest.raises(ValueError, match="do not converge with Gauss rules"):
        continuum_model(build(singular), MPI.COMM_SELF)
