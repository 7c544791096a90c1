"""DOLFINx meshes of the coordinate domains Ω_m, matched to the neuron lattices."""

from .domains import interval, unit_square

__all__ = ["interval", "unit_square"]
