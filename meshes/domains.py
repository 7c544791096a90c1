"""Meshes of the coordinate domains: the unit interval, the unit square and the circle.

Every mesh is distributed over the given communicator (DOLFINx's default partitioner).

One-dimensional domains carry a scalar coordinate ``y`` matched to the neuron lattice of
docs/physics.md "The dictionary": cell ``k`` of an ``N``-cell mesh spans ``[k/N, (k+1)/N]``, so the
``cell`` placement ``x_i = (i + ½)/N`` puts neuron ``i`` at the midpoint of cell ``i`` and the
``periodic`` placement ``x_i = i/N`` puts it on vertex ``i`` of the circle. :func:`coordinate`,
:func:`points` and :func:`cells_at` translate between ``y`` and the mesh, whichever the domain.
"""

from __future__ import annotations

from mpi4py import MPI  # first: it loads the MPI library that DOLFINx links against

# isort: split
import basix.ufl
import numpy as np
import ufl
from dolfinx import mesh

CIRCLE_RADIUS = 1.0 / (2.0 * np.pi)
"""Radius of the circle of length 1."""


def interval(comm: MPI.Comm, cells: int) -> mesh.Mesh:
    """The unit interval [0, 1] with ``cells`` equal cells."""
    return mesh.create_unit_interval(comm, cells)


def unit_square(comm: MPI.Comm, cells: int) -> mesh.Mesh:
    """The unit square [0, 1]² with ``cells × cells`` quadrilaterals."""
    return mesh.create_unit_square(comm, cells, cells, mesh.CellType.quadrilateral)


def circle(comm: MPI.Comm, cells: int, geometry_degree: int = 2) -> mesh.Mesh:
    """The periodic coordinate: a circle of length 1 as a 1-D manifold mesh in the plane.

    Topological dimension 1, geometric dimension 2, radius R = 1/(2π). The arc-length
    coordinate ``s ∈ [0, 1)`` sits at the point ``R (cos 2πs, sin 2πs)``; vertex ``k`` at
    ``s = k/cells`` and cell ``k`` spans ``[k/cells, (k+1)/cells]``. Periodicity is built
    into the topology (the last cell closes on vertex 0), so no constraint is needed and
    the mesh partitions over MPI like any other.

    The cells are polynomial curves of ``geometry_degree`` through points of the exact
    circle: degree 1 is the inscribed polygon, of length ``(N/π) sin(π/N) = 1 − π²/(6N²)
    + …`` (an O(h²) geometric error, which caps every FEM convergence order at 2);
    degree 2 (the default) passes each cell through its two vertices and its arc midpoint,
    and the length error drops to O(h⁴), enough for P2 elements to keep their orders.
    """
    if geometry_degree not in (1, 2):
        raise ValueError(f"circle geometry degree must be 1 or 2, got {geometry_degree}")
    if cells < 3:
        raise ValueError(f"a circle needs at least 3 cells, got {cells}")
    if comm.rank == 0:
        # Nodes at s = j/(degree·N): vertices at even j, arc midpoints at odd j (degree 2).
        nodes = geometry_degree * cells
        x = _on_circle(np.arange(nodes) / nodes)[:, :2]
        k = geometry_degree * np.arange(cells, dtype=np.int64)
        topology = [k, (k + geometry_degree) % nodes]
        if geometry_degree == 2:
            topology.append(k + 1)  # basix order of a P2 interval: vertex, vertex, midpoint
        connectivity = np.column_stack(topology)
    else:
        x = np.empty((0, 2))
        connectivity = np.empty((0, geometry_degree + 1), dtype=np.int64)
    element = ufl.Mesh(basix.ufl.element("Lagrange", "interval", geometry_degree, shape=(2,)))
    return mesh.create_mesh(comm, connectivity, element, x)


def is_circle(msh: mesh.Mesh) -> bool:
    """Whether ``msh`` is a circle from :func:`circle` (a curve in the plane)."""
    return msh.topology.dim == 1 and msh.geometry.dim == 2


def coordinate(msh: mesh.Mesh, x: np.ndarray) -> np.ndarray:
    """The coordinate ``y`` of physical points ``x`` (shape (3, n), as DOLFINx passes them).

    Interval: ``y = x₀``. Circle: the arc-length coordinate ``s = atan2(x₁, x₀)/(2π) mod 1``
    (the angle, so points of the polygonal or quadratic cells map to the arc they stand
    for).
    """
    if msh.topology.dim != 1:
        raise ValueError("a scalar coordinate exists on one-dimensional meshes only")
    if is_circle(msh):
        s = np.mod(np.arctan2(x[1], x[0]) / (2.0 * np.pi), 1.0)
        return np.where(s < 1.0, s, 0.0)  # mod rounds tiny negative angles up to 1.0
    return np.asarray(x[0], dtype=float)


def points(msh: mesh.Mesh, y: np.ndarray) -> np.ndarray:
    """Physical points (shape (n, 3)) of coordinates ``y``.

    Interval: ``(y, 0, 0)``. Circle: ``R (cos 2πy, sin 2πy, 0)`` on the exact circle, within
    O(h²) (polygon) or O(h³) (quadratic cells) of the mesh curve.
    """
    if is_circle(msh):
        return _on_circle(y)
    y = np.atleast_1d(np.asarray(y, dtype=float))
    return np.column_stack([y, np.zeros((y.size, 2))])


def _on_circle(s: np.ndarray) -> np.ndarray:
    s = np.atleast_1d(np.asarray(s, dtype=float))
    angle = 2.0 * np.pi * s
    return CIRCLE_RADIUS * np.column_stack([np.cos(angle), np.sin(angle), np.zeros(s.size)])


def cells_at(msh: mesh.Mesh, y: np.ndarray) -> np.ndarray:
    """Local index of the owned cell that contains each coordinate ``y``; −1 where another
    rank owns it.

    Cell ``k = ⌊y N⌋`` of the lattice (the last cell for ``y = 1`` on the interval; ``y``
    taken mod 1 on the circle) is owned by exactly one rank, so summing values evaluated
    on each rank's own cells over the communicator assembles every point exactly once.
    """
    tdim = msh.topology.dim
    cell_map = msh.topology.index_map(tdim)
    n = cell_map.size_global
    owned = np.arange(cell_map.size_local, dtype=np.int32)
    midpoints = mesh.compute_midpoints(msh, tdim, owned)
    lattice = np.full(n, -1, dtype=np.int32)
    lattice[np.rint(coordinate(msh, midpoints.T) * n - 0.5).astype(int) % n] = owned
    y = np.atleast_1d(np.asarray(y, dtype=float))
    if is_circle(msh):
        k = np.floor(np.mod(y, 1.0) * n).astype(int) % n
    else:
        if np.any((y < 0.0) | (y > 1.0)):
            raise ValueError("interval coordinates must lie in [0, 1]")
        k = np.minimum(np.floor(y * n).astype(int), n - 1)
    return lattice[k]
