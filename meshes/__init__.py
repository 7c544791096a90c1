"""DOLFINx meshes of the coordinate domains Ω_m, matched to the neuron lattices."""

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
