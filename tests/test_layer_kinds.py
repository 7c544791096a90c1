"""Layer kinds in series (continuum/fields/layers): a network of dense and banded layers, its
dense layers as product fields and its banded one as unit-cell fields, has a continuum.

Each kind's discrete layer (forward, backward, force) approaches the closed-form limit of its
continuum layer at the kind's order (dense 2.00, unit-cell 0.99–1.00 from N = 16, 32, 64; the
dense force has no width error, 2e-5 from the FE projection), and its continuum backward is
the adjoint of its forward to rounding.

Measured (tanh, dense → banded → dense on a circle, t = 0.5, degree 2 on 32 cells): the
distance of the network of width N from its continuum is 3.2e-2, 1.5e-2, 7.2e-3 at N = 32,
64, 128 (successive orders 1.13, 1.03: the unit-cell layer's first order, docs/physics.md
"Layer kinds in series"); the gradient equals a central difference of the cost to 3.8e-6,
3.8e-8, 3.4e-10 relative at ε = 1e-3, 1e-4, 1e-5 (the difference's O(ε²)); the factored RK4
equals the generic one to 8.5e-17 relative after three steps.
"""

from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from continuum import parse_config
from continuum.app.convergence import convergence_study
from continuum.fem.spaces import FactorSpace
from continuum.fields.energy import continuum_energy_balance
from continuum.fields.galerkin import GalerkinNetwork
from continuum.fields.layers import DenseLayer, UnitCellLayer
from continuum.models.limit import continuum_model
from continuum.schemes.factored_flow import FactoredFlow
from discrete.config import ConfigError
from discrete.conventions import layer_coordinates
from discrete.experiment import build
from discrete.network import Banded, Dense, Layer
from discrete.training import Flow
from meshes import interval

MIXED = """
[network]
widths = [{N}, {N}, {N}, {N}]
activation = "tanh"
connectivity = ["dense", "banded", "dense"]
offsets = [0, 1]
ends = "periodic"
[coordinates]
placement = "periodic"
weights = ["product", "unit-cell", "product"]
[data]
samples = 3
input = "sin(2*pi*(l+1)*y) + 0.5"
target = "0.5*cos(2*pi*(l+1)*x)"
[init]
weight = "0.8*cos(2*pi*(x - y)) + 0.3 + 0.2*sin(2*pi*y)"
bias = "0.1*sin(2*pi*x)"
[training]
rule = "flow"
dt = 0.02
t_end = {t_end}
[continuum]
cells = {cells}
degree = 2
{extra}
"""


def mixed(N: int = 16, t_end: float = 0.5, cells: int = 32, extra: str = ""):
    return parse_config(MIXED.format(N=N, t_end=t_end, cells=cells, extra=extra))


def galerkin_of(config, comm: MPI.Comm = MPI.COMM_SELF) -> tuple[GalerkinNetwork, object]:
    model = continuum_model(build(config), comm)
    return model.galerkin, model


SPACE = FactorSpace(interval(MPI.COMM_SELF, 16), 2)
"""One P2 space on 16 cells, input and output of both kinds."""

KIND_LIMITS = {
    # kind, connectivity, placement, w(x, y), h, the limit K[h] = K*[h], the order in 1/N of
    # the forward and backward, that of the force (None: no width error, the FE error alone)
    "dense": (
        DenseLayer,
        Dense(),
        "cell",
        lambda x, y: x * y + 1.0,  # symmetric: ∫ w(x, y) h(x) dx = ∫ w(y, x) h(x) dx
        np.exp,
        lambda x: x + np.e - 1.0,  # ∫ (x y + 1) e^y dy
        2.0,
        None,
    ),
    "unit-cell": (
        UnitCellLayer,
        Banded((0, 1)),
        "periodic",
        lambda x, y: 1.0 + 0.5 * np.sin(2 * np.pi * y) + 0.0 * x,
        lambda y: np.cos(2 * np.pi * y),
        lambda x: 2.0 * (1.0 + 0.5 * np.sin(2 * np.pi * x)) * np.cos(2 * np.pi * x),  # Σ_s w_s h
        1.0,
        1.0,
    ),
}


def successive_orders(errors: list[float]) -> np.ndarray:
    """``log2(e(N)/e(2N))`` of errors at doubling widths."""
    return np.log2(np.array(errors[:-1]) / np.array(errors[1:]))


