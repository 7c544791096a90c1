"""Index layers (docs/physics.md "Index layers"): counting measure, the dictionary, formulas in i
and j, losses."""

import numpy as np
import pytest

from continuum.settings import parse_config
from discrete.activations import activation
from discrete.config import ConfigError
from discrete.conventions import Convention, layer_coordinates
from discrete.cost import Cost, CrossEntropy, SquaredError
from discrete.data import DataSet
from discrete.dictionary import ScalingDictionary
from discrete.experiment import build
from discrete.network import Dense, Network
from tests.test_gradients import finite_difference_gradient

INDEX_FIELD_INDEX = """\
[network]
widths = [3, {n}, 2]
activation = "tanh"
[coordinates]
layout = ["index", "line", "index"]
[init]
weight = ["0.5*cos(pi*(j+1)*x)", "(1 - 2*i)*sin(pi*y)"]
bias = ["0.1*x", "0.2*i"]
[data]
kind = "file"
path = "unused.npz"
[continuum]
enabled = false
"""


def test_index_layer_has_counting_measure_at_every_width():
    for n in (1, 4, 10):
        c = layer_coordinates(n, "cell", "index")
        np.testing.assert_array_equal(c.points[:, 0], np.arange(n))
        np.testing.assert_array_equal(c.measure, np.ones(n))
        assert c.spacing == 1.0 and c.field_dim == 0


def test_dictionary_of_index_layers_is_the_rule_with_unit_measure():
    """η_W = η/Δx into a field layer, η Δy out of it, η_b = η on the index layer."""
    N, lr = 8, 0.7
    net = Network([3, N, N, 2], activation("tanh"), [Dense()] * 3)
    conv = Convention.build(net, "cell", ("index", "line", "line", "index"))
    d = ScalingDictionary(net, conv, lr)
    expected = [(lr * N, lr * N), (lr, lr * N), (lr / N, lr)]
    for entry, (lr_w, lr_b) in zip(d.entries, expected, strict=True):
        assert entry.lr_weight == pytest.approx(lr_w, rel=1e-14)
        assert entry.lr_bias == pytest.approx(lr_b, rel=1e-14)
    assert [e.domain_dim for e in d.entries] == [1, 2, 1]
    rates = d.rates()
    np.testing.assert_allclose(net.params.W(rates, 0), lr * N, rtol=1e-14)
    np.testing.assert_allclose(net.params.W(rates, 2), lr / N, rtol=1e-14)
    np.testing.assert_allclose(net.params.b(rates, 2), lr, rtol=1e-14)
    text = str(d)
    assert "W_ij = w_j(x_i): a multiplet of input fields" in text
    assert "W_kj = Δy_j v_k(y_j): one readout field per class" in text


