"""Residual networks (docs/physics.md "Depth as a coordinate"): gradients, the one-block identity,
the dictionary, the rules."""

import re

import numpy as np
import pytest

from continuum import parse_config
from continuum.settings import Config
from discrete.activations import activation
from discrete.config import ConfigError
from discrete.conventions import Convention
from discrete.cost import Cost
from discrete.data import DataSet
from discrete.depth_mechanics import depth_bulk_boundary
from discrete.dictionary import ScalingDictionary
from discrete.experiment import build
from discrete.mechanics import energy_balance
from discrete.network import Dense, Network
from discrete.residual import ResidualNetwork, neuron_layouts
from discrete.training import run
from tests.configs import resolved
from tests.test_gradients import finite_difference_gradient


def resnet(
    n: int = 8,
    blocks: int = 4,
    rule: str = "flow",
    steps: int = 10,
    n_in: int = 6,
    n_out: int = 5,
    **training: float,
) -> Config:
    """The resnet problem ``n_in`` → ``n`` (``blocks`` blocks) → ``n_out`` with its own fields,
    ``steps`` steps of ``rule`` (with ``training`` keys), no continuum."""
    return resolved(
        "resnet",
        network={"widths": [n_in, n, n_out], "depth": blocks},
        init={
            "weight": ["cos(pi*(x - y))", "0.8*sin(pi*(x + y))*(1 + tau)", "1 + x*y"],
            "bias": ["0.1*x", "0.2*cos(pi*x)*tau", "0"],
        },
        training={"rule": rule, "lr": 1.0, "steps": steps, **training},
        continuum={"cells": None, "degree": None, "depth_cells": None, "enabled": False},
    )


def residual_cost(net: ResidualNetwork, seed: int = 3) -> tuple[Cost, np.ndarray]:
    rng = np.random.default_rng(seed)
    conv = Convention.build(net, "cell", neuron_layouts(net, ("line",) * 3))
    data = DataSet(
        rng.standard_normal((3, net.widths[0])), rng.standard_normal((3, net.widths[-1]))
    )
    return Cost(net, data, conv.layers[-1].measure), rng.standard_normal(net.params.size)


