"""DOLFINx meshes of the coordinate domains Ω_m, matched to the neuron lattices.

``mpi4py.MPI`` is imported before DOLFINx, the order DOLFINx requires.
"""

from mpi4py import MPI  # noqa: F401  (must precede the dolfinx import below)

from .domains import (
    CIRCLE_RADIUS,
    cells_at,
    circle,
    coordinate,
    interval,
    is_circle,
    points,
    unit_square,
)

__all__ = [
    "CIRCLE_RADIUS",
    "cells_at",
    "circle",
    "coordinate",
    "interval",
    "is_circle",
    "points",
    "unit_square",
]
