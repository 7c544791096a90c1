"""The printed field theory: local coefficients from the gradient expansion, couplings."""

from pathlib import Path

import numpy as np
import pytest

from continuum.theory import FieldTheory
from discrete.config import load_config
from discrete.experiment import build
from discrete.locality import local_coefficients

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize(
    ("name", "kappa", "mass"), [("goldstein", 1.0, 0.0), ("klein-gordon", 1.0, 25.0)]
)
def test_probe_chains_give_the_string_coefficients(name, kappa, mass):
    """Derivative (+ one-hot) probes: K = κ, J = m², ρ = 1/η exactly, j = 0."""
    setup = build(load_config(EXAMPLES / f"{name}.toml"))
    lc = local_coefficients(setup.cost, setup.dictionary)
    np.testing.assert_allclose(lc.stiffness, kappa, rtol=1e-12)
    np.testing.assert_allclose(lc.mass, mass, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(lc.density, 1.0, rtol=1e-12)
    np.testing.assert_allclose(lc.source, 0.0, atol=1e-12)
    assert not lc.negative_stiffness
    assert "nonlocal" not in str(FieldTheory(setup))


def test_banded_toy_linear_ordering_has_negative_stiffness_on_alternate_bonds():
    """Toy 1 of SPEC 1.5: k_{2i} = −Δx⟨X_i X_{i+1}⟩ < 0 for positively correlated inputs,
    k_{2i+1} = 0 (different outputs never meet in the cost)."""
    setup = build(load_config(EXAMPLES / "toy-banded.toml"))
    lc = local_coefficients(setup.cost, setup.dictionary)
    X = setup.data.X
    N = X.shape[1]
    dx = 1.0 / N
    expected = -dx * np.mean(X * np.roll(X, -1, axis=1), axis=0) * (1.0 / (2 * N))
    np.testing.assert_allclose(lc.stiffness[0::2], expected, rtol=1e-10)
    np.testing.assert_allclose(lc.stiffness[1::2], 0.0, atol=1e-15)
    assert lc.negative_stiffness
    assert "Lorentz-violating" in str(FieldTheory(setup))


def test_dense_data_kernel_is_nonlocal_and_kept_factored():
    setup = build(load_config(EXAMPLES / "perceptron.toml"))
    theory = FieldTheory(setup)
    assert theory.local is None
    assert all(k.rank == setup.data.samples for k in theory.kernels)
    assert "nonlocal" in str(theory)


def test_quadratic_toy_prints_its_couplings():
    text = str(FieldTheory(build(load_config(EXAMPLES / "quadratic-toy.toml"))))
    assert "mass-like term of the last layer only: ½ (0.2)²" in text
    assert "1·w⁽¹⁾w⁽⁰⁾X (bilinear), 0.5·w⁽¹⁾(w⁽⁰⁾X)²" in text
