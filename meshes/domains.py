"""Meshes of the coordinate domains: the unit interval and the unit square.

Every mesh is distributed over the given communicator (DOLFINx's default partitioner).
"""

from __future__ import annotations

from dolfinx import mesh
from mpi4py import MPI


def interval(comm: MPI.Comm, cells: int) -> mesh.Mesh:
    """The unit interval [0, 1] with ``cells`` equal cells."""
    return mesh.create_unit_interval(comm, cells)


def unit_square(comm: MPI.Comm, cells: int) -> mesh.Mesh:
    """The unit square [0, 1]² with ``cells × cells`` quadrilaterals."""
    return mesh.create_unit_square(comm, cells, cells, mesh.CellType.quadrilateral)
