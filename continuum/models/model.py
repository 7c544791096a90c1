"""The one interface every continuum model offers (docs/physics.md, "The continuum models").

A model is built by its :mod:`continuum.models.registry` entry from a discrete setup and an MPI
communicator.  It owns its state and its time scheme, and answers the run's questions:
advance to a time, the fields at a lattice (its own or another width's), the continuum cost,
and the arrays that ``fields.h5`` stores and ``--resume`` reads back.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

Array = np.ndarray


class MeshSolver(Protocol):
    """The stepping contract of the DOLFINx solvers that own their state (the perceptron's
    rows, the local theories): a time, steps of a fixed ``dt``, and the state as named arrays
    of this rank's degrees of freedom."""

    dt: float

    @property
    def t(self) -> float: ...

    def advance(self, steps: int) -> None:
        """Take ``steps`` steps; raises on a diverged solve or a diverging state."""
        ...

    def state(self) -> dict[str, Array]:
        """Owned degree-of-freedom values of every field of the state, by name."""
        ...

    def load_state(self, state: dict[str, Array], steps: int) -> None:
        """Continue from values returned by :meth:`state`, after ``steps`` steps."""
        ...


@runtime_checkable
class ContinuumModel(Protocol):
    """What a run, a convergence study and an ensemble need from a continuum solver."""

    @property
    def t(self) -> float:
        """The model's time."""
        ...

    def advance_to(self, t: float) -> None:
        """Step to time ``t`` (a multiple of the model's step); raises on divergence."""
        ...

    def lattice_fields(self) -> tuple[list[Array], list[Array]]:
        """The weight and bias fields at the run's own neuron lattice, layer by layer."""
        ...

    def evaluate_lattice(self, convention: Any) -> tuple[list[Array], list[Array]]:
        """The fields at the lattice of another convention (another width)."""
        ...

    def cost(self) -> float:
        """The continuum cost ``C[w, b]`` now."""
        ...

    def series(self) -> dict[str, tuple[int, ...]]:
        """``fields.h5`` path → per-step shape of every array the model stores."""
        ...

    def rows(self) -> dict[str, Array]:
        """This step's arrays, gathered in global order (collective)."""
        ...

    def static(self) -> dict[str, Array]:
        """Arrays written once (dof coordinates, degree); called on rank 0."""
        ...

    def read_state(self, h5: Any, index: int) -> dict[str, Array]:
        """The stored arrays of output step ``index`` of an open ``fields.h5``."""
        ...

    def set_state(self, arrays: dict[str, Array], step: int) -> None:
        """Continue from arrays read by :meth:`read_state` at training step ``step``."""
        ...
