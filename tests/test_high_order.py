"""High order: GLL Lagrange elements up to degree 8, the converged Gauss rule of the Galerkin
fields, and exponential p-convergence on a fixed mesh (docs/physics.md "Continuum",
docs/convergence.md)."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from continuum.app.pconvergence import p_convergence_study
from continuum.fem.quadrature import QUADRATURE_TOLERANCE, with_quadrature
from continuum.fem.spaces import FactorSpace
from continuum.models.limit import continuum_model
from continuum.settings import load_config
from discrete.experiment import build
from meshes import interval, unit_square

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SYNFIELD = Path(sys.executable).parent / "synfield"


def small(name: str, cells: int, t_end: float, **continuum):
    """An example on ``cells`` cells, trained to ``t_end``, with ``[continuum]`` overrides."""
    config = load_config(EXAMPLES / f"{name}.toml")
    return dataclasses.replace(
        config,
        continuum=dataclasses.replace(config.continuum, cells=cells, **continuum),
        training=dataclasses.replace(config.training, steps=round(t_end / config.training.dt)),
    )


def gauss_lobatto(p: int) -> np.ndarray:
    """The p + 1 Gauss–Lobatto–Legendre points of [0, 1]: the ends and the roots of P_p'."""
    interior = np.polynomial.legendre.Legendre.basis(p).deriv().roots()
    return np.sort(np.concatenate([[-1.0, 1.0], interior]) + 1.0) / 2.0


@pytest.mark.parametrize("degree", [3, 8])
def test_factor_space_nodes_are_gauss_lobatto_points_on_every_cell(degree):
    cells = 3
    space = FactorSpace(interval(MPI.COMM_SELF, cells), degree)
    expected = np.unique((np.arange(cells)[:, None] + gauss_lobatto(degree)[None, :]) / cells)
    np.testing.assert_allclose(np.sort(space.dof_coordinates[:, 0]), expected, atol=1e-14)


def test_degree_eight_on_quadrilaterals_reproduces_polynomials_of_degree_eight():
    """Interpolation and point evaluation of ``x⁸ y⁷ − 3 x² y⁸`` in Q8 on a 3 × 3 mesh are exact
    at random points: the dofmap and the tabulated reference basis agree on every edge."""
    space = FactorSpace(unit_square(MPI.COMM_SELF, 3), 8)

    def f(p):
        return p[:, 0] ** 8 * p[:, 1] ** 7 - 3 * p[:, 0] ** 2 * p[:, 1] ** 8

    points = np.random.default_rng(7).random((50, 2))
    values = space.evaluation_matrix(points) @ space.interpolate(f)
    np.testing.assert_allclose(values, f(points), rtol=0, atol=1e-12)
    quadrature = space.at_quadrature(space.interpolate(f))
    np.testing.assert_allclose(quadrature, f(space.quadrature_points), rtol=0, atol=1e-12)


def initial_values(model, quadrature_degree: int) -> np.ndarray:
    """The cost and Riesz gradient at the initial coefficients of ``model``'s fields rebuilt
    with the Gauss rule of ``quadrature_degree``, as one vector."""
    from continuum.models.limit import data_function

    g, cfg, conv = model.galerkin, model.setup.config, model.setup.convention
    fields = type(g)(
        g.network,
        with_quadrature(g.spaces, quadrature_degree),
        data_function(cfg.data.input, conv.layers[0], "y"),
        data_function(cfg.data.target, conv.layers[-1], "x"),
        g.samples,
    )
    cost, grad = fields.gradient(g.interpolate(model._weight_init(), model._bias_init()))
    return np.concatenate([[cost], grad])


def relative_change(model, q: int, other: int) -> float:
    a, b = initial_values(model, q), initial_values(model, other)
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("degree", [1, 4])
def test_chosen_gauss_rule_agrees_with_a_much_finer_one(degree):
    """The rule kept is raised above ``2p + 2`` (tanh is not a polynomial) and its cost and
    gradient agree with those of a rule 12 degrees finer to 10× the check's tolerance."""
    model = continuum_model(build(small("deep-tanh", 8, 0.02, degree=degree)), MPI.COMM_SELF)
    q = model.spaces[0].quadrature_degree
    assert q > 2 * degree + 2
    change = relative_change(model, q, q + 12)
    assert change < 10 * QUADRATURE_TOLERANCE, (q, change)


def test_default_rule_is_not_converged_where_the_check_raises_it():
    """The check matters: on 8 cells at p = 1 the rule ``2p + 2`` differs from a fine one by
    more than 1000× the tolerance."""
    model = continuum_model(build(small("deep-tanh", 8, 0.02, degree=1)), MPI.COMM_SELF)
    assert relative_change(model, 4, 30) > 1e3 * QUADRATURE_TOLERANCE


