"""Training rules: RK4 order of the flow, the high-viscosity limit, SGD schedules (docs/physics.md
"Discrete network and cost")."""

import numpy as np
import pytest
from problems import observed_order, tanh_problem

from discrete.training import (
    Flow,
    Momentum,
    heavy_ball_coefficients,
    integrate,
    sample_schedule,
)


def final(rule, theta0, steps):
    *_, last = integrate(rule, rule.initial(theta0), steps, every=steps)
    return last


def test_flow_rk4_is_fourth_order_in_time():
    cost, rates, theta0 = tanh_problem()
    T = 0.5
    reference = final(Flow(cost, rates, T / 640), theta0, 640).theta
    hs, errors = [], []
    for n in (10, 20, 40):
        hs.append(T / n)
        errors.append(np.linalg.norm(final(Flow(cost, rates, T / n), theta0, n).theta - reference))
    assert observed_order(hs, errors) >= 3.8


def test_momentum_approaches_flow_with_order_one_in_inverse_gamma():
    """θ̈ + γθ̇ + η∂C/∂θ = 0 from rest against θ̇ = −(η/γ)∂C/∂θ at the same time T.

    The damped motion lags the flow by its relaxation time 1/γ, so the relative difference of
    the displacements is ≈ 1/(γT): order 1 in 1/γ.
    """
    cost, rates, theta0 = tanh_problem(1)
    T, h = 1.0, 0.005
    steps = round(T / h)
    gammas = np.array([20.0, 40.0, 80.0, 160.0])
    diffs = []
    for gamma in gammas:
        flow = final(Flow(cost, rates / gamma, h), theta0, steps).theta
        mom = final(Momentum(cost, rates, h, gamma, scheme="rk4"), theta0, steps).theta
        diffs.append(np.linalg.norm(mom - flow) / np.linalg.norm(flow - theta0))
    order = observed_order(1 / gammas, diffs)
    assert abs(order - 1.0) <= 0.15


def test_sample_schedule_visits_every_sample_once_per_epoch_and_is_seeded():
    s = sample_schedule(7, 3, 14, seed=4)
    epochs = s.ravel()[: 7 * 6].reshape(6, 7)
    assert all(sorted(e) == list(range(7)) for e in epochs)
    np.testing.assert_array_equal(s, sample_schedule(7, 3, 14, seed=4))
    assert not np.array_equal(s, sample_schedule(7, 3, 14, seed=5))


def heavy_ball_errors(gamma: float, form: str, hs=(0.02, 0.01, 0.005), T: float = 1.0):
    """Heavy-ball positions at ``T`` against RK4 of the damped dynamics at a 16× finer step."""
    cost, rates, theta0 = tanh_problem(2)
    ref = final(
        Momentum(cost, rates, hs[-1] / 16, gamma, scheme="rk4"), theta0, round(T * 16 / hs[-1])
    )
    errors = []
    for h in hs:
        hb = final(Momentum(cost, rates, h, gamma, form=form), theta0, round(T / h))
        errors.append(np.linalg.norm(hb.theta - ref.theta))
    return list(hs), errors


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_heavy_ball_started_consistently_is_second_order(gamma):
    """Central friction and the staggered start ``v_0 = −½h²θ̈_0``: order 2 at every γ
    (docs/physics.md, "Training rules"); from ``v_0 = 0`` it was 1.0 even at γ = 0."""
    hs, errors = heavy_ball_errors(gamma, "central")
    assert abs(observed_order(hs, errors) - 2.0) <= 0.2


def test_one_sided_friction_is_first_order():
    """``μ = e^{−γh}``, ``ε = h²``: the friction is one-sided, first order for γ > 0."""
    hs, errors = heavy_ball_errors(2.0, "exp")
    assert abs(observed_order(hs, errors) - 1.0) <= 0.2


def test_heavy_ball_coefficients_keep_the_users_reading():
    mu, eps = heavy_ball_coefficients(2.0, 0.01, "central")
    assert mu == pytest.approx(0.99 / 1.01, rel=1e-15) and eps == pytest.approx(1e-4 / 1.01)
    assert heavy_ball_coefficients(2.0, 0.01, "exp") == (np.exp(-0.02), 1e-4)
