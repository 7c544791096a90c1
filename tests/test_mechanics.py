"""Bulk–boundary decomposition and layer energy balance (docs/physics.md "Mechanics")."""

import numpy as np

from discrete.activations import activation
from discrete.cost import Cost
from discrete.data import DataSet
from discrete.mechanics import bulk_boundary, energy_balance, lagrangian
from discrete.network import Dense, Network


def tanh_network() -> Network:
    return Network([5, 4, 6, 3], activation("tanh"), [Dense()] * 3, bias=True)


def smooth_trajectory(size: int, seed: int):
    """θ(t) = A + B sin(ωt) + C t², with its exact velocity."""
    rng = np.random.default_rng(seed)
    A, B, C = rng.standard_normal((3, size))
    omega = 1.3

    def theta(t):
        return A + B * np.sin(omega * t) + C * t * t

    def theta_dot(t):
        return B * omega * np.cos(omega * t) + 2 * C * t

    return theta, theta_dot


def test_lagrangian_equals_bulk_plus_boundary_along_smooth_trajectories():
    net = tanh_network()
    rng = np.random.default_rng(3)
    dx = np.full(3, 1 / 3)
    worst = 0.0
    for seed in range(4):
        theta, theta_dot = smooth_trajectory(net.params.size, seed)
        x, y = rng.standard_normal(5), rng.standard_normal(3)
        for t in np.linspace(0.0, 2.0, 9):
            L = lagrangian(net, theta(t), theta_dot(t), x, y, dx)
            bb = bulk_boundary(net, theta(t), theta_dot(t), x, y, dx)
            worst = max(worst, abs(L - (bb.bulk + bb.boundary)) / abs(L))
    assert worst < 1e-10


def test_slide_boundary_term_without_half_breaks_identity():
    """The published slide's |∂_t(W⁽⁰⁾X)|² without ½ does not close: the ½ is needed."""
    net = tanh_network()
    theta, theta_dot = smooth_trajectory(net.params.size, 11)
    rng = np.random.default_rng(5)
    x, y, dx = rng.standard_normal(5), rng.standard_normal(3), np.full(3, 1 / 3)
    L = lagrangian(net, theta(0.4), theta_dot(0.4), x, y, dx)
    bb = bulk_boundary(net, theta(0.4), theta_dot(0.4), x, y, dx)
    slide = bb.bulk + bb.boundary + bb.boundary_square
    assert abs(L - slide) / abs(L) > 1e-3


def test_layer_energy_balance_is_an_instantaneous_identity():
    net = tanh_network()
    rng = np.random.default_rng(9)
    data = DataSet(rng.standard_normal((4, 5)), rng.standard_normal((4, 3)))
    cost = Cost(net, data, np.full(3, 1 / 3))
    rates = rng.uniform(0.5, 2.0, net.params.size)
    for gamma in (0.0, 0.7):
        theta = rng.standard_normal(net.params.size)
        theta_dot = rng.standard_normal(net.params.size)
        eb = energy_balance(cost, theta, theta_dot, rates, gamma)
        assert np.max(np.abs(eb.residual())) < 1e-10 * eb.scale()
        # the last flux is the rate of change of the cost: dC/dt = ∂C/∂θ·θ̇
        _, grad = cost.gradient(theta)
        assert abs(eb.flux[-1] - grad @ theta_dot) < 1e-10 * eb.scale()


def test_layer_energy_balance_along_a_time_stepped_trajectory_has_the_integrator_order():
    """E_m(T) − E_m(0) = ∫ (F_m − F_{m+1} − 2γE_m) dt along an RK4 trajectory of the damped
    dynamics, the integral by Simpson's rule on the steps: the defect is O(h⁴)."""
    from discrete.training import Momentum, run

    net = tanh_network()
    rng = np.random.default_rng(2)
    data = DataSet(rng.standard_normal((4, 5)), rng.standard_normal((4, 3)))
    cost = Cost(net, data, np.full(3, 1 / 3))
    rates = np.full(net.params.size, 0.8)
    theta0 = 0.5 * rng.standard_normal(net.params.size)
    gamma, T = 0.7, 1.0
    steps, defects = np.array([10, 20, 40]), []
    for n in steps:
        traj = run(Momentum(cost, rates, T / n, gamma, scheme="rk4"), theta0, int(n))
        balances = [
            energy_balance(cost, th, v, rates, gamma)
            for th, v in zip(traj.thetas, traj.velocities, strict=True)
        ]
        energy = np.array([b.energy for b in balances])
        rhs = np.array([b.flux[:-1] - b.flux[1:] + b.friction for b in balances])
        w = np.ones(n + 1)
        w[1:-1:2], w[2:-1:2] = 4.0, 2.0
        integral = (T / n) / 3.0 * (w[:, None] * rhs).sum(axis=0)
        defects.append(np.max(np.abs(energy[-1] - energy[0] - integral)))
    order = -np.polyfit(np.log(steps), np.log(defects), 1)[0]
    assert order >= 3.8, defects
