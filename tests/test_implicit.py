"""Implicit integrators of the nonlinear dynamics by Newton's method (docs/physics.md "Continuum"):
time orders of the θ-method and the implicit midpoint rule, loud Newton failures, stiff stability,
MPI."""

import re
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

# isort: split
from petsc4py import PETSc
from problems import observed_order, tanh_problem

from continuum.models.limit import continuum_model
from continuum.schemes.implicit import ImplicitFlow, ImplicitMomentum
from continuum.settings import parse_config
from discrete.errors import DivergenceError
from discrete.experiment import build
from discrete.training import Flow, Momentum, integrate

ROOT = Path(__file__).resolve().parent.parent


def galerkin_problem(comm: MPI.Comm):
    """The deep-tanh example on 8 cells (and 8-wide layers): Galerkin cost, rates, θ₀."""
    text = (ROOT / "examples" / "deep-tanh.toml").read_text()
    text = text.replace("cells = 64", "cells = 8").replace("[32, 32, 32, 32]", "[8, 8, 8, 8]")
    model = continuum_model(build(parse_config(text)), comm)
    return model.galerkin, model.rule.rates, model.state.theta


def final(rule, theta0, steps):
    *_, last = integrate(rule, rule.initial(theta0), steps, every=steps)
    return last


def flow_order(cost, rates, theta0, vartheta, T=1.0, counts=(10, 20, 40)) -> float:
    """Observed order of the implicit flow at time T against RK4 with a 16× finer step."""
    reference = final(Flow(cost, rates, T / (16 * counts[-1])), theta0, 16 * counts[-1]).theta
    hs, errors = [], []
    for n in counts:
        theta = final(ImplicitFlow(cost, rates, T / n, vartheta), theta0, n).theta
        hs.append(T / n)
        errors.append(np.linalg.norm(theta - reference))
    return observed_order(hs, errors)


def test_crank_nicolson_is_second_and_backward_euler_first_order_on_the_network():
    cost, rates, theta0 = tanh_problem()
    assert flow_order(cost, rates, theta0, 0.5) == pytest.approx(2.0, abs=0.2)
    assert flow_order(cost, rates, theta0, 1.0) == pytest.approx(1.0, abs=0.15)


def test_crank_nicolson_is_second_order_on_the_galerkin_continuum():
    cost, rates, theta0 = galerkin_problem(MPI.COMM_SELF)
    assert flow_order(cost, rates, theta0, 0.5, counts=(5, 10, 20)) == pytest.approx(2.0, abs=0.2)


def test_implicit_midpoint_is_second_order_for_damped_dynamics():
    cost, rates, theta0 = tanh_problem(1)
    T, gamma = 1.0, 2.0
    reference = final(Momentum(cost, rates, T / 640, gamma, scheme="rk4"), theta0, 640)
    hs, errors = [], []
    for n in (10, 20, 40):
        state = final(ImplicitMomentum(cost, rates, T / n, gamma), theta0, n)
        hs.append(T / n)
        errors.append(
            np.linalg.norm(state.theta - reference.theta)
            + np.linalg.norm(state.velocity - reference.velocity)
        )
    assert observed_order(hs, errors) == pytest.approx(2.0, abs=0.2)


def test_newton_failure_names_step_time_residual_iterations_and_reason():
    """One Newton iteration (options prefix) for a huge backward-Euler step cannot converge."""
    cost, rates, theta0 = tanh_problem()
    options = PETSc.Options()
    options["test_implicit_snes_max_it"] = 1
    try:
        rule = ImplicitFlow(cost, rates, 5.0, 1.0, prefix="test_implicit_")
    finally:
        del options["test_implicit_snes_max_it"]
    with pytest.raises(RuntimeError) as failure:
        rule.step(rule.initial(theta0))
    message = str(failure.value)
    assert "implicit flow (ϑ = 1) step 1 (t = 0 → 5)" in message
    assert "DIVERGED_MAX_IT (-5)" in message
    assert "after 1 Newton iterations" in message
    reported = float(re.search(r"‖F‖ = (\S+) ", message).group(1))
    x = rule.newton.x.getArray(readonly=True)  # the final Newton iterate
    residual = np.linalg.norm(x - theta0 + 5.0 * rates * cost.gradient(x)[1])
    assert reported == pytest.approx(residual, rel=1e-6)
    assert reported > 1e-3  # far from converged, not a tolerance artefact


