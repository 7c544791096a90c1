"""The continuum limit of a discrete setup: which field theory, and its solver."""

from __future__ import annotations

from mpi4py import MPI

from discrete.experiment import DiscreteSetup


def continuum_model(setup: DiscreteSetup, comm: MPI.Comm):
    """The continuum model for ``setup``, or None when the config disables it."""
    if not setup.config.continuum.enabled:
        return None
    return None
