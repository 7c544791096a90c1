"""The input layer in the span of the data (``[continuum] input_layer = "data-span"``).

Measured: the linear perceptron of ``examples/perceptron.toml`` (RK4 at ``dt = 0.01``, or the
exact flow: the same figures) against the closed-form flow at ``t = ½`` on a lattice of width
301, 8/16/32 cells: P1 errors 1.31e-2 / 2.94e-3 / 7.16e-4 (order 2.10), P2 1.65e-3 / 2.36e-4 /
3.07e-5 (order 2.87); the
three-layer tanh network's data-span and tensor-product fields approach each other at the
P2 order (max distance 8.2e-4 / 8.3e-5 / 1.0e-5, order 3.15); the tensor-product
``W(t) − W(0)`` of a linear layer has numerical rank ``L``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
from mpi4py import MPI
from problems import observed_order
from test_perceptron_fem import smooth_problem

from continuum.app.convergence import with_width
from continuum.app.run import lattice_l2
from continuum.fem.spaces import FactorSpace, mass_matrix
from continuum.fields.perceptron import exact_solution
from continuum.models.limit import continuum_model
from continuum.settings import Config, load_config
from discrete.experiment import build
from discrete.expressions import parse_expression
from meshes import interval, unit_square

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def configured(name: str, t_end: float | None = None, **continuum) -> Config:
    config = load_config(EXAMPLES / f"{name}.toml")
    config = dataclasses.replace(
        config, continuum=dataclasses.replace(config.continuum, **continuum)
    )
    if t_end is not None:
        steps = round(t_end / config.training.dt)
        config = dataclasses.replace(
            config, training=dataclasses.replace(config.training, steps=steps)
        )
    return config


def solved(config: Config, width: int = 8):
    setup = build(with_width(config, width))
    model = continuum_model(setup, MPI.COMM_SELF)
    model.advance_to(setup.steps * setup.dt)
    return model


@pytest.mark.parametrize("integrator", ["matched", "exponential"])
@pytest.mark.parametrize(("degree", "band"), [(1, (1.8, 2.3)), (2, (2.6, 3.3))])
def test_perceptron_data_span_converges_to_the_closed_form_at_order_p_plus_one(
    degree, band, integrator
):
    t_end, width = 0.5, 301
    lattice = build(with_width(load_config(EXAMPLES / "perceptron.toml"), width)).convention
    x, y = lattice.layers[1].points[:, 0], lattice.layers[0].points[:, 0]
    w_exact, b_exact = exact_solution(smooth_problem(), t_end)
    w_ref, b_ref = w_exact(x[:, None], y[None, :]), b_exact(x)
    dx = lattice.layers[1].measure
    cells, errors = [8, 16, 32], []
    for c in cells:
        config = configured(
            "perceptron",
            t_end,
            scheme=integrator,
            input_layer="data-span",
            cells=c,
            degree=degree,
        )
        (w,), (b,) = solved(config).evaluate_lattice(lattice)
        errors.append(
            np.hypot(lattice_l2(w - w_ref, dx, dx), np.sqrt(np.sum(dx * (b - b_ref) ** 2)))
        )
    order = observed_order([1 / c for c in cells], errors)
    assert band[0] <= order <= band[1], (errors, order)


def test_deep_network_data_span_and_tensor_fields_share_one_limit():
    """Both are Galerkin discretisations of one field theory: their distance shrinks at the
    P2 order (the tensor one's interpolation of ``w^(0)(0)`` and its quadrature in ``y``
    are the only differences)."""
    lattice = build(with_width(load_config(EXAMPLES / "deep-tanh.toml"), 24)).convention
    cells, distances = [8, 16, 32], []
    for c in cells:
        span = solved(configured("deep-tanh", 0.5, input_layer="data-span", cells=c))
        tensor = solved(configured("deep-tanh", 0.5, input_layer="tensor", cells=c))
        (ws, bs), (wt, bt) = span.evaluate_lattice(lattice), tensor.evaluate_lattice(lattice)
        distances.append(
            max(float(np.abs(a - b).max()) for a, b in zip(ws + bs, wt + bt, strict=True))
        )
    order = observed_order([1 / c for c in cells], distances)
    assert 2.5 <= order <= 3.5, (distances, order)


def test_tensor_product_update_of_a_linear_layer_has_rank_L():
    """Under full-batch flow ``W(t) − W(0)`` lies in ``V_1 ⊗ span{M_0⁻¹ η^(0),l}``: rank ≤ L
    (the structure the data span exploits)."""
    config = configured("perceptron", 0.5, scheme="matched", input_layer="tensor", cells=16)
    model = solved(config)
    (w_end,), _ = model.galerkin.unpack(model.state.theta)
    model = continuum_model(build(with_width(config, 8)), MPI.COMM_SELF)
    (w_start,), _ = model.galerkin.unpack(model.state.theta)
    singular = np.linalg.svd(w_end - w_start, compute_uv=False)
    samples = config.data.samples
    assert singular[samples - 1] > 1e-3 * singular[0]
    assert singular[samples] < 1e-13 * singular[0], singular[: samples + 2]


def test_data_span_input_moments_are_the_gram_matrix_with_identity_riesz_image():
    model = continuum_model(
        build(with_width(configured("image-layer", input_layer="data-span"), 8)), MPI.COMM_SELF
    )
    g = model.galerkin
    np.testing.assert_allclose(g.eta0, g.spaces[0].mass, rtol=0, atol=1e-15)
    np.testing.assert_allclose(g.riesz0, np.eye(g.samples), rtol=0, atol=1e-13)
    assert g.shapes[0] == (g.spaces[1].size, g.samples)


@pytest.mark.parametrize("domain", [interval, unit_square])
@pytest.mark.parametrize("degree", [1, 2, 8])
def test_factor_space_mass_from_the_load_quadrature_equals_dolfinx_assembly(domain, degree):
    space = FactorSpace(domain(MPI.COMM_SELF, 5), degree)
    petsc = mass_matrix(space.V)
    indptr, indices, values = petsc.getValuesCSR()
    assembled = scipy.sparse.csr_matrix((values, indices, indptr), shape=petsc.getSize()).toarray()
    mine = space.mass if isinstance(space.mass, np.ndarray) else space.mass.toarray()
    difference = np.abs(mine - assembled).max()
    assert difference < 1e-14 * np.abs(assembled).max(), difference  # rounding: 1.8e-15 at p = 8


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        # samples that repeat one input function: the Gram matrix is singular
        ("sin(pi*y) + 0*l", "linearly dependent"),
        # a kink: the y-integrals converge only algebraically, never to rounding
        ("abs(y - 0.3) + l*y", "do not converge with 256 Gauss points"),
    ],
)
def test_inputs_the_data_span_cannot_represent_are_refused_by_name(inputs, message):
    config = configured("perceptron", scheme="matched", input_layer="data-span")
    expression = parse_expression(inputs, config.data.input.variables)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, input=expression))
    with pytest.raises(ValueError, match=message):
        continuum_model(build(with_width(config, 8)), MPI.COMM_SELF)


@pytest.mark.parametrize(
    ("name", "input_layer"),
    [("perceptron", "tensor"), ("perceptron", "data-span"), ("image-layer", "data-span")],
)
def test_linear_readout_in_coefficient_space_equals_the_quadrature_path(name, input_layer):
    """One layer, linear output: cost, Riesz gradient and loads from the affine residual
    ``P_h r = z + P_h f`` agree with the forward/backward quadrature path to rounding, for the
    full batch and for a minibatch."""
    config = configured(name, scheme="matched", input_layer=input_layer, cells=8)
    g = continuum_model(build(with_width(config, 8)), MPI.COMM_SELF).galerkin
    assert g._readout is not None
    theta = np.random.default_rng(3).standard_normal(g.size)
    for samples in (None, np.array([2, 0])):
        fast = g.backward(theta, samples)
        readout, g._readout = g._readout, None
        general = g.backward(theta, samples)
        g._readout = readout
        assert fast[0] == pytest.approx(general[0], rel=1e-12)
        for a, b in ((fast[1], general[1]), (fast[2][0], general[2][0])):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max())
