"""Momentum SGD near a minimum: the closed-form stationary state, equipartition of the kinetic
and potential temperatures per layer, against a long ensemble (docs/physics.md "SGD
fluctuations")."""

import dataclasses
import json

import h5py
import numpy as np
import pytest
import scipy.linalg
from mpi4py import MPI
from test_fluctuations import MOMENTS, at_width

from continuum.app.ensemble import run_ensemble
from continuum.app.run import run_experiment
from discrete.config import ConfigError
from discrete.equipartition import heavy_ball_equilibrium
from discrete.experiment import build
from discrete.fluctuations import LinearNoise
from discrete.linear_noise import discrete_linear_noise
from discrete.training import heavy_ball_coefficients, integrate, sample_schedule
from tests.configs import document

# four inputs in a 3-dimensional span: the layer cannot fit the targets (r* ≠ 0), so the
# noise persists at the minimum; mass-weighted curvatures κ = 0.25 (× 16) and 1 (× 8)
HEAVY_BALL = document(
    MOMENTS,
    data={"input": "sin(pi*y + pi*l/2)"},
    training={"rule": "momentum", "gamma": 1.0, "dt": 0.02, "steps": None, "t_end": 12.0},
)
DISCRETE = document(HEAVY_BALL, continuum={"fluctuations": None, "enabled": False})
MEMBERS = 1000


def test_closed_form_solves_the_lyapunov_equation_and_gives_equipartition():
    """Random non-commuting H (with a null direction) and Σ, per-parameter rates: the
    closed form equals SciPy's Lyapunov solve of the (δθ, δv) system to rounding, and the
    kinetic and potential temperatures of both groups agree to rounding (their sum is
    (h/2γB) tr(DΣ))."""
    rng = np.random.default_rng(0)
    n = 6
    A = rng.normal(size=(n, n))
    H = A @ A.T
    H[:, -1] = H[-1, :] = 0.0
    B = rng.normal(size=(n, 3))
    B[-1] = 0.0
    noise, rates, gamma, h, batch = B @ B.T, rng.uniform(0.5, 2.0, n), 0.7, 0.1, 2
    groups = [slice(0, 3), slice(3, 6)]
    eq = heavy_ball_equilibrium(H, noise, rates, gamma, h, batch, groups)
    D = np.diag(rates)
    system = np.block([[np.zeros((n, n)), np.eye(n)], [-D @ H, -gamma * np.eye(n)]])
    source = np.zeros((2 * n, 2 * n))
    source[n:, n:] = (h / batch) * D @ noise @ D
    keep = [i for i in range(2 * n) if i not in (n - 1, 2 * n - 1)]  # drop the null pair
    C = np.zeros((2 * n, 2 * n))
    C[np.ix_(keep, keep)] = scipy.linalg.solve_continuous_lyapunov(
        system[np.ix_(keep, keep)], -source[np.ix_(keep, keep)]
    )
    scale = np.abs(C).max()
    np.testing.assert_allclose(eq.theta, C[:n, :n], rtol=0, atol=1e-13 * scale)
    np.testing.assert_allclose(eq.velocity, C[n:, n:], rtol=0, atol=1e-13 * scale)
    np.testing.assert_allclose(eq.cross, C[n:, :n], rtol=0, atol=1e-13 * scale)
    np.testing.assert_allclose(eq.kinetic, eq.potential, rtol=1e-12)
    bath = h / (2 * gamma * batch) * np.sum(rates * np.diag(noise))
    assert eq.kinetic.sum() == pytest.approx(bath, rel=1e-12)
    assert abs(eq.kinetic[0] - eq.kinetic[1]) > 0.1 * eq.kinetic.sum()  # a coloured bath


