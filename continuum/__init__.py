"""The continuum limit: field theories, the finite-element solver, comparison, output, CLI.

``mpi4py.MPI`` is imported first, so that ``import continuum`` (or any of its modules)
before ``import dolfinx`` initialises MPI in the order DOLFINx requires.
"""

from mpi4py import MPI  # noqa: F401  (before dolfinx, whatever the caller imports next)
