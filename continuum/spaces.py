"""Finite-element spaces of the coordinate domains, with the matrices product fields need.

A field on a product domain ``Ω_{m+1} × Ω_m`` is a coefficient matrix ``W`` in the tensor
product ``V_{m+1} ⊗ V_m`` of two Lagrange spaces: ``w_h(x, y) = Σ_ab W_ab φ_a(x) ψ_b(y)``.
Every integral over one factor then needs, per space,

* the mass matrix ``M_ab = ∫ φ_a φ_b`` (assembled by DOLFINx) and its factorisation;
* a quadrature rule: points ``x_q``, weights ``ω_q`` (including |det J|) and the tabulation
  ``T_qa = φ_a(x_q)``, so that ``∫ f φ_a ≈ (Tᵀ (ω ⊙ f))_a`` and ``u_h(x_q) = (T u)_q``;
* point evaluation ``E_ia = φ_a(p_i)`` at the neuron lattice.

Lagrange degrees 1 and 2 on intervals and quadrilaterals; no DOF transformations are needed.
"""

from __future__ import annotations

from collections.abc import Callable

import basix
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import ufl
from dolfinx import fem, geometry
from dolfinx import mesh as dmesh
from dolfinx.fem.petsc import assemble_matrix

Array = np.ndarray


def petsc_to_csr(A) -> sp.csr_matrix:
    """A copy of an assembled (serial) PETSc AIJ matrix as SciPy CSR."""
    indptr, indices, data = A.getValuesCSR()
    return sp.csr_matrix((data, indices, indptr), shape=A.getSize())


class FactorSpace:
    """A Lagrange space ``V`` of degree ``p`` on one coordinate domain, with M, T, ω and E."""

    def __init__(self, domain: dmesh.Mesh, degree: int, quadrature_degree: int | None = None):
        self.mesh = domain
        self.degree = degree
        self.V = fem.functionspace(domain, ("Lagrange", degree))
        self.gdim = domain.geometry.dim
        self.tdim = domain.topology.dim
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        M = assemble_matrix(fem.form(u * v * ufl.dx))
        M.assemble()
        self.mass_petsc = M
        self.mass = petsc_to_csr(M)
        self._mass_lu = spla.splu(self.mass.tocsc())
        self.dof_coordinates = self.V.tabulate_dof_coordinates()[:, : self.tdim]
        self.size = self.dof_coordinates.shape[0]
        self._quadrature(quadrature_degree or 2 * degree + 2)

    @property
    def element(self):
        return self.V.element.basix_element

    def _quadrature(self, qdeg: int) -> None:
        cell = basix.CellType.interval if self.tdim == 1 else basix.CellType.quadrilateral
        ref_points, ref_weights = basix.make_quadrature(cell, qdeg)
        phi = self.element.tabulate(0, ref_points)[0, :, :, 0]  # (nq, ndofs_cell)
        dofs = self.V.dofmap.list
        ncells = dofs.shape[0]
        x = self.mesh.geometry.x
        gdofs = self.mesh.geometry.dofmaps[0]
        cmap = self.mesh.geometry.cmaps[0]
        points, weights = [], []
        for c in range(ncells):
            cell_x = x[gdofs[c]][:, : self.gdim]
            pts = cmap.push_forward(ref_points, cell_x)
            points.append(pts[:, : self.tdim])
            weights.append(ref_weights * _jacobian_determinant(cell_x, self.tdim))
        nq = len(ref_weights)
        rows = np.repeat(np.arange(ncells * nq), dofs.shape[1])
        cols = np.repeat(dofs, nq, axis=0).ravel()
        vals = np.tile(phi, (ncells, 1)).ravel()
        self.quadrature_points = np.concatenate(points)
        self.quadrature_weights = np.concatenate(weights)
        self.tabulation = sp.csr_matrix((vals, (rows, cols)), shape=(ncells * nq, self.size))
        self._load = (self.tabulation.T @ sp.diags(self.quadrature_weights)).tocsr()

    def solve_mass(self, rhs: Array) -> Array:
        """``M⁻¹ rhs`` (``rhs`` of shape ``(n,)`` or ``(n, k)``)."""
        return self._mass_lu.solve(np.asarray(rhs, dtype=float))

    def load(self, values_q: Array) -> Array:
        """``∫ f φ_a`` for ``f`` given at the quadrature points (shape ``(nq,)`` or ``(nq, k)``)."""
        return self._load @ values_q

    def at_quadrature(self, coefficients: Array) -> Array:
        """``u_h(x_q)`` for coefficient vectors (or matrices of them, one per column)."""
        return self.tabulation @ coefficients

    def integrate(self, values_q: Array) -> Array:
        """``∫ f`` over the domain, column by column."""
        return self.quadrature_weights @ values_q

    def interpolate(self, f: Callable[[Array], Array]) -> Array:
        """Nodal interpolant of ``f(points (n, d))`` (Lagrange DOFs are point values)."""
        return np.asarray(f(self.dof_coordinates), dtype=float)

    def evaluation_matrix(self, points: Array) -> sp.csr_matrix:
        """``E_ia = φ_a(p_i)`` for points ``p`` of shape ``(N, d)`` inside the domain."""
        points = np.asarray(points, dtype=float).reshape(len(points), -1)
        padded = np.zeros((len(points), 3))
        padded[:, : points.shape[1]] = points
        tree = geometry.bb_tree(self.mesh, self.tdim)
        candidates = geometry.compute_collisions_points(tree, padded)
        hits = geometry.compute_colliding_cells(self.mesh, candidates, padded)
        x, gdofs = self.mesh.geometry.x, self.mesh.geometry.dofmaps[0]
        cmap = self.mesh.geometry.cmaps[0]
        rows, cols, vals = [], [], []
        for i, p in enumerate(padded):
            cells = hits.links(i)
            if len(cells) == 0:
                raise ValueError(f"point {points[i]} lies outside the mesh of this coordinate")
            c = cells[0]
            ref = cmap.pull_back(p[None, : self.gdim], x[gdofs[c]][:, : self.gdim])
            phi = self.element.tabulate(0, ref)[0, 0, :, 0]
            rows.extend([i] * len(phi))
            cols.extend(self.V.dofmap.cell_dofs(c))
            vals.extend(phi)
        return sp.csr_matrix((vals, (rows, cols)), shape=(len(points), self.size))


