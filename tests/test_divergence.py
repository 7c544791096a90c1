"""Divergence everywhere: one exception type from every solver family, and explicit steps
beyond the stability bound of the largest mode refused before the run."""

from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from continuum.settings import load_config, parse_config
from discrete.config import ConfigError
from discrete.errors import GROWTH, DivergenceError
from discrete.experiment import build
from discrete.stability import max_growth, quadratic_cost, sharpness, stable_step
from discrete.training import integrate
from tests.configs import run_text

ROOT = Path(__file__).resolve().parent.parent
GOLDSTEIN = (ROOT / "examples" / "goldstein.toml").read_text()


def goldstein(**training) -> str:
    text = GOLDSTEIN
    for key, value in training.items():
        old = next(line for line in text.splitlines() if line.startswith(f"{key} = "))
        text = text.replace(old, f"{key} = {value}")
    return text


def test_the_largest_mode_of_goldsteins_chain_and_the_verlet_bound():
    """The periodic chain of N = 64 sites, κ = 1: λ_max = 4κ/a² = 4N² (the lattice
    Laplacian's top mode), which the Rayleigh–Ritz estimate approaches from below; the
    heavy-ball step at γ = 0 (Störmer–Verlet) is stable for h < 2/√λ."""
    setup = build(load_config(ROOT / "examples" / "goldstein.toml"))
    lam = sharpness(setup.rule, setup.theta0, affine=quadratic_cost(setup)).value
    assert 0.995 * 4 * 64**2 <= lam <= 4 * 64**2 * (1 + 1e-12)
    assert stable_step(setup.rule, lam, 1.0) == pytest.approx(2 / np.sqrt(lam), rel=1e-9)
    assert max_growth(setup.rule, 0.002, lam) == pytest.approx(1.0, abs=1e-12)
    # the bound many decades below the step (lr = 1e300 advised "dt below 0" before)
    for huge in (1e60, 1e300):
        assert stable_step(setup.rule, huge, 0.002) == pytest.approx(2 / np.sqrt(huge), 1e-9)


def test_an_unstable_step_is_refused_before_the_run(tmp_path):
    """Goldstein at dt = 0.02 (was: C = 6.9e54, rc 0); the bound is Störmer–Verlet's
    2/√(4N²) = 0.015625 (λ = 16384 to rounding), printed to 4 digits."""
    proc = run_text(goldstein(dt="0.02", t_end="1.0"), tmp_path)
    assert proc.returncode == 1
    line = proc.stderr.strip()
    assert "[training] dt = 0.02 is beyond the stability bound of rule 'momentum'" in line
    assert float(line.split("choose dt below ")[1]) == pytest.approx(2 / 128, rel=5e-4)
    assert not (tmp_path / "out" / "fields.h5").exists()


def test_damping_unresolved_by_the_step_is_refused_at_load():
    """Klein–Gordon with γ = 1e300 (was: a frozen continuum beside a moving lattice, rc 0):
    heavy-ball at γh ≫ 1 is gradient descent with rate h², not the damped equation."""
    text = (
        (ROOT / "examples" / "klein-gordon.toml")
        .read_text()
        .replace("gamma = 0.5", "gamma = 1e300")
    )
    with pytest.raises(ConfigError, match=r"\[training\] gamma: γ·dt = 2e\+297 > 1"):
        parse_config(text)