def heavy_ball_ensemble(setup, members: int) -> tuple[np.ndarray, np.ndarray]:
    """Final θ and stored velocity of ``members`` heavy-ball runs of a linear layer on the
    i.i.d. schedules of seeds ``seed + s`` (written out here, vectorised), ``(S, P)`` each."""
    tr, P = setup.config.training, setup.network.params
    X, Y = setup.data.X, setup.data.Y
    dx, rates = setup.convention.layers[1].measure, setup.dictionary.rates()
    mu, eps = heavy_ball_coefficients(tr.gamma, tr.dt, tr.momentum_form)

    def gradient(theta, batch):
        Xb = X[batch]
        r = np.einsum("sij,sbj->sbi", P.W(theta, 0), Xb) + P.b(theta, 0)[:, None] - Y[batch]
        g = np.zeros_like(theta)
        P.W(g, 0)[...] = np.einsum("sbi,sbj->sij", dx * r, Xb) / Xb.shape[1]
        P.b(g, 0)[...] = (dx * r).sum(axis=1) / Xb.shape[1]
        return g

    theta = np.tile(setup.theta0, (members, 1))
    v = 0.5 * tr.dt * rates * gradient(theta, np.tile(np.arange(len(X)), (members, 1)))
    schedules = np.stack(
        [
            sample_schedule(len(X), tr.batch, tr.steps, tr.seed + s, "replacement")
            for s in range(members)
        ],
        axis=1,
    )
    for batch in schedules:
        step = mu * tr.dt * v - eps * rates * gradient(theta, batch)
        theta, v = theta + step, step / tr.dt
    return theta, v


def test_momentum_sgd_equipartition_against_a_long_ensemble():
    """1000 heavy-ball SGD runs (width 8 → 8, L = 4, B = 2, γ = 1, h = 0.02) at t = 12: the
    variance of every W_ij, b_i within the linear-noise law's statistical error (RMS z 1.1);
    the kinetic ⟨δv·δv/η⟩ = 3.13e-3 ± 0.10e-3 and potential ⟨δθ·Hδθ⟩ = 3.28e-3 ± 0.11e-3
    temperatures both within 4 standard errors (+1 %: the O(h) and the unfinished
    relaxation) of the closed form 3.18e-3, and equal to each other within 4 standard
    errors of their paired difference; the linear-noise law's two temperatures agree to
    0.2 % and lie 0.3 % from the closed form."""
    setup = build(at_width(DISCRETE, 8))
    tr = setup.config.training
    law = discrete_linear_noise(setup)
    for _ in range(setup.steps):
        law.step()
    dense = LinearNoise(setup.cost, setup.dictionary.rates(), tr.dt, tr.batch, law.theta)
    hessian = dense.hessian(law.theta)
    eq = heavy_ball_equilibrium(
        hessian,
        dense.noise(law.theta),
        setup.dictionary.rates(),
        tr.gamma,
        tr.dt,
        tr.batch,
        law.groups,
    )
    closed = float(eq.kinetic[0])
    assert eq.potential[0] == pytest.approx(closed, rel=1e-12)
    assert law.kinetic_temperatures()[0] == pytest.approx(closed, rel=0.01)
    assert law.potential_temperatures()[0] == pytest.approx(closed, rel=0.01)

    theta, v = heavy_ball_ensemble(setup, MEMBERS)
    S = MEMBERS
    d, dv = theta - theta.mean(axis=0), v - v.mean(axis=0)
    var = np.sum(d**2, axis=0) / (S - 1)
    z = (var - law.variances()) / np.sqrt((np.mean(d**4, axis=0) - var**2) / S)
    assert np.sqrt(np.mean(z**2)) < 1.4 and np.abs(z).max() < 4.5, z
    kinetic = np.sum(dv**2 / setup.dictionary.rates(), axis=1) * S / (S - 1)
    potential = np.einsum("si,ij,sj->s", d, hessian, d) * S / (S - 1)
    for sample in (kinetic, potential):
        assert abs(sample.mean() - closed) <= 4 * sample.std() / np.sqrt(S) + 0.01 * closed
    difference = kinetic - potential
    assert abs(difference.mean()) <= 4 * difference.std() / np.sqrt(S)