def test_nan_in_the_state_is_a_loud_newton_failure():
    cost, rates, theta0 = tanh_problem()
    rule = ImplicitFlow(cost, rates, 0.1)
    state = final(rule, theta0, 3)
    state.theta[7] = np.nan
    with pytest.raises(RuntimeError) as failure:
        rule.step(state)
    message = str(failure.value)
    assert "step 4 (t = 0.3 → 0.4)" in message
    assert "DIVERGED_FUNCTION_NANORINF (-4)" in message
    assert "after 0 Newton iterations" in message
    assert "‖F‖ = nan" in message


def test_backward_euler_is_stable_where_rk4_blows_up():
    """η 100× the dictionary's rates, h = 0.05: RK4 is unstable, backward Euler descends."""
    cost, rates, theta0 = tanh_problem()
    rates, h, steps = 100.0 * rates, 0.05, 20
    c0 = cost.value(theta0)
    rk4 = Flow(cost, rates, h)
    with np.errstate(over="ignore"), pytest.raises(DivergenceError, match="diverged at step"):
        final(rk4, theta0, steps)
    rule = ImplicitFlow(cost, rates, h, 1.0)
    states = integrate(rule, rule.initial(theta0), steps)
    implicit = np.array([cost.value(s.theta) for s in states])
    assert np.all(np.isfinite(implicit))
    assert np.all(np.diff(implicit) < 0.0)
    assert implicit[-1] < 1e-3 * c0


@pytest.mark.mpi
def test_two_ranks_give_the_implicit_flow_of_one_rank():
    comm = MPI.COMM_WORLD
    assert comm.size == 2, "run this test under mpiexec -n 2"
    fields = []
    for c in (MPI.COMM_SELF, comm):
        cost, rates, theta0 = galerkin_problem(c)
        w, b = cost.unpack(final(ImplicitFlow(cost, rates, 0.1), theta0, 10).theta)
        fields.append(np.concatenate([a.ravel() for a in w + b]))
    assert np.max(np.abs(fields[1] - fields[0])) < 1e-10 * np.max(np.abs(fields[0]))


@pytest.mark.mpi
def test_two_ranks_take_the_newton_iterates_of_one_rank():
    """``examples/deep-tanh.toml`` with the implicit scheme, 50 steps: the biases, which every
    rank holds, weigh in the Krylov inner products and the stopping tests as on one rank, so
    the fields agree to rounding (was 1.7e-11: the biases counted twice, and the ranks stopped
    GMRES and Newton at other iterates)."""
    comm = MPI.COMM_WORLD
    assert comm.size == 2, "run this test under mpiexec -n 2"
    text = (ROOT / "examples" / "deep-tanh.toml").read_text()
    config = parse_config(text.replace("[continuum]", '[continuum]\nscheme = "implicit"'))
    fields = []
    for c in (MPI.COMM_SELF, comm):
        model = continuum_model(build(config), c)
        *_, last = integrate(model.rule, model.state, 50, every=50)
        w, b = model.galerkin.unpack(last.theta)
        fields.append(np.concatenate([a.ravel() for a in w + b]))
    assert np.max(np.abs(fields[1] - fields[0])) < 1e-13


def test_implicit_integrator_from_the_config_matches_the_explicit_one(tmp_path):
    """``[continuum] integrator = "implicit"`` (Crank–Nicolson by Newton) against the matched
    RK4 continuum: both within the width error of the discrete network."""
    import dataclasses

    from continuum.app.run import run_experiment
    from continuum.settings import load_config

    config = load_config(Path(__file__).resolve().parent.parent / "examples" / "deep-tanh.toml")
    small = dataclasses.replace(
        config,
        network=dataclasses.replace(config.network, widths=(16, 16, 16, 16)),
        continuum=dataclasses.replace(config.continuum, cells=16),
    )
    errors = {}
    for integrator in ("matched", "implicit"):
        cfg = dataclasses.replace(
            small,
            continuum=dataclasses.replace(
                small.continuum,
                scheme=integrator,
                dt=0.01 if integrator == "implicit" else None,
            ),
        )
        summary = run_experiment(cfg, tmp_path / integrator, MPI.COMM_SELF, quiet=True)
        errors[integrator] = summary["final"]["l2_error_w"]
    assert errors["implicit"] < 2 * errors["matched"] < 1e-3
