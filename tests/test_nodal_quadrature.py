"""Nodal quadrature (``[continuum] quadrature = "nodal"``, docs/convergence.md "Nodal
quadrature"): the Gauss–Lobatto–Legendre rule at the element's nodes, the Galerkin fields on it
as a Nyström network, their exponential p-convergence to the Gauss fields' limit, MPI, the
refusals and a run."""

import itertools

import h5py
import numpy as np
import pytest
from mpi4py import MPI

from continuum.app.pconvergence import exponential_fit, fields_at, quadrature_lattice
from continuum.app.run import field_errors
from continuum.fem.spaces import FactorSpace, NodalSpace
from continuum.io.integrity import verify
from continuum.models.limit import continuum_model
from continuum.settings import parse_config
from discrete.config import ConfigError
from discrete.experiment import build
from meshes import interval, unit_square
from tests.configs import document, problem, resolved, run_text

COMM = MPI.COMM_SELF


def gll_reference(p: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``p + 1`` Gauss–Lobatto–Legendre points of ``[-1, 1]`` (the ends and the roots of
    ``P_p'``) and their closed-form weights ``2 / (p (p + 1) P_p(ξ)²)``."""
    legendre = np.polynomial.legendre.Legendre.basis(p)
    xi = np.sort(np.concatenate([[-1.0, 1.0], legendre.deriv().roots().real]))
    return xi, 2.0 / (p * (p + 1) * legendre(xi) ** 2)


def composite_gll(cells: int, p: int) -> dict[float, float]:
    """The GLL rule on ``cells`` equal cells of ``[0, 1]``, the weights of shared ends summed:
    ``{node: weight}`` (nodes rounded to 12 digits as keys)."""
    xi, w = gll_reference(p)
    rule: dict[float, float] = {}
    for c in range(cells):
        for x, weight in zip((c + (xi + 1) / 2) / cells, w / (2 * cells), strict=True):
            key = round(float(x), 12)
            rule[key] = rule.get(key, 0.0) + float(weight)
    return rule


def rounded(points: np.ndarray) -> list[tuple[float, ...]]:
    return [tuple(round(float(v), 12) for v in point) for point in points]


@pytest.mark.parametrize("degree", [1, 3, 8, 24])
def test_weights_are_the_closed_form_gll_weights_scaled_by_the_cells(degree):
    """ω at every node equals the closed form summed over the cells sharing it, on intervals
    and (tensor products) on quadrilaterals; ω sums to the domain's measure."""
    cells = 3
    line = NodalSpace(interval(COMM, cells), degree)
    rule = composite_gll(cells, degree)
    expected = np.array([rule[x] for (x,) in rounded(line.quadrature_points)])
    np.testing.assert_allclose(line.quadrature_weights, expected, rtol=1e-13, atol=0)
    np.testing.assert_array_equal(line.quadrature_points, line.dof_coordinates)
    assert line.quadrature_weights.sum() == pytest.approx(1.0, abs=1e-14)

    square = NodalSpace(unit_square(COMM, cells), degree)
    # a node shared by cells in both directions sums the products of the 1-D sums
    expected = np.array([rule[x] * rule[y] for x, y in rounded(square.quadrature_points)])
    np.testing.assert_allclose(square.quadrature_weights, expected, rtol=1e-13, atol=0)
    assert square.quadrature_weights.sum() == pytest.approx(1.0, abs=1e-13)


@pytest.mark.parametrize("degree", [2, 4, 7])
def test_rule_is_exact_to_degree_2p_minus_1_and_not_2p(degree):
    """``∫ x^k y^j`` on 2 × 2 cells: exact (1e-13) for ``k, j ≤ 2p − 1``; for ``x^{2p}`` off
    by the closed-form error term of the GLL rule (:func:`gll_error`)."""
    line = NodalSpace(interval(COMM, 2), degree)
    square = NodalSpace(unit_square(COMM, 2), degree)
    x = line.quadrature_points[:, 0]
    xy = square.quadrature_points
    for k in range(2 * degree):
        assert abs(line.integrate(x**k) - 1 / (k + 1)) < 1e-13, k
        for j in (0, 2 * degree - 1 - k):
            exact = 1 / ((k + 1) * (j + 1))
            assert abs(square.integrate(xy[:, 0] ** k * xy[:, 1] ** j) - exact) < 1e-13, (k, j)
    k = 2 * degree
    error = gll_error(degree, cells=2)
    assert line.integrate(x**k) - 1 / (k + 1) == pytest.approx(error, rel=1e-3)
    assert square.integrate(xy[:, 0] ** k) - 1 / (k + 1) == pytest.approx(error, rel=1e-3)
    assert error > 1e3 * np.finfo(float).eps


def gll_error(p: int, cells: int) -> float:
    """The GLL rule's error ``Q(f) − ∫ f`` for ``f = x^{2p}`` on ``cells`` equal cells of
    ``[0, 1]``: on ``[−1, 1]`` it is ``K_p f^{(2p)}`` with ``K_p = (p + 1) p³ 2^{2p+1}
    ((p − 1)!)⁴ / ((2p + 1) ((2p)!)³)`` (Abramowitz & Stegun 25.4.32), and on a cell of width
    ``h`` ``f^{(2p)} = (2p)!`` in ``x`` gives ``(h/2)^{2p+1} (2p)!`` in ``ξ``."""
    from math import factorial

    K = (p + 1) * p**3 * 2 ** (2 * p + 1) * factorial(p - 1) ** 4
    K /= (2 * p + 1) * factorial(2 * p) ** 3
    return cells * K * (0.5 / cells) ** (2 * p + 1) * factorial(2 * p)


def test_operators_are_diagonal_and_the_mass_is_the_lumped_gauss_mass():
    """``T = I``, ``∫ f φ_a = ω_a f_a``, ``M⁻¹`` a division; ``diag(ω)`` equals the row sums of
    the exact (Gauss) mass matrix (lumping: ``Σ_b M_ab = ∫ φ_a``, and GLL integrates
    ``φ_a`` (degree p ≤ 2p − 1) exactly)."""
    degree, domain = 4, interval(COMM, 3)
    nodal, gauss = NodalSpace(domain, degree), FactorSpace(domain, degree)
    np.testing.assert_array_equal(nodal.dof_coordinates, gauss.dof_coordinates)
    lumped = np.asarray(gauss.mass.sum(axis=1)).ravel()
    np.testing.assert_allclose(nodal.quadrature_weights, lumped, rtol=1e-13)
    f = np.random.default_rng(3).standard_normal((nodal.size, 5))
    np.testing.assert_array_equal(nodal.at_quadrature(f), f)
    np.testing.assert_allclose(nodal.load(f), nodal.quadrature_weights[:, None] * f, rtol=1e-15)
    np.testing.assert_allclose(nodal.solve_mass(nodal.load(f)), f, rtol=1e-14)
    np.testing.assert_allclose(nodal.mass.toarray(), np.diag(nodal.quadrature_weights))
    with pytest.raises(ValueError, match="fixed by the element's nodes"):
        nodal.with_quadrature(12)


# ------------------------------------------------------------------ the Nyström network


def nystrom(theta_w, theta_b, nodes, weights, X, Y):
    """Cost and Riesz gradient of the tanh network ``z^(m+1)_a = Σ_b W_ab ω_b h^(m)_b + b_a``
    with neurons at ``nodes`` and measure ``weights`` (identity output, squared error
    ``(1/L) Σ_l ½ Σ_a ω_a (z_a − Y_a)²``), written out: the coefficient gradient by the
    chain rule, then divided by ``ω`` on each side (the lumped mass)."""
    L = X.shape[1]
    h, z = [X], []
    depth = len(theta_w)
    for m in range(depth):
        z.append(theta_w[m] @ (weights[:, None] * h[m]) + theta_b[m][:, None])
        if m + 1 < depth:
            h.append(np.tanh(z[m]))
    r = z[-1] - Y
    cost = 0.5 * np.sum(weights[:, None] * r * r) / L
    grads_w, grads_b = [None] * depth, [None] * depth
    delta = weights[:, None] * r / L  # ∂C/∂z^(M)
    for m in range(depth - 1, -1, -1):
        grads_w[m] = (delta @ (weights[:, None] * h[m]).T) / np.outer(weights, weights)
        grads_b[m] = delta.sum(axis=1) / weights
        if m > 0:
            delta = (theta_w[m].T @ delta) * weights[:, None] * (1 - h[m] ** 2)
    return cost, grads_w, grads_b


def test_nodal_fields_are_a_nystrom_network_at_the_gll_points():
    """The cost and Riesz gradient of the nodal Galerkin fields (deep tanh, 3 layers, P4 on 3
    cells) at random coefficients equal the Nyström network's to rounding, its nodes and
    measure built here from the closed-form GLL rule, the data evaluated at the nodes."""
    cells, degree = 3, 4
    cfg = resolved("deep_tanh", continuum={"cells": cells, "degree": degree, "quadrature": "nodal"})
    model = continuum_model(build(cfg), COMM)
    g = model.galerkin
    space = g.layer_space(0)
    assert all(g.layer_space(m) is space for m in range(4))
    rule = composite_gll(cells, degree)
    nodes = space.dof_coordinates[:, 0]
    weights = np.array([rule[x] for (x,) in rounded(space.dof_coordinates)])
    samples = np.arange(3)[None, :]
    X = np.sin(np.pi * (samples + 1) * nodes[:, None]) + 0.5
    Y = 0.5 * np.cos(np.pi * (samples + 1) * nodes[:, None])
    rng = np.random.default_rng(11)
    n = space.size
    theta_w = [rng.standard_normal((n, n)) for _ in range(3)]
    theta_b = [0.3 * rng.standard_normal(n) for _ in range(3)]
    cost, grad = g.gradient(g.pack(theta_w, theta_b))
    expected_cost, grads_w, grads_b = nystrom(theta_w, theta_b, nodes, weights, X, Y)
    assert cost == pytest.approx(expected_cost, rel=1e-13)
    np.testing.assert_allclose(
        grad, g.pack(grads_w, grads_b), rtol=0, atol=1e-12 * np.abs(grad).max()
    )


def test_nodal_models_skip_the_gauss_check():
    """A nodal model is built once, on spaces with the rule of degree 2p − 1 and one point per
    DOF, and records no Gauss rule; the Gauss model of the same inputs runs the check."""
    from continuum.fem import quadrature

    quadrature.VERIFIED_RULES.clear()
    nodal = continuum_model(build(deep_tanh("nodal", degree=3)), COMM)
    assert quadrature.VERIFIED_RULES == {}
    for space in nodal.spaces:
        assert isinstance(space, NodalSpace) and space.quadrature_degree == 5
        assert len(space.quadrature_weights) == space.size
    gauss = continuum_model(build(deep_tanh("gauss", degree=3)), COMM)
    assert list(quadrature.VERIFIED_RULES.values()) == [gauss.spaces[0].quadrature_degree]
    assert gauss.spaces[0].quadrature_degree >= 6


# ------------------------------------------------------------------ p-convergence


def deep_tanh(quadrature: str, **continuum) -> object:
    """The deep-tanh base problem on 4 cells to t = 0.2 (10 RK4 steps)."""
    return resolved(
        "deep_tanh",
        training={"t_end": None, "steps": 10},
        continuum={"cells": 4, "quadrature": quadrature, "scheme": "matched", **continuum},
    )


def test_nodal_fields_converge_exponentially_in_p_to_the_gauss_limit():
    """Nodal degrees 1 … 8 against the Gauss continuum of degree 10 (deep tanh on 4 cells,
    t = 0.2): the fitted rate of ``e ≈ C e^{−r p}`` lies in [2.2, 3.0] (measured 2.56; the
    Gauss fields' own against the same reference 2.61), every degree improves on the last and
    ``e(8) < 2e-9`` (measured 1.1e-9).  The reference is negligible: its distance to Gauss
    degree 9 (which bounds the error of degree 9) is below 10 % of ``e(8)`` (measured 5 %), its
    own error estimated from the fit below 1 %.  Nodal and Gauss fields approach the one limit
    at the same rate: ``e_nodal(p) / e_gauss(p)`` stays below 2 at every ``p`` (measured
    1.01–1.45)."""
    nodal, gauss = deep_tanh("nodal"), deep_tanh("gauss")
    setup = build(gauss)
    lattice = quadrature_lattice(setup.convention, 4, 12)

    def distance(a, b) -> float:
        return float(np.hypot(*field_errors(setup.network, lattice, *a[:2], *b[:2])))

    reference = fields_at(gauss, 10, lattice, COMM)
    below = distance(reference, fields_at(gauss, 9, lattice, COMM))
    degrees = list(range(1, 9))
    errors, gauss_errors = [], []
    for p in degrees:
        errors.append(distance(fields_at(nodal, p, lattice, COMM), reference))
        gauss_errors.append(distance(fields_at(gauss, p, lattice, COMM), reference))
    rate, constant = exponential_fit(degrees, errors)
    assert 2.2 <= rate <= 3.0, (rate, errors)
    assert all(a > b for a, b in itertools.pairwise(errors)), errors
    assert errors[-1] < 2e-9, errors
    assert below < 0.1 * errors[-1], (below, errors)
    assert constant * np.exp(-rate * 10) < 0.01 * errors[-1], (rate, constant, errors)
    ratios = np.array(errors) / np.array(gauss_errors)
    assert ratios.max() < 2.0, ratios


def test_nodal_coefficients_converge_at_twice_the_rate_at_the_nodes():
    """The nodal coefficients are the fields at the nodes, driven by sums over the GLL rule
    alone (a Nyström network, docs/physics.md "Nodal quadrature"): their error is the rule's,
    ``O(ρ^{−2p})``, where the fields between the nodes add the interpolation error
    ``O(ρ^{−p})``.  Deep tanh on 2 cells to t = 0.2, p = 4 … 8, against the Gauss continuum of
    degree 10 on 8 cells: over the node lattice (:meth:`GalerkinModel.node_lattice`, measure
    ω) the fitted rate is 1.8–2.6 times the one over a Gauss lattice (measured 4.01 and 1.84,
    ratio 2.18), and ``e(8)`` at the nodes is below 1e-11 (measured 2.3e-12; 4.5e-7 between
    them).  The reference's distance to degree 9 on 8 cells at the nodes is below 10 % of
    ``e(8)``."""
    gauss = deep_tanh("gauss", cells=8)
    setup = build(gauss)
    lattice = quadrature_lattice(setup.convention, 4, 12)
    reference = continuum_model(build(gauss.replace(continuum={"degree": 10})), COMM)
    below = continuum_model(build(gauss.replace(continuum={"degree": 9})), COMM)
    for model in (reference, below):
        model.advance_to(setup.steps * setup.dt)

    def distance(model, at) -> float:
        return float(
            np.hypot(
                *field_errors(
                    setup.network, at, *model.evaluate_lattice(at), *reference.evaluate_lattice(at)
                )
            )
        )

    degrees = [4, 5, 6, 7, 8]
    between, at_nodes = [], []
    for p in degrees:
        model = continuum_model(build(deep_tanh("nodal", cells=2, degree=p)), COMM)
        model.advance_to(setup.steps * setup.dt)
        between.append(distance(model, lattice))
        at_nodes.append(distance(model, model.node_lattice()))
        nodes = model.node_lattice()
    lattice_rate, _ = exponential_fit(degrees, between)
    node_rate, _ = exponential_fit(degrees, at_nodes)
    assert 1.8 <= node_rate / lattice_rate <= 2.6, (node_rate, lattice_rate, at_nodes, between)
    assert at_nodes[-1] < 1e-11, at_nodes
    assert distance(below, nodes) < 0.1 * at_nodes[-1], at_nodes


def test_the_node_lattice_is_refused_without_nodal_quadrature():
    model = continuum_model(build(deep_tanh("gauss", degree=2)), COMM)
    with pytest.raises(ValueError, match="quadrature = 'nodal'"):
        model.node_lattice()
    span = continuum_model(build(deep_tanh("nodal", degree=2, input_layer="data-span")), COMM)
    with pytest.raises(ValueError, match="input_layer = 'data-span'"):
        span.node_lattice()


def test_the_depth_continuum_on_nodal_x_spaces_converges_to_the_gauss_limit():
    """The residual network's depth continuum with nodal input, stream and readout spaces (τ
    degree 2 on 4 cells, 10 RK4 steps): at x degree p = 2, 4, 6 on 4 cells its fields approach
    the Gauss continuum of x degree 10 as 1.7e-2, 1.1e-4, 4.6e-7 (measured), each step by more
    than 100×, within 1.5× of the Gauss fields' own errors (measured 1.00–1.08); the
    reference's distance to x degree 9 (4.2e-10) is below 1 % of e(6)."""

    def solved(quadrature: str, p: int):
        config = resolved(
            "resnet", continuum={"degree": p, "depth_degree": 2, "quadrature": quadrature}
        )
        model = continuum_model(build(config), COMM)
        model.advance_to(model.setup.steps * model.setup.dt)
        return model

    reference = solved("gauss", 10)
    lattice = quadrature_lattice(reference.setup.convention, 4, 12)

    def distance(model) -> float:
        return float(
            np.hypot(
                *field_errors(
                    reference.setup.network,
                    lattice,
                    *model.evaluate_lattice(lattice),
                    *reference.evaluate_lattice(lattice),
                )
            )
        )

    errors = [distance(solved("nodal", p)) for p in (2, 4, 6)]
    gauss = [distance(solved("gauss", p)) for p in (2, 4, 6)]
    assert errors[0] > 100 * errors[1] > 1e4 * errors[2], errors
    assert max(np.array(errors) / np.array(gauss)) < 1.5, (errors, gauss)
    assert distance(solved("gauss", 9)) < 0.01 * errors[2], errors


@pytest.mark.parametrize(
    ("base", "overrides"),
    [
        ("deep_tanh", {"continuum": {"input_layer": "data-span"}}),
        (
            "deep_tanh",
            {
                "network": {"widths": [16, 4, 4]},
                "coordinates": {"layout": ["grid", "line", "line"]},
                "data": {"input": "sin(pi*(l+1)*y1)*cos(pi*y2) + 0.5"},
                "init": {"weight": ["0.8*cos(pi*(x - y1*y2))", "0.8*cos(pi*(x - y))"]},
            },
        ),
    ],
    ids=["data-span", "grid"],
)
def test_nodal_variants_converge_to_the_gauss_fields(base, overrides):
    """The input layer in the data span and a grid (quadrilateral) input layer: the nodal
    fields at p = 2, 4, 6 approach the Gauss fields of degree 8 (2 cells), each step by at
    least 10× (measured: data span 2.6e-2, 3.9e-4, 1.2e-5; grid 2.4e-2, 4.0e-4, 1.2e-5)."""
    sections = {k: v for k, v in overrides.items() if k != "continuum"}
    extra = overrides.get("continuum", {})
    doc = document(base, training={"t_end": None, "steps": 5}, **sections)
    nodal = resolved(doc, continuum={"cells": 2, "quadrature": "nodal", **extra})
    gauss = resolved(doc, continuum={"cells": 2, **extra})
    setup = build(gauss)
    lattice = quadrature_lattice(setup.convention, 2, 10)
    reference = fields_at(gauss, 8, lattice, COMM)
    errors = [
        float(
            np.hypot(
                *field_errors(
                    setup.network, lattice, *fields_at(nodal, p, lattice, COMM)[:2], *reference[:2]
                )
            )
        )
        for p in (2, 4, 6)
    ]
    assert errors[0] > 10 * errors[1] > 100 * errors[2], errors


def test_unit_cell_layers_on_nodal_spaces_are_collocated_at_the_nodes():
    """The banded unit-cell toy (linear, periodic, 8 neurons on 4 cells): with the nodal rule
    the ultra-local flow ``z(x) = Σ_s w_s(x) h(x) + b(x)`` decouples node by node, so the fields
    at the lattice points (cell ends and midpoints: nodes of every even degree) are the same at
    p = 2, 4, 6 to rounding; and the Gauss fields converge to them exponentially once the
    degree resolves the data: the loads ``Σ_l (X^l)²`` oscillate 1.5 times per cell, so
    p = 2 … 6 is pre-asymptotic (measured 1.0e-2, 2.4e-3, 4.8e-4) and from p = 6 the errors
    fall as ``e^{−r p}`` with r = 1.07–1.25 between successive even degrees (4.6e-5, 3.7e-6,
    4.4e-7 at p = 8, 10, 12; 5.1e-9 at p = 16), docs/convergence.md."""
    from pathlib import Path

    from continuum.settings import load_config

    root = Path(__file__).resolve().parent.parent
    base = load_config(root / "examples" / "toy-banded-unit-cell.toml")
    gauss = base.replace(
        network={"widths": [8, 8]}, training={"t_end": None, "steps": 10}, continuum={"cells": 4}
    )
    nodal = gauss.replace(continuum={"quadrature": "nodal"})
    setup = build(gauss)
    lattice = setup.convention

    def distance(a, b) -> float:
        return float(np.hypot(*field_errors(setup.network, lattice, *a[:2], *b[:2])))

    collocated = [fields_at(nodal, p, lattice, COMM) for p in (2, 4, 6)]
    for other in collocated[1:]:
        assert distance(other, collocated[0]) < 1e-13
    degrees = [2, 4, 6, 8, 10, 12]
    errors = [distance(fields_at(gauss, p, lattice, COMM), collocated[0]) for p in degrees]
    assert all(a > b for a, b in itertools.pairwise(errors)), errors
    asymptotic = degrees[2:]
    successive = [
        np.log(a / b) / (q - p)
        for (p, a), (q, b) in itertools.pairwise(zip(asymptotic, errors[2:], strict=True))
    ]
    assert all(0.9 < r < 1.5 for r in successive), successive
    rate, _ = exponential_fit(asymptotic, errors[2:])
    assert 0.9 < rate < 1.5 and errors[-1] < 1e-6, (rate, errors)
    # before p = 6 the rate is lower: the pre-asymptotic range
    assert np.log(errors[0] / errors[1]) / 2 < 0.8 * rate, errors


def test_compiled_flow_equals_the_matched_flow_on_nodal_spaces():
    """``scheme = "jax"`` reads the nodal spaces' identity tabulation and diagonal mass: its
    fields equal the numpy RK4's to rounding."""
    pytest.importorskip("jax")
    matched = continuum_model(build(deep_tanh("nodal", degree=3)), COMM)
    compiled = continuum_model(build(deep_tanh("nodal", degree=3, scheme="jax")), COMM)
    for model in (matched, compiled):
        model.advance_to(0.2)
    theta = matched.state.theta
    np.testing.assert_allclose(compiled.state.theta, theta, rtol=0, atol=1e-13 * abs(theta).max())


# ------------------------------------------------------------------ refusals and a run


@pytest.mark.parametrize(
    ("base", "overrides", "names"),
    [
        ("perceptron", {}, "perceptron"),
        ("linear_sgd", {}, "moments"),
        (
            "deep_tanh",
            {
                "training": {"rule": "sgd", "sampling": "replacement", "batch": 1},
                "continuum": {"fluctuations": "moments"},
            },
            "linear-noise",
        ),
    ],
)
def test_models_not_built_on_the_factor_spaces_refuse_nodal_quadrature(base, overrides, names):
    """The perceptron, SGD-law and linear-noise models are refused at load, the
    message naming the key and the family."""
    sections = {k: v for k, v in overrides.items() if k != "continuum"}
    continuum = {**document(base).get("continuum", {}), **overrides.get("continuum", {})}
    with pytest.raises(ConfigError, match=rf"\[continuum\] quadrature = 'nodal' with the {names}"):
        resolved(base, continuum={**continuum, "quadrature": "nodal"}, **sections)


def test_probe_data_refuse_nodal_quadrature():
    """The local theory of probe data sets is refused at load."""
    text = problem(
        "deep_tanh",
        network={"widths": [16, 1], "bias": False, "activation": "linear"},
        init={"bias": None},
        data={"kind": "probes", "samples": None, "input": None, "target": None},
        continuum={"quadrature": "nodal"},
    )
    with pytest.raises(ConfigError, match=r"\[continuum\] quadrature = 'nodal' with the local"):
        import continuum

        continuum.parse_config(text)


def test_unknown_quadrature_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"\[continuum\] quadrature"):
        parse_config(problem("deep_tanh", continuum={"quadrature": "lobatto"}))


def test_synfield_run_of_a_nodal_config_writes_valid_fields(tmp_path):
    """``synfield run`` writes a fields.h5 whose every step verifies and whose resolved
    config records ``quadrature = "nodal"``."""
    text = problem(
        "deep_tanh",
        training={"t_end": None, "steps": 4},
        continuum={"cells": 2, "degree": 3, "quadrature": "nodal"},
        output={"every": 2},
    )
    proc = run_text(text, tmp_path)
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / "out" / "fields.h5"
    verdict = verify(path)
    assert (verdict.good, verdict.damaged) == (3, False)
    with h5py.File(path) as h5:
        stored = parse_config(str(h5.attrs["config"]))
        coefficients = np.array(h5["/continuum/layer0/coefficients"])
    assert stored.continuum.quadrature == "nodal"
    assert coefficients.shape == (3, 7, 7) and np.isfinite(coefficients).all()


# ------------------------------------------------------------------ MPI


@pytest.mark.mpi
@pytest.mark.parametrize("distribute", ["rows", "samples"])
def test_two_ranks_give_the_nodal_fields_of_one_rank(distribute):
    """Rows or samples split over 2 ranks: the fields at the lattice equal one rank's to
    1e-10."""
    comm = MPI.COMM_WORLD
    assert comm.size == 2, "run this test under mpiexec -n 2"
    cfg = deep_tanh("nodal", degree=3, distribute=distribute)
    two = continuum_model(build(cfg), comm)
    two.advance_to(0.2)
    one = continuum_model(build(cfg), COMM)
    one.advance_to(0.2)
    w2, b2 = two.lattice_fields()
    w1, b1 = one.lattice_fields()
    for a, b in zip(w1 + b1, w2 + b2, strict=True):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-10)
    assert two.galerkin.distribution == distribute
