"""Small problems shared by the time-integration tests (the TOML problems: tests/configs.py)."""

import numpy as np

from discrete.activations import activation
from discrete.conventions import Convention
from discrete.cost import Cost
from discrete.data import DataSet
from discrete.dictionary import ScalingDictionary
from discrete.network import Dense, Network


def observed_order(steps, errors) -> float:
    """Least-squares slope of log(error) against log(step)."""
    return float(np.polyfit(np.log(steps), np.log(errors), 1)[0])


def tanh_problem(seed: int = 0) -> tuple[Cost, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    net = Network([6, 5, 4], activation("tanh"), [Dense(), Dense()], bias=True)
    conv = Convention.build(net, "cell")
    data = DataSet(rng.standard_normal((5, 6)), rng.standard_normal((5, 4)))
    cost = Cost(net, data, conv.layers[-1].measure)
    rates = ScalingDictionary(net, conv, lr=1.0).rates()
    theta0 = 0.5 * rng.standard_normal(net.params.size)
    return cost, rates, theta0