def _jacobian_determinant(cell_x: Array, tdim: int) -> float:
    """|det J| of an affine interval or parallelogram cell (vertices in DOLFINx order)."""
    if tdim == 1:
        return float(np.linalg.norm(cell_x[1] - cell_x[0]))
    e1, e2 = cell_x[1] - cell_x[0], cell_x[2] - cell_x[0]
    return float(abs(e1[0] * e2[1] - e1[1] * e2[0]))


class PointSpace:
    """The 'space' of a one-neuron layer: a single point, one coefficient, unit measure."""

    degree = 0
    size = 1
    tdim = 0

    def __init__(self, coordinate: Array):
        self.dof_coordinates = np.atleast_2d(coordinate)
        self.quadrature_points = self.dof_coordinates
        self.quadrature_weights = np.ones(1)
        self.mass = sp.identity(1, format="csr")

    def solve_mass(self, rhs: Array) -> Array:
        return np.asarray(rhs, dtype=float)

    def load(self, values_q: Array) -> Array:
        return np.asarray(values_q, dtype=float)

    def at_quadrature(self, coefficients: Array) -> Array:
        return np.asarray(coefficients, dtype=float)

    def integrate(self, values_q: Array) -> Array:
        return np.asarray(values_q, dtype=float).sum(axis=0)

    def interpolate(self, f: Callable[[Array], Array]) -> Array:
        return np.asarray(f(self.dof_coordinates), dtype=float)

    def evaluation_matrix(self, points: Array) -> sp.csr_matrix:
        return sp.csr_matrix(np.ones((len(points), 1)))
