"""Dense or CSR operators of a factor space, chosen per product by one rule
(continuum/fem/spaces.py :func:`dense_is_faster`): both give the same numbers to rounding."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from continuum.fem import spaces
from continuum.fem.spaces import FactorSpace
from continuum.models.limit import continuum_model
from discrete.config import load_config
from discrete.experiment import build
from meshes import interval

ROOT = Path(__file__).resolve().parent.parent


def forced(monkeypatch, dense: bool) -> None:
    """Make the rule pick dense (a huge call overhead) or CSR (no speed-up, no overhead)."""
    monkeypatch.setattr(spaces, "GEMM_SPEEDUP", 1e9 if dense else 0.0)
    monkeypatch.setattr(spaces, "CALL_OVERHEAD", 1e18 if dense else 0.0)


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize(("degree", "cells"), [(5, 4), (2, 64)])
@pytest.mark.parametrize("columns", [1, 256])
def test_dense_and_csr_products_agree_to_rounding(monkeypatch, degree, cells, columns):
    rng = np.random.default_rng(3)
    results = []
    for dense in (True, False):
        forced(monkeypatch, dense)
        space = FactorSpace(interval(MPI.COMM_SELF, cells), degree, 2 * degree + 6)
        assert space.dense_products(columns) == (dense, dense)
        u = rng.random((space.size, columns)) - 0.5
        f = rng.random((len(space.quadrature_weights), columns)) - 0.5
        results.append([space.at_quadrature(u), space.load(f), *space.moments(f)])
        rng = np.random.default_rng(3)
    for a, b in zip(*results, strict=True):
        assert relative(a, b) < 1e-13


def test_the_rule_picks_dense_on_a_few_cells_and_csr_on_many_cells_for_a_full_batch():
    """P8 on 4 cells (52 × 33 tabulation, 468 non-zeros): dense for one column and for 256
    (measured 1.3 / 17 µs dense against 3.6 / 25 µs CSR); P2 on 64 cells (448 × 129, 1344
    non-zeros): CSR for 256 columns (measured 624 µs dense against 75 µs CSR;
    benchmarks/README.md "FEM cost per gradient")."""
    few = FactorSpace(interval(MPI.COMM_SELF, 4), 8, 24)
    many = FactorSpace(interval(MPI.COMM_SELF, 64), 2, 8)
    assert few.dense_products(1) == few.dense_products(256) == (True, True)
    assert many.dense_products(256) == (False, False)


def test_a_gradient_of_256_samples_is_the_same_with_dense_and_csr_operators(monkeypatch):
    """The deep-tanh network with 256 samples, P4 on 4 cells: cost and Riesz gradient at the
    initial fields agree to 1e-13 relative whichever operators run."""
    config = load_config(ROOT / "examples/deep-tanh.toml")
    config = dataclasses.replace(
        config,
        continuum=dataclasses.replace(config.continuum, cells=4, degree=4),
    ).replace(
        data={
            "samples": 256,
            "input": "sin(pi*(1 + l/128)*y + l) + 0.5",
            "target": "0.5*cos(pi*(1 + l/256)*x + l)",
        }
    )
    values = []
    for dense in (True, False):
        forced(monkeypatch, dense)
        model = continuum_model(build(config), MPI.COMM_SELF)
        cost, grad = model.galerkin.gradient(model.state.theta)
        values.append(np.concatenate([[cost], grad]))
    assert relative(values[0], values[1]) < 1e-13