@pytest.mark.parametrize("name", list(KIND_LIMITS))
def test_each_kind_has_the_limit_of_its_discrete_layer(name):
    """A kind's two halves share one limit.  At the lattice of width N (the convention's
    ``W``), the discrete forward ``Σ_j W_ij h_j`` and backward ``(1/Δy_j) Σ_i W_ij Δx_i h_i``
    approach the closed form ``K[h]`` at the kind's order (dense: the midpoint rule, 2;
    unit-cell: the shift s·a, 1), and the discrete force ``d_i h_j`` (``d = δ``) the continuum
    force ``R Sᵀ`` at the lattice (dense: equal up to the FE error; unit-cell: order 1).  The
    continuum forward on P2 fields is within the FE error of ``K[h]``, and the continuum
    backward is its adjoint, ``∫ K[h] δ dx = ∫ h K*[δ] dy``, to rounding."""
    kind, connectivity, placement, w, h, limit, order, force_order = KIND_LIMITS[name]
    xq = SPACE.quadrature_points[:, 0]
    delta_q = np.exp(xq)[:, None]
    errors: dict[str, list[float]] = {"forward": [], "backward": [], "force": []}
    for N in (16, 32, 64):
        layer = Layer.build(N, N, connectivity)
        c = layer_coordinates(N, placement)
        x, dx = c.points[:, 0], c.measure
        full = w(x[:, None], x[None, :])
        if layer.banded:
            W = full[np.arange(N)[:, None], layer.columns]  # W_is = w(x_i, y_{i+s})
        else:
            W = dx[None, :] * full  # W_ij = Δy_j w(x_i, y_j)
        fields = kind(layer, SPACE, SPACE, MPI.COMM_SELF)
        z = fields.discrete_forward(W, h(x)[None, :])[0]
        back = fields.discrete_backward(W, (dx * h(x))[None, :])[0] / dx
        for key, value in (("forward", z), ("backward", back)):
            errors[key].append(float(np.sqrt(np.sum(dx * (value - limit(x)) ** 2))))
        inputs = fields.inputs(h(xq)[:, None], True)
        R, S = fields.force(inputs, delta_q, SPACE.moments(delta_q)[1], 1)
        E = SPACE.evaluation_matrix(c.points)
        discrete = fields.discrete_force(np.exp(x)[None, :], h(x)[None, :])
        errors["force"].append(float(np.abs(fields.lattice_values(R @ S.T, E, E) - discrete).max()))
    for key in ("forward", "backward"):
        assert np.all(np.abs(successive_orders(errors[key]) - order) <= 0.1), errors
    if force_order is None:
        assert max(errors["force"]) <= 1e-4, errors
    else:
        assert np.all(np.abs(successive_orders(errors["force"]) - force_order) <= 0.1), errors
    coefficients = fields.interpolate(lambda xs, ys: w(xs[:, :1], ys[None, :, 0]))
    samples = np.column_stack([h(xq), h(xq) * xq])  # two samples
    zq = fields.forward(coefficients, fields.inputs(samples, False), np.zeros(SPACE.size), None)
    assert np.abs(zq[:, 0] - limit(xq)).max() <= 1e-3
    delta = np.column_stack([np.sin(3 * xq), np.exp(xq)])
    back_q = fields.backward(coefficients, delta, SPACE.load(delta), None)
    forward_pairing = SPACE.integrate(zq * delta)
    np.testing.assert_allclose(SPACE.integrate(samples * back_q), forward_pairing, rtol=1e-13)


def test_the_series_holds_a_kind_per_layer():
    g, _ = galerkin_of(mixed(cells=8))
    assert [type(layer) for layer in g.layers] == [DenseLayer, UnitCellLayer, DenseLayer]
    n = g.spaces[0].size
    assert g.shapes == [(n, n), (n, 2), (n, n)]


def test_mixed_network_reaches_its_continuum_at_first_order():
    """The banded unit-cell layer drops the input shift s·a: order 1 in 1/N, measured on
    successive widths in the asymptotic range (the dense layers alone would give more)."""
    r = convergence_study(mixed(), [32, 64, 128], [2])["degrees"]["2"]
    assert not r["mesh_limited"], r
    for order in r["orders"][1:]:
        assert 0.8 <= order <= 1.2, r
    assert 0.8 <= r["fitted_order"] <= 1.2, r


def test_data_span_input_layer_of_a_mixed_network():
    """A dense first layer in the span of the data (``[continuum] input_layer = "data-span"``,
    exact in ``y``) before a unit-cell layer: the tensor-space continuum approaches it at the
    FE order as the cells double (measured 1.2e-3, 2.2e-4, 3.6e-5 at 8, 16, 32 cells: orders
    2.47, 2.62, towards the P2 rate 3)."""
    differences = []
    for cells in (8, 16, 32):
        fields = []
        for layer in ("tensor", "data-span"):
            config = mixed(N=16, t_end=0.2, cells=cells, extra=f'input_layer = "{layer}"')
            model = continuum_model(build(config), MPI.COMM_SELF)
            model.advance_to(0.2)
            w, b = model.lattice_fields()
            fields.append(w + b)
        differences.append(max(np.abs(a - b).max() for a, b in zip(*fields, strict=True)))
    orders = successive_orders(differences)
    assert np.all((orders >= 2.2) & (orders <= 3.3)), differences