def test_formulas_in_i_and_j_give_the_multiplet_and_the_readout(tmp_path):
    N = 4
    np.savez(tmp_path / "unused.npz", X=np.zeros((2, 3)), Y=np.zeros((2, 2)))
    text = INDEX_FIELD_INDEX.format(n=N).replace("unused.npz", str(tmp_path / "unused.npz"))
    setup = build(parse_config(text))
    x = (np.arange(N) + 0.5) / N
    P = setup.network.params
    W0 = P.W(setup.theta0, 0)  # W_ij = w_j(x_i), no measure
    np.testing.assert_allclose(
        W0, 0.5 * np.cos(np.pi * (np.arange(3)[None, :] + 1) * x[:, None]), rtol=1e-14
    )
    W1 = P.W(setup.theta0, 1)  # W_kj = Δy v_k(y_j)
    np.testing.assert_allclose(
        W1, (1 - 2 * np.arange(2)[:, None]) * np.sin(np.pi * x[None, :]) / N, rtol=1e-14
    )
    np.testing.assert_allclose(P.b(setup.theta0, 0), 0.1 * x, rtol=1e-14)
    np.testing.assert_allclose(P.b(setup.theta0, 1), [0.0, 0.2], rtol=1e-14)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace('["0.5*cos(pi*(j+1)*x)", "(1 - 2*i)*sin(pi*y)"]', '"x*y"'),
            r"\[init\] weight: \"x\*y\" uses y, which weight layer 0 does not have",
        ),
        (
            lambda t: t.replace('["0.1*x", "0.2*i"]', '["0.1*x"]'),
            r"\[init\] bias: expected a formula, or a list of 2",
        ),
        (
            lambda t: t.replace('"(1 - 2*i)*sin(pi*y)"', '"x*y"'),
            r"\[init\] weight: invalid formula for weight layer 1",
        ),
        (
            lambda t: t.replace('"tanh"', '"tanh"\nloss = "cross-entropy"').replace(
                '"line", "index"]', '"line", "line"]'
            ),
            r'\[coordinates\] layout: \[network\] loss = "cross-entropy" is a softmax',
        ),
    ],
)
def test_index_layer_config_errors(edit, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(edit(INDEX_FIELD_INDEX.format(n=4)))


NETWORKS = {
    "index-line-index": ([4, 6, 3], ("index", "line", "index")),
    "index-line-grid-index": ([4, 5, 9, 3], ("index", "line", "grid", "index")),
    "line-index-line": ([5, 3, 4], ("line", "index", "line")),
}


LOSS_CASES = [
    (wiring, loss)
    for wiring, (_, layouts) in NETWORKS.items()
    for loss in ("mse", "cross-entropy")
    if loss == "mse" or layouts[-1] == "index"  # cross-entropy needs classes
]


@pytest.mark.parametrize("name", ["linear", "quadratic", "tanh", "softplus", "relu"])
@pytest.mark.parametrize(("wiring", "loss"), LOSS_CASES)
@pytest.mark.parametrize("output", ["identity", "activation"])
def test_gradient_with_index_layers_matches_finite_differences(name, wiring, loss, output):
    widths, layouts = NETWORKS[wiring]
    rng = np.random.default_rng(11)
    net = Network(widths, activation(name), [Dense()] * (len(widths) - 1), output=output)
    conv = Convention.build(net, "cell", layouts)
    L = 4
    if loss == "mse":
        Y, measure_loss = rng.standard_normal((L, widths[-1])), SquaredError()
    else:  # probability targets
        Y, measure_loss = rng.dirichlet(np.ones(widths[-1]), L), CrossEntropy()
    data = DataSet(rng.standard_normal((L, widths[0])), Y)
    cost = Cost(net, data, conv.layers[-1].measure, measure_loss)
    theta = rng.standard_normal(net.params.size)
    _, grad = cost.gradient(theta)
    fd = finite_difference_gradient(cost, theta)
    assert np.linalg.norm(fd - grad) / np.linalg.norm(grad) < 1e-6


def test_cross_entropy_of_two_classes_is_the_logistic_loss():
    """k = 2, one-hot targets: ℓ = log(1 + e^{−(Z_y − Z_other)}), g = softmax(Z) − Y."""
    rng = np.random.default_rng(3)
    Z = 4.0 * rng.standard_normal((50, 2))
    labels = rng.integers(0, 2, 50)
    Y = np.eye(2)[labels]
    margin = Z[np.arange(50), labels] - Z[np.arange(50), 1 - labels]
    ce = CrossEntropy()
    np.testing.assert_allclose(
        ce.per_sample(Z, Y, np.ones(2)), np.logaddexp(0.0, -margin), rtol=1e-13
    )
    p = 1.0 / (1.0 + np.exp(-(Z[:, 1] - Z[:, 0])))  # the logistic probability of class 1
    np.testing.assert_allclose(ce.density(Z, Y)[:, 1], p - labels, rtol=1e-12, atol=1e-15)
    # a shift of all logits changes nothing, even far beyond exp's range
    np.testing.assert_allclose(ce.per_sample(Z + 1e3, Y, np.ones(2)), np.logaddexp(0.0, -margin))
    # the gradient's one pass gives both, as the two calls do
    losses, g = ce.per_sample_and_density(Z, Y, np.ones(2))
    np.testing.assert_array_equal(losses, ce.per_sample(Z, Y, np.ones(2)))
    np.testing.assert_array_equal(g, ce.density(Z, Y))


def test_mse_with_index_layers_equals_a_hand_computed_case():
    """2 features → 2 neurons on a line (Δ = ½) → 1 output, linear: by hand."""
    net = Network([2, 2, 1], activation("linear"), [Dense(), Dense()])
    conv = Convention.build(net, "cell", ("index", "line", "index"))
    # fields w_j(x_i) = [[1, 2], [3, 4]], b = [0.5, -0.5]; v(y_j) = [2, -1], c = 0.25
    theta = conv.from_fields(
        net,
        [np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[2.0, -1.0]])],
        [np.array([0.5, -0.5]), np.array([0.25])],
    )
    X, Y = np.array([[1.0, -1.0], [0.5, 2.0]]), np.array([[1.0], [0.0]])
    # sample 1: z = [1-2+0.5, 3-4-0.5] = [-0.5, -1.5]; Z = ½(2·(−0.5) − 1·(−1.5)) + 0.25 = 0.5
    # sample 2: z = [0.5+4+0.5, 1.5+8-0.5] = [5, 9];      Z = ½(10 − 9) + 0.25 = 0.75
    # C = ½ [½ (0.5 − 1)² + ½ (0.75)²] = ½ [0.125 + 0.28125] = 0.203125
    cost = Cost(net, DataSet(X, Y), conv.layers[-1].measure)
    np.testing.assert_allclose(net.forward(theta, X).output[:, 0], [0.5, 0.75], rtol=1e-15)
    assert cost.value(theta) == pytest.approx(0.203125, rel=1e-15)
