"""Goldstein's chain realised by a perceptron trained on derivative probes (docs/physics.md
"Continuum").

With probes ``X = s_j (e_{j+1}/Δy − e_j/Δy)`` and zero targets the cost is the elastic
energy ``½ Σ κ (W_{j+1} − W_j)²/a³`` and the momentum rule at γ = 0 is the chain
``Ẅ_j = (κ/a²)(W_{j+1} − 2W_j + W_{j−1})`` (+ m² W_j with one-hot probes).  Its normal modes:

    free ends (N − 1 bonds):   ω_n² = (2√κ/a)² sin²(nπ/2N) + m²,   u_n(j) = cos(nπ(j + ½)/N)
    periodic (N bonds):        ω_n² = (2√κ/a)² sin²(nπ/N) + m²,    u_n(j) = cos(2πnj/N)

The heavy-ball step with μ = 1 obeys ``a_{k+1} + a_{k−1} = (2 − h²ω²) a_k`` exactly for a
pure mode, so ω is measured from the trajectory by a least-squares fit of that recurrence.
"""

import numpy as np
import pytest

from discrete.activations import activation
from discrete.conventions import Convention
from discrete.cost import Cost
from discrete.data import probes
from discrete.dictionary import ScalingDictionary
from discrete.network import Dense, Network
from discrete.training import Momentum, run


def measured_mode_frequency(placement: str, N: int, n: int, kappa: float, mass: float):
    net = Network([N, 1], activation("linear"), [Dense()], bias=False)
    conv = Convention.build(net, placement)
    data, _ = probes(conv.layers[0], 1, kappa, mass)
    cost = Cost(net, data, conv.layers[1].measure)
    rates = ScalingDictionary(net, conv, lr=1.0).rates()
    j = np.arange(N)
    shape = (
        np.cos(n * np.pi * (j + 0.5) / N) if placement == "cell" else np.cos(2 * np.pi * n * j / N)
    )
    h = 0.2 / N
    traj = run(Momentum(cost, rates, h, gamma=0.0), shape.copy(), steps=400)
    amp = traj.thetas @ shape / (shape @ shape)
    leak = np.linalg.norm(traj.thetas - np.outer(amp, shape)) / np.linalg.norm(traj.thetas)
    a = amp
    c = np.sum(a[1:-1] * (a[2:] + a[:-2])) / np.sum(a[1:-1] ** 2)
    return np.sqrt(2.0 - c) / h, leak


@pytest.mark.parametrize("placement", ["cell", "periodic"])
@pytest.mark.parametrize("mass", [0.0, 9.0])
def test_chain_modes_match_lattice_dispersion(placement, mass):
    kappa, N = 2.0, 24
    for n in (1, 2, 5):
        omega, leak = measured_mode_frequency(placement, N, n, kappa, mass)
        arg = n * np.pi / (2 * N) if placement == "cell" else n * np.pi / N
        exact = np.sqrt((2 * np.sqrt(kappa) * N * np.sin(arg)) ** 2 + mass)
        assert abs(omega - exact) / exact < 1e-8
        assert leak < 1e-10


def test_chain_modes_converge_to_the_string_with_order_two():
    """ω_n(N) of the periodic chain → c·2πn with relative error (nπ/N)²/6: order 2 in 1/N."""
    kappa, n = 1.0, 2
    widths = np.array([16, 32, 64])
    errors = []
    for N in widths:
        omega, _ = measured_mode_frequency("periodic", int(N), n, kappa, 0.0)
        errors.append(abs(omega - np.sqrt(kappa) * 2 * np.pi * n) / (2 * np.pi * n))
    order = -np.polyfit(np.log(widths), np.log(errors), 1)[0]
    assert abs(order - 2.0) <= 0.1
    assert errors[-1] == pytest.approx((n * np.pi / widths[-1]) ** 2 / 6, rel=0.01)
