"""Finite-element spaces of the coordinate domains, with the matrices product fields need.

A field on a product domain ``Ω_{m+1} × Ω_m`` is a coefficient matrix ``W`` in the tensor
product ``V_{m+1} ⊗ V_m`` of two Lagrange spaces: ``w_h(x, y) = Σ_ab W_ab φ_a(x) ψ_b(y)``.
Every integral over one factor then needs, per space,

* the mass matrix ``M_ab = ∫ φ_a φ_b`` (assembled by DOLFINx) and its factorisation;
* a quadrature rule: points ``x_q``, weights ``ω_q`` (including |det J|) and the tabulation
  ``T_qa = φ_a(x_q)``, so that ``∫ f φ_a ≈ (Tᵀ (ω ⊙ f))_a`` and ``u_h(x_q) = (T u)_q``;
* point evaluation ``E_ia = φ_a(p_i)`` at the neuron lattice.

Lagrange degrees 1 … 24 (``[continuum] degree``) on
intervals and quadrilaterals, with the Gauss–Lobatto–Legendre node variant of basix
(:func:`lagrange_element`): the nodal basis stays well conditioned at high degree, and DOLFINx
applies the DOF permutations of quadrilateral edges to the dofmap, so no DOF transformations
are needed on the tabulated reference basis.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass

import basix
import basix.ufl
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import ufl
from dolfinx import fem, geometry
from dolfinx import mesh as dmesh
from dolfinx.fem.petsc import assemble_matrix

from continuum.fem.cell_batched import CellBatchedTabulation
from continuum.fem.condensation import BLOCK_INTERIOR, CondensedMass, cells_per_block
from continuum.io import layout

Array = np.ndarray


def lagrange_element(domain: dmesh.Mesh, degree: int) -> ufl.AbstractFiniteElement:
    """The continuous Lagrange element of ``degree`` on the cells of ``domain`` with its nodes
    at the (warped) Gauss–Lobatto–Legendre points: at degree ``p`` the Lebesgue constant of
    the interpolation grows like ``log p`` instead of ``2^p / p`` for equispaced nodes, and the
    mass matrix stays well conditioned (docs/convergence.md, high order)."""
    return _lagrange_element(domain.basix_cell(), degree)


NODES = basix.LagrangeVariant.gll_warped
"""The node variant of every Lagrange element (:func:`lagrange_element`)."""


@functools.cache
def _lagrange_element(cell: basix.CellType, degree: int) -> ufl.AbstractFiniteElement:
    """:func:`lagrange_element` on a reference cell: basix elements are immutable, so one per
    cell and degree serves every space (creating one costs tens of microseconds)."""
    return basix.ufl.element("Lagrange", cell, degree, lagrange_variant=NODES)


@functools.cache
def reference_rule(
    cell: basix.CellType, degree: int, qdeg: int, rule: basix.QuadratureType
) -> tuple[Array, Array, Array]:
    """On the reference ``cell``, at the points ``ξ_q`` of basix's rule of degree ``qdeg``
    (kind ``rule``): its weights ``w_q``, the tabulation ``φ_a(ξ_q)`` (``n_q ×`` DOFs per
    cell) of :func:`lagrange_element` of ``degree``, and the values and derivatives
    (``(1 + tdim) × n_q × vertices``) of the degree-1 geometry basis; as
    :func:`_lagrange_element`, one per argument set (the arrays are read-only)."""
    points, weights = map(np.asarray, basix.make_quadrature(cell, qdeg, rule=rule))
    element = basix.create_element(basix.ElementFamily.P, cell, degree, lagrange_variant=NODES)
    phi = np.asarray(element.tabulate(0, points))[0, :, :, 0]
    geometry_basis = basix.create_element(basix.ElementFamily.P, cell, 1)
    shape = np.asarray(geometry_basis.tabulate(1, points))[..., 0]
    for array in (weights, phi, shape):
        array.setflags(write=False)
    return weights, phi, shape


def local_dofs(space: fem.FunctionSpace) -> int:
    """Number of dofs on this rank, owned and ghosts."""
    index_map = space.dofmap.index_map
    return index_map.size_local + index_map.num_ghosts


def point_evaluation(
    space: fem.FunctionSpace, points: np.ndarray
) -> tuple[sp.csr_matrix, np.ndarray]:
    """The point-evaluation matrix ``E[i, j] = φ_j(points[i])`` over this rank's owned cells
    (``points`` of shape ``(N,)`` or ``(N, d)``).

    Cells are found with a bounding-box tree and exact collision tests, points pulled back to
    the reference cell by the coordinate map and the basis tabulated there. Returns ``E``
    (columns: local dofs) and the mask of points found in an owned cell (a point on a shared
    vertex uses the first cell found).
    """
    msh = space.mesh
    tdim, gdim = msh.topology.dim, msh.geometry.dim
    owned = np.arange(msh.topology.index_map(tdim).size_local, dtype=np.int32)
    tree = geometry.bb_tree(msh, tdim, entities=owned)
    points = np.asarray(points, dtype=float).reshape(len(points), -1)
    xyz = np.zeros((len(points), 3))
    xyz[:, : points.shape[1]] = points
    colliding = geometry.compute_colliding_cells(
        msh, geometry.compute_collisions_points(tree, xyz), xyz
    )
    found = colliding.offsets[1:] > colliding.offsets[:-1]
    hit = np.flatnonzero(found)
    first_cell = colliding.array[colliding.offsets[:-1][found]]
    cmap, nodes, coordinates = msh.geometry.cmaps[0], msh.geometry.dofmaps[0], msh.geometry.x
    rows, cols = [np.empty(0, dtype=np.int64)], [np.empty(0, dtype=np.int64)]
    values = [np.empty(0)]
    for cell in np.unique(first_cell):
        indices = hit[first_cell == cell]
        reference = cmap.pull_back(xyz[indices, :gdim], coordinates[nodes[cell], :gdim])
        table = np.asarray(space.element.basix_element.tabulate(0, reference))[0, :, :, 0]
        dofs = space.dofmap.cell_dofs(cell)
        rows.append(np.repeat(indices, len(dofs)))
        cols.append(np.tile(dofs, len(indices)))
        values.append(table.ravel())
    matrix = sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(points), local_dofs(space)),
    )
    return matrix, found


def mass_matrix(space: fem.FunctionSpace):
    """The mass matrix ``M_ij = ∫ φ_i φ_j dx`` (PETSc AIJ on the space's communicator)."""
    u, v = ufl.TrialFunction(space), ufl.TestFunction(space)
    mass = assemble_matrix(fem.form(ufl.inner(u, v) * ufl.dx))
    mass.assemble()
    return mass


GEMM_SPEEDUP = 2.0
"""How many times more tabulation entries per second a dense product (one BLAS dgemm with the
full ``n_q × n`` matrix) streams than the cell-batched one (:mod:`continuum.fem.cell_batched`,
``n_q × n_d`` entries) at the factor spaces' shapes with many columns: 13 against 26·10⁹ entries
per second at 256 columns on this project's reference machine (``benchmarks/fem_cost.py``,
"operators")."""

CALL_OVERHEAD = 40_000
"""The per-call cost of the cell-batched product over a dense one (a gather, a stacked
``matmul``, a reshape: 2.6–3.8 µs against 1.1–1.4 µs for one column), in dense
entry-columns at 26·10⁹ per second."""

DENSE_INVERSE_SIZE = 400
"""Spaces of at most this many DOFs apply ``M⁻¹`` as a dense matrix: for ``L = 3`` columns it
takes 2 / 8 / 13 µs at n = 65 / 193 / 257 against 10 / 26 / 30 µs for a SuperLU solve (the two
meet near n = 500); at ``L = 256`` columns 0.45 / 2.0 ms against 1.3 / 4.9 ms at n = 129 /
257, and about equal at n = 513.  On an interval the condensed solve
(:mod:`continuum.fem.condensation`) replaces SuperLU above this size (0.51–0.58 ms at
n = 513, P2, P4 or P8, 300 columns, against 1.9–2.5 ms) and the dense product below it where
:func:`condensed_is_faster` says so (0.36 against 1.40 ms at n = 385, P8, 300 columns)."""


CONDENSED_PER_VERTEX = 240.0
CONDENSED_PER_DOF = 65.0
CONDENSED_OVERHEAD = 260_000
"""The cost of a condensed solve (:mod:`continuum.fem.condensation`) of a degree-``p`` space of
``n`` DOFs in blocks of ``g`` cells on ``k`` columns, in multiply-adds of the dense ``M⁻¹``
product (32 ps each, measured): ``(240/(g p) + 65) n k + 260 000`` (the blocks' end vertices'
tridiagonal solve, ``n/(g p)`` of them, the blocks' stacked products and the two reorderings,
and a fixed 8 µs).  Fitted to the 44 solves below 400 DOFs of benchmarks/README.md "Run 22"
(P2–P12, 65–385 DOFs, 1–300 columns) as the constants that lose least time to wrong picks:
one, 1.03× (the overhead anywhere in 200 000–325 000 does as well)."""


def condensed_is_faster(size: int, degree: int, columns: int) -> bool:
    """Whether the condensed solve beats the dense ``M⁻¹`` product (``size² · columns``
    multiply-adds) on ``columns`` columns (the model of :data:`CONDENSED_OVERHEAD`): at 300
    columns from 129 DOFs, at 30 from 257, at 3 from about 340, for one column never below 400
    DOFs."""
    block = cells_per_block((size - 1) // degree, degree) * degree
    per_column = (CONDENSED_PER_VERTEX / block + CONDENSED_PER_DOF) * size
    return per_column * columns + CONDENSED_OVERHEAD < size * size * columns


def dense_is_faster(dense_entries: int, sparse_entries: int, columns: int) -> bool:
    """The one rule that chooses a factor space's operators: a product with a dense matrix of
    ``dense_entries`` beats the cell-batched product with ``sparse_entries`` non-zeros (the
    reference tabulation's entries over all cells), on ``columns`` columns, when

        dense_entries · columns ≤ GEMM_SPEEDUP · sparse_entries · columns + CALL_OVERHEAD.

    Few columns: the batched call's fixed cost decides (a small space is dense, one BLAS call
    of 1–3 µs); many columns (the samples of a full batch): only the streaming rates do, and a
    space is dense only while its tabulation has at least one non-zero in ``GEMM_SPEEDUP``
    entries (in 1-D about ``(p + 1) / n``: hardly ever at 256 columns)."""
    return dense_entries * columns <= GEMM_SPEEDUP * sparse_entries * columns + CALL_OVERHEAD


@dataclass(frozen=True)
class Operators:
    """A factor space's operators as arrays, for code that applies them itself (the compiled
    flows, :mod:`continuum.schemes.jax_flow`): the tabulation ``T`` (``n_q × n``), the load
    ``Tᵀ diag(ω)``, ``M⁻¹`` and the weights ``ω``; a vector stands for a diagonal matrix and
    ``None`` for the identity."""

    tabulation: Array | None
    load: Array | None
    inverse_mass: Array | None
    weights: Array


def _columns(values: Array) -> int:
    """Number of columns of a right-hand side (1 for a vector)."""
    return values.size // max(values.shape[0], 1)


def as_dense(matrix: Array | sp.spmatrix) -> Array:
    """``matrix`` as a dense array (sparse matrices converted)."""
    return matrix if isinstance(matrix, np.ndarray) else matrix.toarray()


class FactorSpace:
    """A Lagrange space ``V`` of degree ``p`` on one coordinate domain, with M, T, ω and E.

    The mass matrix is assembled from the same quadrature as every load, ``M = Tᵀ diag(ω) T``
    (exact: the rule has degree ``≥ 2p``; by default ``2p + 2``); it equals DOLFINx's
    assembled ``∫ φ_a φ_b`` to rounding (:func:`mass_matrix`, checked in the tests).
    The tabulation and load products run cell by cell as one batched GEMM of the reference
    tabulation (:mod:`continuum.fem.cell_batched`) or, where a dense product can ever be faster
    (:func:`dense_is_faster` with one column), with the dense ``T`` and ``Tᵀω`` too; every
    product uses the one the rule picks for its number of columns.  ``M⁻¹`` is dense up to
    :data:`DENSE_INVERSE_SIZE` DOFs, and SuperLU solves above on a square; on an interval the
    interiors of blocks of cells are condensed (:mod:`continuum.fem.condensation`) above that
    size and wherever :func:`condensed_is_faster` picks it for the columns.
    """

    elementwise = False
    """Whether every operator (tabulation, load, ``M⁻¹``) is element-wise: no matrix product."""

    def __init__(self, domain: dmesh.Mesh, degree: int, quadrature_degree: int | None = None):
        self.mesh = domain
        self.degree = degree
        self.V = fem.functionspace(domain, lagrange_element(domain, degree))
        self.gdim = domain.geometry.dim
        self.tdim = domain.topology.dim
        self.dof_coordinates = self.V.tabulate_dof_coordinates()[:, : self.tdim]
        self.size = self.dof_coordinates.shape[0]
        self._set_quadrature(quadrature_degree or 2 * degree + 2)

    def with_quadrature(self, quadrature_degree: int) -> FactorSpace:
        """The same space (mesh, ``V``, DOF numbering) with a Gauss rule of another degree."""
        space = copy.copy(self)
        space._set_quadrature(quadrature_degree)
        return space

    def _set_quadrature(self, quadrature_degree: int) -> None:
        """Quadrature, tabulation, load operator, mass matrix and its inverse for one rule."""
        self.quadrature_degree = quadrature_degree
        rows, cols, values = self._quadrature(quadrature_degree)
        shape, weights = (len(self.quadrature_weights), self.size), self.quadrature_weights
        sparse = sp.csr_matrix((values, (rows, cols)), shape=shape)
        self._entries = (shape[0] * shape[1], len(values))
        self._dense: tuple[Array, Array] | None = None
        if dense_is_faster(*self._entries, 1):
            dense = np.zeros(shape)
            dense[rows, cols] = values
            self._dense = (dense, np.ascontiguousarray((weights[:, None] * dense).T))
        # T and Tᵀω as stored: dense where they can be, else CSR
        stored = self._dense or (sparse, (sparse.T @ sp.diags(weights)).tocsr())
        self.tabulation: Array | sp.csr_matrix = stored[0]
        load = stored[1]
        self.mass: Array | sp.csr_matrix = load @ self.tabulation  # dense or CSR, as T
        self._moments = None
        self._inverse: Array | None = None
        self._condensed: CondensedMass | None = None  # built on its first solve
        self._lu = None
        if self.size <= DENSE_INVERSE_SIZE:
            self._inverse = np.linalg.inv(as_dense(self.mass))
            if self._dense is not None:
                self._moments = np.vstack([self._dense[1], self._inverse @ self._dense[1]])
        elif self.tdim != 1:
            self._lu = spla.splu(sp.csc_matrix(self.mass))

    def _condensation(self) -> CondensedMass:
        """The space's condensed Riesz map (:meth:`condensed`), built once."""
        if self._condensed is None:
            self._condensed = self.condensed()
        return self._condensed

    def condensed(self, interior: int = BLOCK_INTERIOR) -> CondensedMass:
        """The condensed Riesz map of an interval space (:mod:`continuum.fem.condensation`) in
        blocks of at most ``interior`` interior DOFs, from the cells' mass matrices
        ``Φᵀ diag(ω_c) Φ`` of the load quadrature."""
        phi, dofs = self._batched.reference, self._batched.dofs
        cell_weights = self.quadrature_weights.reshape(len(dofs), -1)
        local = np.einsum("qa,cq,qb->cab", phi, cell_weights, phi)
        return CondensedMass(local, dofs, self.dof_coordinates[:, 0], interior)

    def dense_products(self, columns: int) -> tuple[bool, bool]:
        """Whether, on ``columns`` columns, the tabulation and load products are dense and
        :meth:`moments` is the one fused product ``[Tᵀω; M⁻¹Tᵀω] f`` (:func:`dense_is_faster`;
        the fused product is weighed against a cell-batched load plus the dense ``M⁻¹``)."""
        dense_entries, nnz = self._entries
        dense = self._dense is not None and dense_is_faster(dense_entries, nnz, columns)
        fused = self._moments is not None and dense_is_faster(
            2 * dense_entries - self.size**2, nnz, columns
        )
        return dense, fused

    def _cell_rule(
        self, qdeg: int, rule: basix.QuadratureType = basix.QuadratureType.default
    ) -> tuple[Array, Array, Array]:
        """The reference tabulation ``φ_a(ξ_q)`` (``n_q × `` DOFs per cell) of basix's rule of
        degree ``qdeg`` (Gauss unless ``rule`` says otherwise), and on every cell its points
        (``cells × n_q × tdim``) and weights ``ω_q = w_q |det J|`` (``cells × n_q``).

        The geometry is affine-or-bilinear (degree 1): points and Jacobians come from the
        degree-1 Lagrange basis of the cell, vectorised over cells.
        """
        cell = basix.CellType.interval if self.tdim == 1 else basix.CellType.quadrilateral
        ref_weights, phi, shape = reference_rule(cell, self.degree, qdeg, rule)
        nodes = self.mesh.geometry.x[self.mesh.geometry.dofmaps[0]][..., : self.tdim]
        points = np.einsum("qk,ckd->cqd", shape[0], nodes)
        jacobian = np.einsum("iqk,ckd->cqdi", shape[1:], nodes)
        det = np.abs(np.linalg.det(jacobian)) if self.tdim > 1 else np.abs(jacobian[..., 0, 0])
        return phi, points, det * ref_weights[None, :]

    def _quadrature(self, qdeg: int) -> tuple[Array, Array, Array]:
        """Gauss points and weights on all cells (:meth:`_cell_rule`), and the entries
        ``(rows, columns, values)`` of the tabulation ``T_qa = φ_a(x_q)``."""
        phi, points, weights = self._cell_rule(qdeg)
        dofs = self.V.dofmap.list
        ncells, nq = weights.shape
        rows = np.repeat(np.arange(ncells * nq), dofs.shape[1])
        cols = np.repeat(dofs, nq, axis=0).ravel()
        vals = np.tile(phi, (ncells, 1)).ravel()
        self.quadrature_points = points.reshape(-1, self.tdim)
        self.quadrature_weights = weights.ravel()
        self._batched = CellBatchedTabulation(phi, dofs, self.quadrature_weights, self.size)
        return rows, cols, vals

    def solve_mass(self, rhs: Array) -> Array:
        """``M⁻¹ rhs`` (``rhs`` of shape ``(n,)`` or ``(n, k)``): on an interval the dense
        inverse or the condensed solve, as :func:`condensed_is_faster` picks for the columns
        (the condensed one above :data:`DENSE_INVERSE_SIZE`); on a square the dense inverse or,
        above that size, SuperLU."""
        if self._lu is not None:
            return self._lu.solve(np.asarray(rhs, dtype=float))
        if self._inverse is not None and (
            self.tdim != 1 or not condensed_is_faster(self.size, self.degree, _columns(rhs))
        ):
            return self._inverse @ rhs
        return self._condensation().solve(rhs)

    def operators(self) -> Operators:
        """The dense ``T``, ``Tᵀ diag(ω)`` and ``M⁻¹`` (the space's own, or inverted here
        above :data:`DENSE_INVERSE_SIZE`) and ``ω``."""
        weights = np.asarray(self.quadrature_weights, dtype=float)
        T = as_dense(self.tabulation)
        load = np.ascontiguousarray((weights[:, None] * T).T)
        inverse = self._inverse if self._inverse is not None else np.linalg.inv(as_dense(self.mass))
        return Operators(T, load, inverse, weights)

    def _dense_operators(self, values: Array) -> tuple[Array, Array] | None:
        """The dense ``T`` and ``Tᵀω`` where :func:`dense_is_faster` picks them for ``values``
        (``None``: the cell-batched product)."""
        if self._dense is not None and dense_is_faster(*self._entries, _columns(values)):
            return self._dense
        return None

    def load(self, values_q: Array) -> Array:
        """``∫ f φ_a`` for ``f`` given at the quadrature points (shape ``(nq,)`` or ``(nq, k)``)."""
        dense = self._dense_operators(values_q)
        return self._batched.load(values_q) if dense is None else dense[1] @ values_q

    def moments(self, values_q: Array) -> tuple[Array, Array]:
        """``∫ f φ_a`` and its Riesz image ``M⁻¹ ∫ f φ`` (one product ``[Tᵀω; M⁻¹Tᵀω] f`` for
        a small space, :meth:`dense_products`)."""
        if self._moments is None or not self.dense_products(_columns(values_q))[1]:
            load = self.load(values_q)
            return load, self.solve_mass(load)
        both = self._moments @ values_q
        return both[: self.size], both[self.size :]

    def at_quadrature(self, coefficients: Array) -> Array:
        """``u_h(x_q)`` for coefficient vectors (or matrices of them, one per column)."""
        dense = self._dense_operators(coefficients)
        return self._batched.values(coefficients) if dense is None else dense[0] @ coefficients

    def integrate(self, values_q: Array) -> Array:
        """``∫ f`` over the domain, column by column."""
        return self.quadrature_weights @ values_q

    def interpolate(self, f: Callable[[Array], Array]) -> Array:
        """Nodal interpolant of ``f(points (n, d))`` (Lagrange DOFs are point values)."""
        return np.asarray(f(self.dof_coordinates), dtype=float)

    def static(self: FactorSpace | IndexSpace, prefix: str) -> dict[str, Array]:
        """What the output records of this factor: DOF coordinates and degree."""
        return {
            layout.dof_coordinates(prefix): self.dof_coordinates,
            layout.degree(prefix): np.asarray(self.degree, dtype=np.int64),
        }

    def evaluation_matrix(self, points: Array) -> sp.csr_matrix:
        """``E_ia = φ_a(p_i)`` for points ``p`` of shape ``(N, d)`` inside the domain."""
        matrix, found = point_evaluation(self.V, points)
        if not found.all():
            outside = np.asarray(points).reshape(len(points), -1)[~found]
            raise ValueError(f"points {outside} lie outside the mesh of this coordinate")
        return matrix


class IndexSpace:
    """The 'space' of an index layer (docs/physics.md "Index layers"): ``d`` points with the
    counting measure.

    One coefficient per point (the field's value there), quadrature at the points with unit
    weights, so the mass matrix, the tabulation and the load operator are identities:
    ``∫ f φ_a = f_a`` and ``∫ f = Σ_a f_a``.  A Galerkin network with such a factor is the
    network itself on that side — a multiplet of ``d`` fields ``w_j(x)`` on an input index
    layer, ``k`` fields ``v_k(y)`` on an output one."""

    degree = 0
    tdim = 0
    elementwise = True

    def __init__(self, points: Array):
        self.dof_coordinates = np.asarray(points, dtype=float).reshape(len(points), -1)
        self.size = len(self.dof_coordinates)
        self.quadrature_points = self.dof_coordinates
        self.quadrature_weights = np.ones(self.size)
        self.mass = sp.identity(self.size, format="csr")

    @classmethod
    def of_size(cls, d: int) -> IndexSpace:
        """The index set ``0, …, d − 1``."""
        return cls(np.arange(d, dtype=float))

    def solve_mass(self, rhs: Array) -> Array:
        return np.asarray(rhs, dtype=float)

    def operators(self) -> Operators:
        """Identities, and unit weights."""
        return Operators(None, None, None, np.asarray(self.quadrature_weights, dtype=float))

    def load(self, values_q: Array) -> Array:
        return np.asarray(values_q, dtype=float)

    def moments(self, values_q: Array) -> tuple[Array, Array]:
        values = self.load(values_q)
        return values, values

    def at_quadrature(self, coefficients: Array) -> Array:
        return np.asarray(coefficients, dtype=float)

    def integrate(self, values_q: Array) -> Array:
        return np.asarray(values_q, dtype=float).sum(axis=0)

    def interpolate(self, f: Callable[[Array], Array]) -> Array:
        return np.asarray(f(self.dof_coordinates), dtype=float)

    def evaluation_matrix(self, points: Array) -> sp.csr_matrix:
        """Selection of the coefficients at ``points`` (each one of the index points)."""
        points = np.asarray(points, dtype=float).reshape(len(points), -1)
        match = np.all(points[:, None, :] == self.dof_coordinates[None, :, :], axis=2)
        if not match.any(axis=1).all():
            raise ValueError(f"points {points[~match.any(axis=1)]} are not in this index set")
        return sp.csr_matrix(match.astype(float))

    static = FactorSpace.static


class PointSpace(IndexSpace):
    """The 'space' of a one-neuron layer: a single point, one coefficient, unit measure."""

    def __init__(self, coordinate: Array):
        super().__init__(np.atleast_2d(coordinate))

    def evaluation_matrix(self, points: Array) -> sp.csr_matrix:
        return sp.csr_matrix(np.ones((len(points), 1)))


NODAL_TOLERANCE = 1e-12
"""How far the element's tabulation at the Gauss–Lobatto–Legendre points may be from a
permutation of the identity, and the points from the DOF coordinates, for :class:`NodalSpace`."""


class NodalSpace(FactorSpace):
    """The Lagrange space of :class:`FactorSpace` with the quadrature at its own nodes
    (``[continuum] quadrature = "nodal"``; docs/physics.md "Nodal quadrature").

    The element's nodes (the ``gll_warped`` variant, :func:`lagrange_element`) are, on every
    cell, the ``p + 1`` Gauss–Lobatto–Legendre points of an interval (their tensor product on
    a quadrilateral), so the GLL rule of basix on each cell (exact for polynomials of degree
    ``2p − 1`` per cell and direction) has its points at the DOFs.  With ``ξ_i`` the reference
    GLL points, ``ŵ_i`` their weights and ``x_a`` the DOF coordinates, the rule is, summed over
    the cells that share a node,

        ω_a = Σ_{(c, i): x_{c,i} = x_a} ŵ_i |det J_c(ξ_i)|,       ∫ f ≈ Σ_a ω_a f(x_a),

    and every operator of the fields is diagonal:

        T = I  (u_h(x_a) = u_a),      ∫ f φ_a ≈ ω_a f(x_a),      M = diag(ω)  (lumped),
        M⁻¹ ∫ f φ ≈ f(x_·),           ∫ u_h v_h ≈ Σ_a ω_a u_a v_a.

    A dense layer on such spaces is a network of width ``n`` whose neurons sit at the nodes
    with the measure ``ω`` (a Nyström discretisation: ``Σ_b W_ab ω_b h(x_b)``).  The rule is
    fixed by the nodes: its error is part of the discretisation error and falls with ``p``
    (docs/convergence.md "Nodal quadrature"); there is no Gauss rule to check.  The
    coincidence of the GLL points with the nodes is asserted to :data:`NODAL_TOLERANCE` when
    the space is built, so an element variant that breaks it fails loudly.
    """

    elementwise = True

    def __init__(self, domain: dmesh.Mesh, degree: int):
        super().__init__(domain, degree, 2 * degree - 1)

    def with_quadrature(self, quadrature_degree: int) -> FactorSpace:
        """Refused: the nodal rule is fixed by the nodes."""
        raise ValueError("the nodal quadrature is fixed by the element's nodes")

    def _set_quadrature(self, quadrature_degree: int) -> None:
        """The GLL rule of degree ``2p − 1`` on every cell, assembled onto the DOFs."""
        if quadrature_degree != 2 * self.degree - 1:
            raise ValueError(f"the nodal rule of degree {self.degree} has degree 2p − 1")
        self.quadrature_degree = quadrature_degree
        phi, cell_points, cell_weights = self._cell_rule(
            quadrature_degree, basix.QuadratureType.gll
        )
        local = np.abs(phi).argmax(axis=1)  # the cell's DOF at each GLL point
        permutation = np.zeros_like(phi)
        permutation[np.arange(len(local)), local] = 1.0
        if np.abs(phi - permutation).max() > NODAL_TOLERANCE or len(set(local)) != phi.shape[1]:
            raise ValueError(
                f"[continuum] quadrature = 'nodal': the degree-{self.degree} element's basis at "
                "the Gauss–Lobatto–Legendre points is not a permutation of the identity (its "
                "nodes are not those points)"
            )
        node = self.V.dofmap.list[:, local]  # (cells, n_q): the DOF at each cell point
        distance = np.abs(cell_points - self.dof_coordinates[node]).max()
        if distance > NODAL_TOLERANCE:
            raise ValueError(
                f"[continuum] quadrature = 'nodal': the Gauss–Lobatto–Legendre points lie "
                f"{distance:.1e} from the degree-{self.degree} element's DOF coordinates"
            )
        weights = np.bincount(node.ravel(), weights=cell_weights.ravel(), minlength=self.size)
        self.quadrature_points = self.dof_coordinates
        self.quadrature_weights = weights
        # CSR of a diagonal, built directly with its shape (cheaper)
        diagonal, square = np.arange(self.size + 1), (self.size, self.size)
        self.tabulation = sp.csr_matrix((np.ones(self.size), diagonal[:-1], diagonal), square)
        self.mass = sp.csr_matrix((weights, diagonal[:-1], diagonal), square)
        self._dense = None
        self._moments = None

    def dense_products(self, columns: int) -> tuple[bool, bool]:
        """No products: every operator is diagonal."""
        return False, False

    def _weights_for(self, values: Array) -> Array:
        """``ω`` shaped to scale the rows of ``values`` (a vector or a matrix of columns)."""
        return self.quadrature_weights.reshape(-1, *([1] * (values.ndim - 1)))

    def solve_mass(self, rhs: Array) -> Array:
        """``diag(ω)⁻¹ rhs``."""
        rhs = np.asarray(rhs, dtype=float)
        return rhs / self._weights_for(rhs)

    def operators(self) -> Operators:
        """``T = I`` and the diagonals ``ω`` (the load) and ``1/ω`` (``M⁻¹``) as vectors."""
        weights = np.asarray(self.quadrature_weights, dtype=float)
        return Operators(None, weights, 1 / weights, weights)

    def load(self, values_q: Array) -> Array:
        """``ω ⊙ f``: ``∫ f φ_a`` by the nodal rule."""
        values = np.asarray(values_q, dtype=float)
        return self._weights_for(values) * values

    def moments(self, values_q: Array) -> tuple[Array, Array]:
        """``ω ⊙ f`` and its Riesz image ``diag(ω)⁻¹ (ω ⊙ f) = f`` (the values themselves)."""
        return self.load(values_q), np.asarray(values_q, dtype=float)

    def at_quadrature(self, coefficients: Array) -> Array:
        """``u_h(x_a) = u_a``: the coefficients are the values at the nodes."""
        return np.asarray(coefficients, dtype=float)