def test_sgd_on_probes_stops_with_step_time_and_cause(tmp_path):
    """(was: 4.6e155 in the probes, rc 0).  The local theory is the full-batch one, so with the
    continuum on the run is refused at load; the network alone stops at its blow-up."""
    text = goldstein(rule='"sgd"\nbatch = 4')
    (tmp_path / "refused").mkdir()
    refused = run_text(text, tmp_path / "refused")
    assert "[training] rule = 'sgd' with [continuum] scheme = 'newmark'" in refused.stderr
    assert refused.returncode != 0
    text = text.replace('scheme = "newmark"', "enabled = false")
    setup = build(parse_config(text))
    with pytest.raises(DivergenceError) as caught:
        for _ in integrate(setup.rule, setup.rule.initial(setup.theta0), setup.steps):
            pass
    error = caught.value
    assert isinstance(error, FloatingPointError) and error.what == "training"
    assert error.t == pytest.approx(error.step * setup.dt, rel=1e-12)
    assert f"more than {GROWTH:.0e} times its initial size" in error.cause
    proc = run_text(text, tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"synfield: error: {error}"


def unstable_theory():
    from continuum.fields.local import LocalTheory

    return LocalTheory.constant(stiffness=-1.0, periodic=True)


@pytest.mark.parametrize("solver", ["wave", "flow"])
def test_the_local_solvers_stop_a_growing_field(solver):
    """K < 0 (allowed explicitly): short waves grow like e^{√(4|K|/a²) t} (wave) or
    e^{4|K| t/a²} (flow); the solver stops within one output interval of crossing the bound."""
    from continuum.fields.local import FlowSolver, WaveSolver

    w0 = lambda y: 1.0 + 1e-3 * np.sin(2 * np.pi * 8 * y)  # noqa: E731
    if solver == "wave":
        s = WaveSolver(unstable_theory(), MPI.COMM_SELF, 32, 1, 1e-3, w0, allow_unstable=True)
    else:
        s = FlowSolver(unstable_theory(), MPI.COMM_SELF, 32, 1, 1e-4, w0, allow_unstable=True)
    with pytest.raises(DivergenceError, match=r"continuum solve diverged at step \d+") as caught:
        for _ in range(1000):
            s.advance(10)
    assert caught.value.step == round(s.t / s.dt) and caught.value.step % 10 == 0
    state = np.concatenate([s.w, s.v]) if solver == "wave" else s.w
    assert np.max(np.abs(state)) > GROWTH or not np.all(np.isfinite(state))


def test_the_galerkin_and_perceptron_solvers_check_their_state():
    """A state pushed beyond the bound (what a diverging explicit step leaves) is caught at
    the next output step by the Galerkin model and by the implicit perceptron solver."""
    from continuum.models.limit import PerceptronModel, continuum_model

    perceptron = build(load_config(ROOT / "examples" / "perceptron.toml"))
    model = PerceptronModel(perceptron, MPI.COMM_SELF)
    model.solver._state.array[:] *= 10 * GROWTH
    with pytest.raises(DivergenceError, match="continuum solve diverged at step 1 "):
        model.advance_to(model.dt)
    deep = load_config(ROOT / "examples" / "sgd.toml")
    galerkin = continuum_model(build(deep), MPI.COMM_SELF)
    galerkin.state.theta[0] = np.nan
    with pytest.raises(DivergenceError, match=r"step 1 \(t = 0.05\): the state became NaN"):
        galerkin.advance_to(0.05)


def test_a_resumed_integration_keeps_the_bound_of_the_initial_state():
    """The bound is ``GROWTH · max(‖θ₀‖∞, 1)`` of the run's initial θ₀, also when the
    integration starts from a restored state: a state already past it stops at once."""
    setup = build(load_config(ROOT / "examples" / "goldstein.toml"))
    state = setup.rule.initial(setup.theta0)
    state.theta = state.theta * (2 * GROWTH / np.max(np.abs(state.theta)))
    states = integrate(setup.rule, state, setup.steps, reference=1.0)
    next(states)
    with pytest.raises(DivergenceError, match=r"step 1 \(t = 0.002\): the state grew to 2e\+08"):
        next(states)
    assert list(integrate(setup.rule, state, 3))[-1].step == 3  # its own size: no stop


@pytest.mark.mpi
def test_a_part_diverging_on_one_rank_stops_every_rank_at_the_same_step():
    """Rows split over two ranks: the coefficients of rank 1 alone are pushed past the bound.
    The check measures the whole ``θ`` over the ranks, so both raise at step 1 with the same
    message; a per-rank check reported each rank's own part (2.0e15 on one, 1.2e9 on the
    other here), and none on a rank whose part stayed bounded."""
    from continuum.models.limit import continuum_model

    comm = MPI.COMM_WORLD
    assert comm.size == 2, "run this test under mpiexec -n 2"
    config = load_config(ROOT / "examples" / "deep-tanh.toml").replace(
        continuum={"cells": 4, "distribute": "rows"}
    )
    model = continuum_model(build(config), comm)
    assert model.distribution == "rows"
    if comm.rank == 1:
        model.state.theta[:] *= 10 * GROWTH
    messages = []
    try:
        with np.errstate(over="ignore"):  # sech² of the saturated activations
            model.advance_to(model.rule.h)
    except DivergenceError as error:
        messages.append(str(error))
    everyone = comm.allgather(messages)
    assert all(len(m) == 1 for m in everyone), everyone
    assert everyone[0] == everyone[1] and "step 1 " in everyone[0][0], everyone
