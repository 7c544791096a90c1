"""Meshes of the coordinate domains: geometry of the circle, lattice matching, coordinates."""

from mpi4py import MPI  # first: it loads the MPI library that DOLFINx links against

# isort: split
import numpy as np
import pytest
import scipy.special
import ufl
from dolfinx import fem

import meshes
from discrete.conventions import placement_1d

COMM = MPI.COMM_WORLD
REFINEMENTS = (8, 16, 32)


def orders(errors: list[float]) -> np.ndarray:
    """Observed orders ``log₂(e_h / e_{h/2})`` of errors on meshes halved in turn."""
    e = np.asarray(errors)
    return np.log2(e[:-1] / e[1:])


def integral(msh, integrand, quadrature_degree: int | None = None) -> float:
    metadata = {} if quadrature_degree is None else {"quadrature_degree": quadrature_degree}
    measure = ufl.dx(domain=msh, metadata=metadata)
    return COMM.allreduce(fem.assemble_scalar(fem.form(integrand * measure)), MPI.SUM)


def quadratic_arc_length(cells: int) -> float:
    """Length of the quadratic through the ends and the midpoint of one arc of angle 2α.

    In the cell's frame the curve is ``(R − aξ²/2, bξ)``, ``ξ ∈ [−1, 1]``, with
    ``a = 2R(1 − cos α)``, ``b = R sin α``: length ``∫ √(a²ξ² + b²) dξ = √(a² + b²) +
    (b²/a) asinh(a/b)``.
    """
    alpha, R = np.pi / cells, meshes.CIRCLE_RADIUS
    a, b = 2.0 * R * (1.0 - np.cos(alpha)), R * np.sin(alpha)
    return np.hypot(a, b) + b**2 / a * np.arcsinh(a / b)


@pytest.mark.mpi
@pytest.mark.parametrize("geometry_degree", [1, 2])
def test_circle_length(geometry_degree):
    """The circle's measure is its polygon's (N/π) sin(π/N), or N quadratic arcs; the defect
    1 − |Ω_h| converges to 0 with order 2 (polygon) or 4 (quadratic cells).

    The quadratic cells have a non-polynomial Jacobian |x'(ξ)|: an 11-point Gauss rule
    integrates it to rounding error (the default rule is off by ~5e-6 at N = 8, still O(h⁴)).
    """
    exact = {
        1: lambda n: n / np.pi * np.sin(np.pi / n),
        2: lambda n: n * quadratic_arc_length(n),
    }[geometry_degree]
    defects = []
    for n in REFINEMENTS:
        msh = meshes.circle(COMM, n, geometry_degree)
        length = integral(msh, fem.Constant(msh, 1.0), quadrature_degree=20)
        assert length == pytest.approx(exact(n), rel=1e-12)
        defects.append(1.0 - length)
    assert np.all(np.array(defects) > 0.0)  # inscribed curves are shorter than the circle
    # Defect c h^q (1 + O(h²)): the correction moves the order by 0.01 (polygon: 1.992, 1.998)
    # to 0.05 (quadratic: 3.95, 3.99) at these N; a band of 0.1 still tells q from q ± 1.
    assert orders(defects) == pytest.approx(2.0 * geometry_degree, abs=0.1)


def test_circle_periodic_integral():
    """∫ exp(sin 2πs) ds over the circle is I₀(1); with quadratic cells and P2 the error is
    the O(h⁴) geometric one (the periodic rule is otherwise spectrally accurate)."""
    errors = []
    for n in REFINEMENTS:
        msh = meshes.circle(COMM, n)
        V = fem.functionspace(msh, ("Lagrange", 2))
        f = fem.Function(V)
        f.interpolate(lambda x, msh=msh: np.exp(np.sin(2.0 * np.pi * meshes.coordinate(msh, x))))
        errors.append(abs(integral(msh, f) - scipy.special.i0(1.0)))
    assert errors[-1] < 3e-6
    assert orders(errors) == pytest.approx(4.0, abs=0.1)


@pytest.mark.mpi
def test_circle_vertices_are_the_periodic_lattice():
    """Vertex k sits at s = k/N on the radius 1/(2π): the ``periodic`` placement."""
    n = 12
    msh = meshes.circle(COMM, n)
    vertices = msh.geometry.x[np.unique(msh.geometry.dofmaps[0][:, :2])]
    assert np.allclose(np.hypot(vertices[:, 0], vertices[:, 1]), meshes.CIRCLE_RADIUS, rtol=1e-14)
    s = np.concatenate(COMM.allgather(meshes.coordinate(msh, vertices.T)))
    lattice = np.unique(np.round(s * n).astype(int) % n)
    assert np.allclose(s * n, np.round(s * n), atol=1e-12)
    assert np.allclose(lattice / n, placement_1d(n, "periodic")[0], atol=0.0)


def test_circle_coordinate_round_trip():
    msh = meshes.circle(COMM, 8)
    y = np.array([0.0, 0.1, 0.5, 0.75, 0.999])
    for shift in (0.0, 3.0, -2.0):
        s = meshes.coordinate(msh, meshes.points(msh, y + shift).T)
        assert np.all((s >= 0.0) & (s < 1.0))
        gap = np.abs(s - y)
        assert np.all(np.minimum(gap, 1.0 - gap) < 1e-14)  # distance along the circle


@pytest.mark.parametrize("n", [4, 7, 16])
def test_interval_matches_cell_placement(n):
    """With cells = N the vertices are k/N and the cell midpoints are the ``cell`` placement
    (i + ½)/N: neuron i sits at the midpoint of cell i."""
    msh = meshes.interval(COMM, n)
    assert np.allclose(np.sort(msh.geometry.x[:, 0]), np.arange(n + 1) / n, atol=1e-15)
    neurons = placement_1d(n, "cell")[0]
    cells = meshes.cells_at(msh, neurons)
    midpoints = msh.geometry.x[msh.geometry.dofmaps[0][cells]].mean(axis=1)[:, 0]
    assert np.allclose(midpoints, neurons, atol=1e-15)


@pytest.mark.mpi
@pytest.mark.parametrize("domain", ["interval", "circle"])
def test_each_point_has_exactly_one_owning_cell(domain):
    """Every coordinate lies in one owned cell of one rank (parallel evaluation relies on it)."""
    msh = getattr(meshes, domain)(COMM, 10)
    y = np.linspace(0.0, 1.0, 41)
    cells = meshes.cells_at(msh, y)
    assert np.array_equal(COMM.allreduce((cells >= 0).astype(int), MPI.SUM), np.ones(y.size))
    mine = cells >= 0
    nodes = msh.geometry.x[msh.geometry.dofmaps[0][cells[mine], :2]]  # the cell's vertices
    s = meshes.coordinate(msh, nodes.reshape(-1, 3).T).reshape(-1, 2)
    if domain == "circle":  # the cell from s = (N−1)/N closes on s = 0 ≡ 1
        s = np.where((s.max(axis=1, keepdims=True) - s > 0.5), s + 1.0, s)
        y = np.where(y == 1.0, 0.0, y)
    low, high = s.min(axis=1), s.max(axis=1)
    assert np.all((low - 1e-12 <= y[mine]) & (y[mine] <= high + 1e-12))