@pytest.mark.parametrize("name", ["linear", "quadratic", "tanh", "softplus", "relu"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("output", ["identity", "activation"])
def test_residual_gradient_matches_finite_differences(name, bias, output):
    net = ResidualNetwork([5, 6, 4], activation(name), blocks=3, bias=bias, output=output)
    cost, theta = residual_cost(net)
    _, grad = cost.gradient(theta)
    fd = finite_difference_gradient(cost, theta)
    assert np.linalg.norm(fd - grad) / np.linalg.norm(grad) < 1e-6


def test_one_block_is_a_two_layer_network_with_a_skip_connection():
    """M = 1, Δτ = 1: ``Z = W^out (z⁽¹⁾ + z⁽²⁾) + b^out`` with ``z⁽¹⁾ = W^in X + b^in`` and
    ``z⁽²⁾ = W⁽¹⁾σ(z⁽¹⁾) + b⁽¹⁾`` the pre-activations of the ordinary network [N_in, N, N];
    the gradients agree as well (the skip adds ``gᵀX`` and ``Σ g`` to the input layer)."""
    res = ResidualNetwork([5, 7, 3], activation("tanh"), blocks=1)
    two = Network([5, 7, 7], activation("tanh"), [Dense(), Dense()], output="identity")
    cost, theta = residual_cost(res)
    P = res.params
    theta_two = two.params.pack([P.W(theta, 0), P.W(theta, 1)], [P.b(theta, 0), P.b(theta, 1)])
    X, Y = cost.data.X, cost.data.Y
    trace = two.forward(theta_two, X)
    stream = trace.z[1] + trace.z[2]
    Z = stream @ P.W(theta, 2).T + P.b(theta, 2)
    np.testing.assert_allclose(res.forward(theta, X).output, Z, rtol=1e-14, atol=1e-14)
    # gradient: g = ∂C/∂(stream) feeds z⁽²⁾ through the two-layer network and z⁽¹⁾ directly
    r = cost.dx * (Z - Y) / len(X)
    g = r @ P.W(theta, 2)
    grad_two, _ = two.backward(theta_two, trace, g)
    _, grad = cost.gradient(theta)
    np.testing.assert_allclose(
        P.W(grad, 0), two.params.W(grad_two, 0) + g.T @ X, rtol=1e-13, atol=1e-15
    )
    np.testing.assert_allclose(
        P.b(grad, 0), two.params.b(grad_two, 0) + g.sum(axis=0), rtol=1e-13, atol=1e-15
    )
    np.testing.assert_allclose(P.W(grad, 1), two.params.W(grad_two, 1), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(P.W(grad, 2), r.T @ stream, rtol=1e-13, atol=1e-15)


def test_dictionary_rates_carry_the_depth_cell():
    """η_W = η Δy/(Δτ Δx), η_b = η/(Δτ Δx) for blocks; ordinary rates for the end layers."""
    setup = build(resnet(n=8, blocks=4, n_in=6, n_out=5))
    net, rates = setup.network, setup.dictionary.rates()
    P = net.params
    np.testing.assert_allclose(P.W(rates, 0), (1 / 6) / (1 / 8), rtol=1e-15)
    np.testing.assert_allclose(P.b(rates, 0), 8.0, rtol=1e-15)
    for m in range(1, 5):
        np.testing.assert_allclose(P.W(rates, m), (1 / 8) / ((1 / 4) * (1 / 8)), rtol=1e-15)
        np.testing.assert_allclose(P.b(rates, m), 1 / ((1 / 4) * (1 / 8)), rtol=1e-15)
    np.testing.assert_allclose(P.W(rates, 5), (1 / 8) / (1 / 5), rtol=1e-15)
    text = str(setup.dictionary)
    assert "η_W=ηΔy/(ΔτΔx)" in text and "block3" in text
    assert "0.25" in text.splitlines()[3]  # block0's Δτ
    assert setup.dictionary.entries[1].domain_dim == 3  # (τ, x, y)


def test_initial_fields_follow_the_three_formulas():
    setup = build(resnet(n=8, blocks=4))
    net, conv = setup.network, setup.convention
    w, b = conv.to_fields(net, setup.theta0)
    x = (np.arange(8) + 0.5) / 8
    tau = (np.arange(4) + 0.5) / 4
    for k in range(4):
        expected = 0.8 * np.sin(np.pi * (x[:, None] + x[None, :])) * (1 + tau[k])
        np.testing.assert_allclose(w[k + 1], expected, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(b[k + 1], 0.2 * np.cos(np.pi * x) * tau[k], atol=1e-15)
    np.testing.assert_allclose(w[5], 1 + (np.arange(5)[:, None] + 0.5) / 5 * x[None, :])
    assert net.layer_name(0) == "layer0" and net.layer_name(2) == "block1"
    assert net.layer_name(5) == "layer5"


@pytest.mark.parametrize("rule", ["flow", "gd", "sgd", "momentum"])
def test_every_rule_trains_a_residual_network(rule):
    training = {"gamma": 2.0} if rule == "momentum" else {}
    setup = build(resnet(rule=rule, steps=40, **training))
    traj = run(setup.rule, setup.theta0, setup.steps, every=40)
    assert traj.costs[-1] < 0.9 * traj.costs[0]


def test_config_refuses_inconsistent_residual_keys():
    base = '[network]\narchitecture = "residual"\nwidths = [4, 4, 4]\n'
    cases = {
        base: "[network] depth: required key is missing",
        base.replace("[4, 4, 4]", "[4, 4]") + "depth = 2\n": "[network] widths",
        "[network]\nwidths = [4, 4]\ndepth = 3\n": "[network] depth: only used with",
        base + 'depth = 2\n[init]\nweight = ["x", "y"]\n': "[init] weight: expected one",
        base + 'depth = 2\n[init]\nweight = ["x", "q", "y"]\n': "(the blocks entry)",
        base + 'depth = 2\n[continuum]\nscheme = "adaptive"\n': "[continuum] scheme = 'adaptive'",
        "[network]\nwidths = [4, 4]\n[continuum]\ndepth_cells = 4\n": "[continuum] depth_cells",
        base + 'depth = 2\nconnectivity = "banded"\n': "[network] connectivity",
    }
    for text, message in cases.items():
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse_config(text)


def test_block_energy_balance_closes_instantaneously():
    """``dE_k/dt + F_{k+1} − F_k = −2γE_k`` per block (docs/physics.md "Mechanics" for residual
    blocks), with the fluxes ``F = p·ṡ`` from the forward tangent and the adjoint, the rates from
    the equation of motion."""
    setup = build(resnet(n=8, blocks=5, rule="momentum", gamma=1.5))
    rng = np.random.default_rng(2)
    theta_dot = rng.standard_normal(setup.network.params.size)
    rates = setup.dictionary.rates()
    balance = energy_balance(setup.cost, setup.theta0, theta_dot, rates, 1.5)
    assert len(balance.energy) == 7 and len(balance.flux) == 8
    assert np.max(np.abs(balance.residual())) < 1e-13 * balance.scale()


@pytest.mark.parametrize("output", ["identity", "activation"])
def test_bulk_boundary_identity_with_the_stream_for_biases(output):
    """``L = ½ Σ M_θ θ̇² − ℓ`` equals ``L_bulk + L_boundary`` with every bias traded for the
    stream (dictionary masses, one sample, random state and velocity); the bulk does not see
    the target."""
    net = ResidualNetwork([5, 7, 4], activation("tanh"), blocks=6, output=output)
    conv = Convention.build(net, "cell", neuron_layouts(net, ("line",) * 3))
    masses = 1.0 / ScalingDictionary(net, conv, lr=0.7).rates()
    rng = np.random.default_rng(11)
    theta, theta_dot = rng.standard_normal((2, net.params.size))
    x, y, dx = rng.standard_normal(5), rng.standard_normal(4), conv.layers[-1].measure
    Z = net.forward(theta, x[None, :]).output[0]
    L = 0.5 * float(np.sum(masses * theta_dot**2)) - 0.5 * float(np.sum(dx * (Z - y) ** 2))
    parts = depth_bulk_boundary(net, theta, theta_dot, x, y, dx, masses)
    assert abs(L - parts.bulk - parts.boundary) < 1e-12 * abs(parts.bulk)
    other = depth_bulk_boundary(net, theta, theta_dot, x, y + 1.0, dx, masses)
    assert other.bulk == parts.bulk and other.boundary != parts.boundary