def mass_pairing(g: GalerkinNetwork, grad: np.ndarray, v: np.ndarray) -> float:
    """``⟨G, V⟩`` in the L2 inner product of the fields: the derivative of ``C`` along ``V``
    when ``G`` is the Riesz gradient (dense: ``tr(Gᵀ M_x V M_y)``, unit-cell: ``Σ_s g_sᵀ M v_s``,
    biases ``g_bᵀ M v_b``)."""
    total = 0.0
    for m, layer in enumerate(g.layers):
        Mx = g.spaces[m + 1].mass
        G, V = g.W(grad, m), g.W(v, m)
        if isinstance(layer, DenseLayer):
            total += float(np.sum((Mx @ G) * (V @ g.spaces[m].mass.T)))
        else:
            total += float(np.sum((Mx @ G) * V))
        total += float(g.b(grad, m) @ (Mx @ g.b(v, m)))
    return total


def test_gradient_of_the_series_is_the_derivative_of_its_cost():
    """``dC(θ + εV)/dε`` by a central difference against the Riesz gradient paired in L2:
    the difference error is ``O(ε²)`` (``ε = 1e-5``: below 1e-8 relative)."""
    g, model = galerkin_of(mixed(N=16, cells=8))
    theta = model.state.theta
    v = np.random.default_rng(3).standard_normal(theta.size)
    eps = 1e-5
    cost, grad = g.gradient(theta)
    assert cost == pytest.approx(g.value(theta), rel=1e-13)
    difference = (g.value(theta + eps * v) - g.value(theta - eps * v)) / (2 * eps)
    assert abs(difference - mass_pairing(g, grad, v)) <= 1e-8 * abs(difference)


def test_factored_rk4_is_the_rk4_of_the_mixed_flow():
    """Three steps of the factored RK4 (unit-cell forces as (R, 1_S)) equal the generic RK4."""
    g, model = galerkin_of(mixed(N=16, cells=8))
    rates = model.setup.dictionary.continuum_rates()
    generic = Flow(g, g.per_group(rates), model.setup.dt)
    factored = FactoredFlow(g, rates, model.setup.dt)
    a = b = model.state
    for _ in range(3):
        a, b = generic.step(a), factored.step(b)
    assert np.abs(a.theta - model.state.theta).max() > 1e-3  # the fields moved
    assert np.abs(b.theta - a.theta).max() <= 1e-13 * np.abs(a.theta).max()


@pytest.mark.mpi
@pytest.mark.parametrize(
    ("distribute", "input_layer"),
    [("rows", "tensor"), ("samples", "tensor"), ("rows", "data-span")],
)
def test_two_ranks_give_the_mixed_fields_of_one_rank(distribute, input_layer):
    """The continuum of the mixed network on two ranks (rows of every layer, unit-cell rows
    too, or samples split) equals one rank's to 1e-10, by the generic and the factored RK4."""
    comm = MPI.COMM_WORLD
    assert comm.size == 2, "run this test under mpiexec -n 2"
    extra = f'distribute = "{distribute}"\ninput_layer = "{input_layer}"'
    config = mixed(N=16, t_end=0.1, cells=8, extra=extra)
    fields = []
    for c in (comm, MPI.COMM_SELF):
        g, model = galerkin_of(config, c)
        assert g.distribution == distribute
        model.advance_to(0.1)
        flow = FactoredFlow(g, model.setup.dictionary.continuum_rates(), model.setup.dt)
        factored = flow.step(model.state)
        fields.append((model.lattice_fields(), g.unpack(factored.theta)))
    (w2, b2), (fw2, fb2) = fields[0]
    (w1, b1), (fw1, fb1) = fields[1]
    for a, b in zip([*w2, *b2, *fw2, *fb2], [*w1, *b1, *fw1, *fb1], strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            MIXED.replace(
                '["product", "unit-cell", "product"]', '["product", "product", "unit-cell"]'
            ),
            "[coordinates] weights: weight layer 1 is banded ([network] connectivity) and needs "
            '"unit-cell" or "linear", got "product"',
        ),
        (
            MIXED.replace('"unit-cell", "product"]', '"unit-cell"]'),
            "[coordinates] weights: expected one of",
        ),
        (
            MIXED.replace("widths = [{N}, {N}, {N}, {N}]", "widths = [{N}, {N}, 12, {N}]"),
            "[coordinates] weights: the unit-cell layer 1 maps a field to one on the same "
            "domain, but [network] widths[1:3] = [16, 12]",
        ),
    ],
    ids=["banded-product", "wrong-length", "unequal-widths"],
)
def test_hostile_series_are_refused_at_load(text, message):
    with pytest.raises(ConfigError) as error:
        parse_config(text.format(N=16, t_end=0.5, cells=8, extra=""))
    assert message in str(error.value)


def test_the_energy_balance_of_a_series_with_a_unit_cell_layer_is_refused():
    """Its flux pairs loads with ``ż ∈ V``; a unit-cell layer's ``ż`` is not in ``V``."""
    g, model = galerkin_of(mixed(cells=8))
    theta = model.state.theta
    with pytest.raises(ValueError, match="weight layer 1 is a unit-cell layer, not a dense one"):
        continuum_energy_balance(g, theta, np.ones_like(theta), g.per_group([(1.0, 1.0)] * 3), 0.5)
