"""The quadrature check's record (continuum/fem/quadrature.py): fields built again from the same
inputs get the verified Gauss rule without the check; other fields are checked afresh, and an
inexact rule is still refused."""

from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from continuum.fem import quadrature
from continuum.models.limit import continuum_model
from continuum.settings import load_config
from discrete.experiment import build

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def empty_record(monkeypatch):
    """A fresh record for one test (the process's record is left as it was)."""
    monkeypatch.setattr(quadrature, "VERIFIED_RULES", {})
    return quadrature.VERIFIED_RULES


def deep_tanh(weight: str | None = None):
    config = load_config(ROOT / "examples/deep-tanh.toml").replace(
        training={"steps": 1}, continuum={"cells": 8, "degree": 2}
    )
    return config if weight is None else config.replace(init={"weight": weight})


def test_fields_built_again_get_the_verified_rule_without_the_check(empty_record, monkeypatch):
    """The second model of the same config skips the check (its value function is never
    called) and has the same rule, and its initial cost and gradient agree exactly."""
    first = continuum_model(build(deep_tanh()), MPI.COMM_SELF)
    q = first.spaces[0].quadrature_degree
    assert q > 2 * 2 + 2  # tanh: the check raised the rule
    assert list(empty_record.values()) == [q]

    def no_check(*args):
        raise AssertionError("the check ran again for fields it has verified")

    monkeypatch.setattr(quadrature, "_values", no_check)
    second = continuum_model(build(deep_tanh()), MPI.COMM_SELF)
    assert [s.quadrature_degree for s in second.spaces] == [q] * 4
    a = first.galerkin.gradient(first.state.theta)
    b = second.galerkin.gradient(second.state.theta)
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])


def test_other_initial_fields_are_checked_afresh(empty_record):
    """A steeper initial weight field (same network, degree, mesh and data) needs a finer rule
    than the one recorded; it gets the rule the check chooses with an empty record."""
    steep = "3*cos(pi*(x - y))"
    alone = continuum_model(build(deep_tanh(steep)), MPI.COMM_SELF).spaces[0].quadrature_degree
    empty_record.clear()
    smooth = continuum_model(build(deep_tanh()), MPI.COMM_SELF).spaces[0].quadrature_degree
    after = continuum_model(build(deep_tanh(steep)), MPI.COMM_SELF).spaces[0].quadrature_degree
    assert after == alone > smooth
    assert len(empty_record) == 2


class NeverConverging:
    """Fields whose cost changes by ``1/q − 1/(q + 2)`` with every raise of the rule."""

    comm = MPI.COMM_SELF

    def __init__(self, q: int):
        self.q = q
        self.spaces: list = []

    def gradient(self, theta):
        return 1.0 / self.q, theta


def test_an_inexact_rule_is_refused_and_not_recorded(empty_record):
    for _ in range(2):
        with pytest.raises(ValueError, match=r"\[continuum\] degree = 2"):
            quadrature.converged_quadrature(
                NeverConverging, lambda f: np.ones(3), 2, smooth=True, fingerprint="key"
            )
    assert empty_record == {}
