"""Training rules: RK4 order of the flow, the high-viscosity limit, SGD schedules (SPEC 1.1)."""

import numpy as np
from problems import observed_order, tanh_problem

from discrete.training import Flow, Momentum, integrate, sample_schedule


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
