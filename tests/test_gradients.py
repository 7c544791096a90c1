"""Back-propagated gradients of C against central finite differences (docs/physics.md "Discrete
network and cost")."""

import numpy as np
import pytest

from discrete.activations import activation
from discrete.conventions import Convention
from discrete.cost import Cost
from discrete.data import DataSet
from discrete.network import Banded, Dense, Network

CONNECTIVITIES = {
    "dense": Dense(),
    "banded-periodic": Banded((0, 1), "periodic"),
    "banded-open": Banded((-1, 0, 2), "open"),
}


def finite_difference_gradient(cost: Cost, theta: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(theta)
    for k in range(theta.size):
        e = np.zeros_like(theta)
        e[k] = eps
        grad[k] = (cost.value(theta + e) - cost.value(theta - e)) / (2 * eps)
    return cost.network.params.masked(grad)


@pytest.mark.parametrize("name", ["linear", "quadratic", "tanh", "softplus", "relu"])
@pytest.mark.parametrize("wiring", list(CONNECTIVITIES))
@pytest.mark.parametrize("bias", [True, False])
def test_gradient_matches_finite_differences(name, wiring, bias):
    rng = np.random.default_rng(7)
    conn = CONNECTIVITIES[wiring]
    net = Network([6, 6, 6], activation(name), [conn, conn], bias=bias, output="activation")
    conv = Convention.build(net, "cell")
    data = DataSet(rng.standard_normal((3, 6)), rng.standard_normal((3, 6)))
    cost = Cost(net, data, conv.layers[-1].measure)
    theta = net.params.masked(rng.standard_normal(net.params.size))
    _, grad = cost.gradient(theta)
    fd = finite_difference_gradient(cost, theta)
    assert np.linalg.norm(fd - grad) / np.linalg.norm(grad) < 1e-6


def test_banded_layer_equals_its_dense_matrix():
    """A banded layer applies exactly the dense matrix it stands for (both ends)."""
    rng = np.random.default_rng(1)
    for conn in (Banded((0, 1), "periodic"), Banded((-1, 0, 2), "open")):
        net = Network([7, 7], activation("linear"), [conn], bias=False)
        layer = net.layers[0]
        W = net.params.masked(rng.standard_normal(net.params.size)).reshape(layer.weight_shape)
        h = rng.standard_normal((4, 7))
        d = rng.standard_normal((4, 7))
        D = layer.dense(W)
        assert np.count_nonzero(D) == np.count_nonzero(W)
        np.testing.assert_allclose(layer.apply(W, h), h @ D.T, rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(layer.apply_transpose(W, d), d @ D, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("name", ["linear", "quadratic", "tanh", "softplus", "relu"])
def test_slope_from_the_activity_is_the_derivative(name):
    """``σ'`` from the forward pass's ``h = σ(z)`` (tanh: ``1 − h²``) equals ``σ'(z)`` to
    rounding, out to where ``σ`` saturates."""
    act = activation(name)
    z = np.linspace(-40.0, 40.0, 4001)
    assert np.abs(act.slope(z, act.sigma(z)) - act.dsigma(z)).max() <= 1e-15
