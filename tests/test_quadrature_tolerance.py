"""``[continuum] quadrature_tolerance`` (continuum/fem/quadrature.py): a Gauss rule as exact as
the FE error needs.  With the tolerance ``τ`` far below the FE error the rule is coarser and
the fields move by ``O(τ)`` relative, so the FE error is unchanged to ``τ``."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from continuum.fem import quadrature
from continuum.models.limit import continuum_model
from continuum.settings import load_config, parse_config
from discrete.config import ConfigError
from discrete.experiment import build

ROOT = Path(__file__).resolve().parent.parent


def deep_tanh(degree: int, tolerance: float = 1e-12):
    """The 3-layer tanh example on 2 cells, to t = 0.2 with the networks' RK4."""
    config = load_config(ROOT / "examples/deep-tanh.toml")
    return dataclasses.replace(
        config,
        continuum=dataclasses.replace(
            config.continuum,
            cells=2,
            degree=degree,
            scheme="matched",
            quadrature_tolerance=tolerance,
        ),
        training=dataclasses.replace(config.training, steps=round(0.2 / config.training.dt)),
    )


def solved_fields(config) -> tuple[np.ndarray, int]:
    """All weight and bias fields at ``t_end`` on the network's lattice (width 32), and the
    Gauss rule's degree."""
    setup = build(config)
    model = continuum_model(setup, MPI.COMM_SELF)
    model.advance_to(setup.steps * setup.dt)
    w, b = model.evaluate_lattice(setup.convention)
    values = np.concatenate([np.ravel(a) for a in [*w, *b]])
    return values, model.spaces[1].quadrature_degree


@pytest.mark.parametrize("tolerance", [1e-7, 1e-5])
def test_fe_error_is_unchanged_to_the_quadrature_tolerance(tolerance):
    """P3 on 2 cells (FE error 2.2e-3 against P9): with τ = 1e-7 / 1e-5 the rule falls from
    q = 20 to 14 / 10, the fields move by 9.5e-11 / 6.5e-8 relative (measured) and the FE error
    by 3.4e-12 / 1.0e-9: both within 3τ."""
    reference, _ = solved_fields(deep_tanh(9))
    exact, q_exact = solved_fields(deep_tanh(3))
    coarse, q_coarse = solved_fields(deep_tanh(3, tolerance))
    scale = np.linalg.norm(reference)
    error_exact = np.linalg.norm(exact - reference) / scale
    error_coarse = np.linalg.norm(coarse - reference) / scale
    assert q_coarse < q_exact, (q_coarse, q_exact)
    assert error_exact > 100 * tolerance, error_exact  # the FE error dominates the rule's
    assert np.linalg.norm(coarse - exact) / np.linalg.norm(exact) <= 3 * tolerance
    assert abs(error_coarse - error_exact) <= 3 * tolerance, (error_coarse, error_exact)


def test_the_record_keeps_one_rule_per_tolerance(monkeypatch):
    """Equal fields checked to two tolerances are two entries of the record, with the rules the
    check chose for each."""
    monkeypatch.setattr(quadrature, "VERIFIED_RULES", {})
    rules = {}
    for tolerance in (1e-12, 1e-5, 1e-12):
        setup = build(deep_tanh(3, tolerance))
        rules[tolerance] = continuum_model(setup, MPI.COMM_SELF).spaces[1].quadrature_degree
    assert sorted(quadrature.VERIFIED_RULES.values()) == [rules[1e-5], rules[1e-12]]
    assert rules[1e-5] < rules[1e-12]


@pytest.mark.parametrize("value", ["1e-16", "0.01", "-1e-8"])
def test_a_tolerance_outside_its_bounds_is_refused(value):
    text = (ROOT / "examples/deep-tanh.toml").read_text()
    text = text.replace("[continuum]", f"[continuum]\nquadrature_tolerance = {value}", 1)
    with pytest.raises(ConfigError, match=r"\[continuum\] quadrature_tolerance"):
        parse_config(text)
