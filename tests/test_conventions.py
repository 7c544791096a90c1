"""Indexing conventions and the dictionary (docs/physics.md "The dictionary")."""

import numpy as np
import pytest

from discrete.activations import activation
from discrete.conventions import Convention, layer_coordinates, placement_1d
from discrete.dictionary import ScalingDictionary
from discrete.network import Dense, Network


def riemann_error(placement: str, n: int) -> float:
    x, dx = placement_1d(n, placement)
    f = (
        np.exp(np.sin(2 * np.pi * x) + x)
        if placement != "periodic"
        else np.exp(np.sin(2 * np.pi * x))
    )
    exact = {"periodic": 1.2660658777520082}.get(placement)
    if exact is None:
        from scipy.integrate import quad

        exact = quad(lambda s: np.exp(np.sin(2 * np.pi * s) + s), 0, 1, epsabs=1e-14)[0]
    return abs(np.sum(dx * f) - exact)


@pytest.mark.parametrize("placement", ["cell", "vertex"])
def test_placements_are_second_order_riemann_sums(placement):
    ns = np.array([16, 32, 64])
    errors = [riemann_error(placement, n) for n in ns]
    order = -np.polyfit(np.log(ns), np.log(errors), 1)[0]
    assert abs(order - 2.0) < 0.1


def test_periodic_placement_is_spectral_for_periodic_functions():
    """The trapezoid rule on a circle: ∫ exp(sin 2πx) = I₀(1) to rounding at N = 32."""
    assert riemann_error("periodic", 32) < 1e-14


def test_grid_layout_places_rows_and_columns():
    c = layer_coordinates(16, "cell", "grid")
    assert c.shape == (4, 4) and c.dim == 2
    np.testing.assert_allclose(c.points[5], [1.5 / 4, 1.5 / 4])
    np.testing.assert_allclose(c.points[7], [3.5 / 4, 1.5 / 4])
    assert c.measure.sum() == pytest.approx(1.0, abs=1e-15)
    with pytest.raises(ValueError, match="square width"):
        layer_coordinates(15, "cell", "grid")


def test_dictionary_rates_for_layers_of_different_widths():
    """η_W = ηΔy/Δx and η_b = η/Δx per layer; one global rate shows two clocks."""
    net = Network([16, 32, 8], activation("tanh"), [Dense(), Dense()])
    conv = Convention.build(net, "cell")
    d = ScalingDictionary(net, conv, lr=0.5, gamma=3.0)
    e0, e1 = d.entries
    assert e0.lr_weight == pytest.approx(0.5 * (1 / 16) / (1 / 32))
    assert e1.lr_weight == pytest.approx(0.5 * (1 / 32) / (1 / 8))
    assert e1.lr_bias == pytest.approx(0.5 * 8)
    assert e0.hubble == pytest.approx(3.0 / 2)
    rates = d.rates()
    np.testing.assert_allclose(net.params.W(rates, 1), e1.lr_weight)
    plain = ScalingDictionary(net, conv, lr=0.5, metric="plain")
    (cw0, cb0), (cw1, cb1) = plain.continuum_rates()
    assert cb0 == pytest.approx(0.5 / 32) and cw1 == pytest.approx(0.5 * (1 / 8) / (1 / 32))
    assert cw0 == pytest.approx(0.5 * (1 / 32) / (1 / 16)) and cb1 == pytest.approx(0.5 / 8)
    assert "different clocks" in str(plain)
    np.testing.assert_allclose(plain.rates(), 0.5)