def test_run_prints_the_layer_temperatures_of_momentum_sgd(tmp_path, capsys):
    """``synfield run`` of momentum SGD with fluctuations = "moments" (the continuum
    linear-noise law, scheme lna): summary.json and the printout carry the kinetic and the
    potential temperature of the layer; at t = 12 they agree (equipartition, 0.5 %) and
    match the width-16 discrete law's within 2 %."""
    config = at_width(HEAVY_BALL, 16, output={"every": 100, "quiet": False})
    assert config.continuum.scheme == "lna"
    run_experiment(config, tmp_path / "run")
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())["fluctuations"]
    kinetic, potential = summary["temperature_kinetic"][0], summary["temperature_potential"][0]
    assert "temperature_kinetic" in printed
    assert kinetic == pytest.approx(potential, rel=0.005)
    setup = build(at_width(DISCRETE, 16))
    law = discrete_linear_noise(setup)
    for _ in range(setup.steps):
        law.step()
    assert potential == pytest.approx(law.potential_temperatures()[0], rel=0.02)


def test_momentum_sgd_refuses_full_batch_schemes():
    """Momentum SGD is the heavy ball on each batch: RK4 momentum is refused by name, and
    the implicit continuum (a full-batch solver) names the sampling key."""
    with pytest.raises(ConfigError, match=r"\[training\] momentum_scheme"):
        at_width(DISCRETE, 8, training={"momentum_scheme": "rk4"})
    implicit = {"fluctuations": None, "scheme": "implicit"}
    with pytest.raises(ConfigError, match="sampling = 'replacement'"):
        at_width(HEAVY_BALL, 8, continuum=implicit)


def test_momentum_sgd_rule_is_the_heavy_ball_on_each_batch():
    """``rule = "momentum"``, ``sampling = "replacement"``: the training rule (and the schedule
    the run writes) equals the heavy ball written out above on the schedules of seeds
    ``seed + s``, to rounding; a full-batch heavy ball ends elsewhere."""
    config = at_width(DISCRETE, 8, training={"t_end": 1.0})
    theta, v = heavy_ball_ensemble(build(config), 3)
    for s in range(3):
        tr = dataclasses.replace(config.training, seed=config.training.seed + s)
        setup = build(dataclasses.replace(config, training=tr))
        assert setup.schedule is not None and setup.schedule.shape == (setup.steps, 2)
        *_, last = integrate(setup.rule, setup.rule.initial(setup.theta0), setup.steps, 1)
        np.testing.assert_allclose(last.theta, theta[s], rtol=0, atol=1e-12)
        np.testing.assert_allclose(last.velocity, v[s], rtol=0, atol=1e-12)
    full = build(at_width(DISCRETE, 8, training={"sampling": None, "batch": None, "t_end": 1.0}))
    assert full.schedule is None
    *_, last = integrate(full.rule, full.rule.initial(full.theta0), full.steps, full.steps)
    assert np.abs(last.theta - theta[0]).max() > 1e-3


def test_schedule_ensemble_of_momentum_sgd_against_the_linear_noise_law(tmp_path):
    """``ensemble --over schedule`` of momentum SGD with fluctuations = "moments": 400
    heavy-ball runs against the continuum linear-noise Var w at the lattice, relative
    distance within the sampling error (≈ √(2/S) = 7 % per entry)."""
    config = at_width(HEAVY_BALL, 6, training={"t_end": 2.0})
    result = run_ensemble(config, 400, tmp_path, MPI.COMM_SELF, over="schedule")
    with h5py.File(tmp_path / "ensemble.h5") as f:
        var = f["/continuum/layer0/w_var_at_lattice"][-1]
    setup = build(config)
    dx, dy = setup.convention.layers[1].measure, setup.convention.layers[0].measure
    size = float(np.sqrt(np.sum(dx[:, None] * dy[None, :] * var**2)))
    assert 0 < result["l2_error_var"][-1] < 0.15 * size, (result["l2_error_var"], size)
