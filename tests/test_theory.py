"""The printed field theory: local coefficients from the gradient expansion, couplings."""

import dataclasses
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from continuum.models.theory import FieldTheory
from continuum.settings import load_config
from discrete.cost import Cost
from discrete.experiment import build
from discrete.locality import local_coefficients, weight_band

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
    """Toy 1 of docs/toy-models.md: k_{2i} = −Δx⟨X_i X_{i+1}⟩ < 0 for positively correlated inputs,
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


def with_widths(name: str, widths: tuple[int, ...], **data):
    config = load_config(EXAMPLES / f"{name}.toml")
    return build(
        dataclasses.replace(
            config,
            network=dataclasses.replace(config.network, widths=widths),
            data=dataclasses.replace(config.data, **data),
        )
    )


def dense_hessian(cost) -> np.ndarray:
    """The weight Hessian column by column, ``H e_k = ∇C(e_k) − ∇C(0)`` (the O(n²) way)."""
    P = cost.network.params
    index = P.W(np.arange(P.size), 0).ravel()
    g0 = cost.gradient(P.zeros())[1][index]
    H = np.empty((index.size, index.size))
    for col, k in enumerate(index):
        e = P.zeros()
        e[k] = 1.0
        H[:, col] = cost.gradient(e)[1][index] - g0
    return 0.5 * (H + H.T)


@pytest.mark.parametrize(
    ("name", "widths", "periodic"),
    [
        ("goldstein", (17, 1), True),
        ("klein-gordon", (16, 1), False),
        ("toy-banded", None, False),
        ("perceptron", (16, 1), False),
    ],
)
def test_the_band_agrees_with_the_dense_hessian(name, widths, periodic):
    setup = build(load_config(EXAMPLES / f"{name}.toml")) if widths is None else None
    setup = setup or with_widths(name, widths)
    H = dense_hessian(setup.cost)
    n = len(H)
    band = weight_band(setup.cost, periodic)
    distance = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    if periodic:
        distance = np.minimum(distance, n - distance)
    banded = np.abs(H[distance >= 2]).max() <= 1e-10 * np.abs(H).max()
    assert (band is not None) == banded
    if band is not None:
        diagonal, off, _, _ = band
        bonds = np.arange(n if periodic else n - 1)
        np.testing.assert_allclose(diagonal, np.diag(H), rtol=1e-13, atol=1e-13 * abs(H).max())
        np.testing.assert_allclose(
            off[bonds], H[bonds, (bonds + 1) % n], rtol=1e-13, atol=1e-13 * abs(H).max()
        )


def test_a_coupling_beyond_the_band_is_detected():
    """Goldstein's probes plus one sample linking sites 3 and 5 (distance 2): not local."""
    setup = with_widths("goldstein", (12, 1))
    X = setup.data.X.copy()
    X[3, 5] += 0.3 * X[3, 3]  # the bond (3, 4) probe now reaches site 5
    data = dataclasses.replace(setup.data, X=X)
    cost = Cost(setup.network, data, setup.convention.layers[-1].measure)
    assert weight_band(setup.cost, periodic=True) is not None
    assert weight_band(cost, periodic=True) is None


@pytest.mark.parametrize(
    ("name", "N", "local"), [("perceptron", 20000, False), ("goldstein", 2048, True)]
)
def test_the_theory_of_a_wide_layer_is_found_without_a_dense_hessian(name, N, local):
    """[20000, 1]: a dense Hessian would take 3.2 GB; Goldstein N = 2048: 2048 gradients.
    The band costs seven gradients and O(N) memory."""
    setup = with_widths(name, (N, 1))
    tracemalloc.start()
    start = time.perf_counter()
    theory = FieldTheory(setup)
    text = str(theory)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert (theory.local is not None) == local
    assert ("local theory" in text) == local
    assert peak < 64 * N * 8 + 20 * setup.data.X.nbytes  # O(N) vectors and a few data copies
    assert elapsed < 20