def test_relu_keeps_the_default_rule():
    config = small("deep-tanh", 8, 0.02, degree=3)
    config = dataclasses.replace(
        config, network=dataclasses.replace(config.network, activation="relu")
    )
    model = continuum_model(build(config), MPI.COMM_SELF)
    assert [s.quadrature_degree for s in model.spaces] == [8] * 4


@pytest.mark.parametrize(
    ("name", "cells", "t_end", "rate", "bound"),
    [
        # measured: rate 2.98, e(8) = 2.9e-11, reference error ≈ 1e-13
        ("perceptron", 8, 1.0, (2.6, 3.4), 1e-10),
        # measured: rate 3.30, e(8) = 1.6e-12, reference error ≈ 2e-15
        ("deep-tanh", 8, 0.2, (2.9, 3.7), 1e-10),
    ],
)
def test_errors_fall_exponentially_in_p_on_a_fixed_mesh(name, cells, t_end, rate, bound):
    """Degrees 1 … 8 with the training rule's own RK4 (scheme = "matched") against
    degree 10: the fitted rate of ``e ≈ C exp(−r p)`` lies in the band, every degree improves
    on the last, the error at p = 8 is below the bound and the reference's estimated own
    error is below 1 % of it."""
    config = small(name, cells, t_end, scheme="matched")
    r = p_convergence_study(config, list(range(1, 9)), MPI.COMM_SELF)
    assert rate[0] <= r["fitted_rate"] <= rate[1], r
    assert all(a > b for a, b in zip(r["errors"], r["errors"][1:], strict=False)), r
    assert r["errors"][-1] < bound, r
    assert r["reference_error_estimate"] < 0.01 * r["errors"][-1], r


def test_p_convergence_with_index_layers_keeps_their_points():
    """The digits classifier (index input and output layers, 40 training rows, t = 0.1) on
    32 cells, degrees 1 … 6 against degree 8: the index layers' fields are compared at their
    own points (measured rate 2.77, e(6) = 3.1e-8, reference error ≈ 5e-11)."""
    config = small("digits", 32, 0.1)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, samples=60, test=20))
    r = p_convergence_study(config, list(range(1, 7)), MPI.COMM_SELF)
    assert 2.4 <= r["fitted_rate"] <= 3.1, r
    assert all(a > b for a, b in zip(r["errors"], r["errors"][1:], strict=False)), r
    assert r["errors"][-1] < 1e-7, r
    assert r["reference_error_estimate"] < 0.01 * r["errors"][-1], r


def test_implicit_perceptron_solver_converges_exponentially_in_p():
    """The row-decoupled θ-method solver (Crank–Nicolson) of the perceptron, GLL elements of
    degree 2, 4, 6, 8 on 8 cells against degree 10 (measured rate 3.09, e(8) = 2.9e-11)."""
    r = p_convergence_study(small("perceptron", 8, 1.0), [2, 4, 6, 8], MPI.COMM_SELF)
    assert 2.7 <= r["fitted_rate"] <= 3.5, r
    assert r["errors"][-1] < 1e-10, r


def test_converge_prints_the_p_convergence_in_json(tmp_path):
    text = (EXAMPLES / "deep-tanh.toml").read_text()
    text = text.replace("t_end = 1.0", "t_end = 0.1")  # the mesh (64 cells) set by --cells
    path = tmp_path / "small.toml"
    path.write_text(text)
    proc = subprocess.run(
        [str(SYNFIELD), "converge", str(path), "--degrees", *"2345", "--cells", "4", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["degrees"] == [2, 3, 4, 5] and result["reference_degree"] == 7
    assert result["cells"] == 4
    assert result["rates"][0] is None
    assert all(rate > 1.5 for rate in result["rates"][1:]), result
    assert result["errors"][-1] < 1e-5, result
    refused = subprocess.run(
        [str(SYNFIELD), "converge", str(path), "--degrees", "2", "23", "4"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 2  # a usage error (rc 1 before)
    assert (
        "--degrees: p-convergence needs at least three degrees of 1 … 22 (the reference has "
        "degree max(p) + 2 ≤ 24), got 2 4 23" in refused.stderr
    )


@pytest.mark.mpi
def test_two_ranks_give_the_p_convergence_of_one_rank():
    """The Gauss rule is chosen from the change over all ranks, so both ranks keep the same
    rule; errors of degrees 4 … 6 (against 8) agree with one rank's to 1e-10 relative."""
    comm = MPI.COMM_WORLD
    assert comm.size == 2, "run this test under mpiexec -n 2"
    config = small("deep-tanh", 4, 0.1)
    one, two = (p_convergence_study(config, [4, 5, 6], c)["errors"] for c in (MPI.COMM_SELF, comm))
    np.testing.assert_allclose(two, one, rtol=1e-10, atol=0)
