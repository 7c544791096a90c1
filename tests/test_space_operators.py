"""Dense or cell-batched products of a factor space, chosen per product by one rule
(continuum/fem/spaces.py :func:`dense_is_faster`): both give the same numbers as the CSR
tabulation to rounding."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from mpi4py import MPI

from continuum.fem import spaces
from continuum.fem.cell_batched import CellBatchedTabulation
from continuum.fem.condensation import CondensedMass
from continuum.fem.spaces import FactorSpace
from continuum.models.limit import continuum_model
from continuum.settings import load_config
from discrete.experiment import build
from meshes import interval, unit_square

ROOT = Path(__file__).resolve().parent.parent


def forced(monkeypatch, dense: bool) -> None:
    """Make the rule pick dense (a huge call overhead) or cell-batched (no speed-up, no
    overhead)."""
    monkeypatch.setattr(spaces, "GEMM_SPEEDUP", 1e9 if dense else 0.0)
    monkeypatch.setattr(spaces, "CALL_OVERHEAD", 1e18 if dense else 0.0)


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize(
    ("mesh", "degree"),
    [
        (lambda: interval(MPI.COMM_SELF, 4), 5),
        (lambda: interval(MPI.COMM_SELF, 64), 2),
        (lambda: unit_square(MPI.COMM_SELF, 3), 3),
    ],
)
@pytest.mark.parametrize("columns", [1, 256])
def test_dense_and_cell_batched_products_equal_the_csr_tabulation(
    monkeypatch, mesh, degree, columns
):
    """``T u``, ``Tᵀ(ω f)`` and ``M⁻¹ Tᵀ(ω f)``, dense and cell-batched, against the CSR
    matrix of ``T_qa = φ_a(x_q)`` with the mass matrix's LU (an independent path)."""
    rng = np.random.default_rng(3)
    domain = mesh()
    reference = FactorSpace(domain, degree, 2 * degree + 6)
    csr = sp.csr_matrix(reference.tabulation)
    load = (csr.T @ sp.diags(reference.quadrature_weights)).tocsr()
    lu = spla.splu(sp.csc_matrix(csr.T @ sp.diags(reference.quadrature_weights) @ csr))
    u = rng.random((reference.size, columns)) - 0.5
    f = rng.random((len(reference.quadrature_weights), columns)) - 0.5
    expected = [csr @ u, load @ f, lu.solve(load @ f)]
    for dense in (True, False):
        forced(monkeypatch, dense)
        space = FactorSpace(domain, degree, 2 * degree + 6)
        assert space.dense_products(columns) == (dense, dense)
        got = [space.at_quadrature(u), space.load(f), space.moments(f)[1]]
        for a, b in zip(got, expected, strict=True):
            assert relative(a, b) < 1e-13
    vector = rng.random(reference.size)
    np.testing.assert_allclose(space.at_quadrature(vector), csr @ vector, rtol=0, atol=1e-13)


def test_the_rule_picks_dense_for_few_columns_and_cell_batched_for_a_full_batch():
    """P8 on 4 cells (44 × 33 tabulation, 396 non-zeros): dense for one column, cell-batched
    for 256 (measured 1.2 / 14.5 µs dense against 2.7 / 9.0 µs batched); P2 on 64 cells (384 ×
    129): cell-batched for 3 and 256 columns (10.4 / 543 µs dense against 6.5 / 34 µs;
    benchmarks/README.md "FEM cost per gradient")."""
    few = FactorSpace(interval(MPI.COMM_SELF, 4), 8, 20)
    many = FactorSpace(interval(MPI.COMM_SELF, 64), 2, 10)
    assert few.dense_products(1)[0] and not few.dense_products(256)[0]
    assert not many.dense_products(3)[0] and not many.dense_products(256)[0]


def test_a_gradient_of_256_samples_is_the_same_with_dense_and_csr_operators(monkeypatch):
    """The deep-tanh network with 256 samples, P4 on 4 cells: cost and Riesz gradient at the
    initial fields agree to 1e-13 relative whichever products run."""
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


def test_cell_batched_load_with_weights_that_differ_in_shape_from_cell_to_cell():
    """Weights that are not one reference set scaled (a non-affine cell) are applied point by
    point: the load equals the CSR ``Tᵀ diag(ω) f`` built from the same entries."""
    rng = np.random.default_rng(5)
    cells, per_cell, points = 5, 4, 6
    reference = rng.random((points, per_cell))
    dofs = np.array([[3 * c, 3 * c + 3, 3 * c + 1, 3 * c + 2] for c in range(cells)])
    size = 3 * cells + 1
    weights = rng.random(cells * points)
    batched = CellBatchedTabulation(reference, dofs, weights, size)
    rows = np.repeat(np.arange(cells * points), per_cell)
    csr = sp.csr_matrix(
        (np.tile(reference, (cells, 1)).ravel(), (rows, np.repeat(dofs, points, axis=0).ravel())),
        shape=(cells * points, size),
    )
    f = rng.random((cells * points, 7))
    u = rng.random((size, 7))
    assert relative(batched.load(f), csr.T @ (weights[:, None] * f)) < 1e-13
    assert relative(batched.values(u), csr @ u) < 1e-13


def _applied(matrix, x: np.ndarray) -> np.ndarray:
    """An :class:`~continuum.fem.spaces.Operators` entry applied: ``None`` the identity, a
    vector a diagonal."""
    if matrix is None:
        return x
    return matrix[:, None] * x if matrix.ndim == 1 else matrix @ x


@pytest.mark.parametrize(
    "space",
    [
        lambda: FactorSpace(interval(MPI.COMM_SELF, 3), 4),
        lambda: spaces.NodalSpace(interval(MPI.COMM_SELF, 3), 4),
        lambda: FactorSpace(unit_square(MPI.COMM_SELF, 2), 2),
        lambda: spaces.IndexSpace.of_size(5),
    ],
    ids=["gauss-line", "nodal-line", "gauss-square", "index"],
)
def test_the_operators_as_arrays_act_as_the_space_does(space):
    """``operators()`` (what the compiled flows apply) gives the space's own tabulation, load
    and Riesz map to 1e-12 relative on random columns; nodal and index spaces give only
    vectors and identities (``elementwise``), the Gauss spaces matrices."""
    s = space()
    ops = s.operators()
    rng = np.random.default_rng(0)
    u, f = rng.standard_normal((s.size, 3)), rng.standard_normal((len(s.quadrature_weights), 3))
    assert relative(_applied(ops.tabulation, u), s.at_quadrature(u)) < 1e-12
    assert relative(_applied(ops.load, f), s.load(f)) < 1e-12
    assert relative(_applied(ops.inverse_mass, u), s.solve_mass(u)) < 1e-12
    np.testing.assert_array_equal(ops.weights, s.quadrature_weights)
    matrices = [a for a in (ops.tabulation, ops.load, ops.inverse_mass) if a is not None]
    assert s.elementwise == all(a.ndim == 1 for a in matrices)


@pytest.mark.parametrize(
    ("cells", "degree", "block"),
    [(512, 1, 16), (401, 1, 1), (256, 2, 8), (270, 2, 6), (64, 8, 2), (48, 11, 1)],
)
@pytest.mark.parametrize("columns", [1, 300])
def test_condensed_mass_solve_equals_a_sparse_lu_of_the_assembled_matrix(
    cells, degree, block, columns
):
    """Above :data:`~continuum.fem.spaces.DENSE_INVERSE_SIZE` DOFs on an interval the
    interiors of blocks of cells are condensed (:mod:`continuum.fem.condensation`; the largest
    divisor of the cells with at most 15 interior DOFs a block, one cell where none is):
    ``M⁻¹ b`` equals SuperLU's solve of the assembled ``M`` to 1e-12 relative, and ``M`` times it
    gives ``b`` back."""
    space = FactorSpace(interval(MPI.COMM_SELF, cells), degree)
    assert space.size > spaces.DENSE_INVERSE_SIZE
    rng = np.random.default_rng(cells)
    b = rng.standard_normal((space.size, columns)).squeeze()
    x = space.solve_mass(b)
    assert isinstance(space._condensed, CondensedMass)  # the solve that ran
    assert space._condensed.interior.shape == (cells // block, block * degree - 1)
    assert x.shape == b.shape
    mass = sp.csc_matrix(space.mass)
    assert relative(x, spla.splu(mass).solve(b)) < 1e-12
    assert relative(mass @ x, b) < 1e-12


@pytest.mark.parametrize(
    ("cells", "degree", "columns", "condensed"),
    [
        (32, 8, 300, True),
        (16, 8, 300, True),
        (8, 8, 300, False),
        (32, 8, 3, False),
        (64, 2, 300, True),
        (32, 2, 300, False),
        (128, 2, 30, True),
        (16, 12, 3, False),
    ],
)
def test_below_the_dense_size_the_rule_picks_the_condensed_solve_at_full_batches(
    cells, degree, columns, condensed
):
    """Below :data:`~continuum.fem.spaces.DENSE_INVERSE_SIZE` an interval space solves by
    condensation where :func:`~continuum.fem.spaces.condensed_is_faster` says so (P2 and P8 from
    129 DOFs at 300 columns, P2 on 257 DOFs at 30; not at 65 DOFs, nor at 3 columns on 193 and
    257 DOFs), and both give the dense inverse's ``M⁻¹ b`` to 1e-12 relative."""
    space = FactorSpace(interval(MPI.COMM_SELF, cells), degree)
    assert space.size <= spaces.DENSE_INVERSE_SIZE
    assert spaces.condensed_is_faster(space.size, degree, columns) == condensed
    b = np.random.default_rng(1).standard_normal((space.size, columns))
    x = space.solve_mass(b)
    assert (space._condensed is not None) == condensed
    assert relative(x, np.linalg.solve(spaces.as_dense(space.mass), b)) < 1e-12


def test_condensation_refuses_cells_that_are_not_a_chain():
    """Overlapping cells, [0, ½] and [¼, 1], whose vertices are not neighbours along the line,
    are refused, not solved."""
    local = np.tile(np.array([[2.0, 1.0], [1.0, 2.0]]), (2, 1, 1)) / 6
    with pytest.raises(ValueError, match="chain"):
        CondensedMass(local, np.array([[0, 1], [2, 3]]), np.array([0.0, 0.5, 0.25, 1.0]))
