"""The continuum models whose state is one vector ``θ`` of FE coefficients stepped by a training
rule (docs/physics.md, "The continuum models"): the Galerkin fields of a dense or unit-cell
network (:class:`continuum.models.limit.GalerkinModel`) and the depth continuum of a residual
network (:class:`continuum.fields.residual.ResidualModel`).

What they share lives here, in :class:`CoefficientModel`: the time ``t`` and ``advance_to``
with the growth check (discrete/errors.py), the cost ``C[θ]``, the fields at a lattice
through two typed hooks, and the ``fields.h5`` record built from one declared list of named
coefficient parts (:class:`CoefficientPart`, paths of :mod:`continuum.io.layout`): per part
the weight and bias coefficients and, under second-order rules, their velocities; a resume at
training step ``n`` continues at the model's own step ``round(n Δt_training / Δt)``.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import h5py
import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from continuum.io import layout
from discrete.conventions import Convention
from discrete.errors import check_growth
from discrete.experiment import DiscreteSetup
from discrete.training import Rule, State

Array = np.ndarray
type Evaluation = sp.csr_matrix | Array
"""The point evaluation ``E_ia = φ_a(p_i)`` of one factor space at one lattice."""


class CoefficientFields(Protocol):
    """The coefficient layout and cost of a model's fields (a GalerkinNetwork of any series of
    layer kinds, or DepthFields): ``θ`` to and from per-part weight and bias arrays, and
    ``C[θ]``; ``comm`` the ranks that share ``θ``."""

    comm: MPI.Comm

    def pack(self, w: list[Array], b: list[Array]) -> Array: ...

    def unpack(self, theta: Array) -> tuple[list[Array], list[Array]]: ...

    def value(self, theta: Array, samples: Array | None = None) -> float: ...


class StoredSpace(Protocol):
    """A factor space that records itself in ``fields.h5`` under a group."""

    def static(self, prefix: str) -> dict[str, Array]: ...


@dataclass(frozen=True)
class CoefficientPart:
    """One named part of ``θ`` (a weight layer, the residual blocks): its four series and the
    shapes of its weight and bias coefficients."""

    series: layout.CoefficientSeries
    weights: tuple[int, ...]
    biases: tuple[int, ...]

    @classmethod
    def named(cls, part: str, weights: tuple[int, ...], biases: tuple[int, ...]) -> CoefficientPart:
        """The part stored under :func:`continuum.io.layout.coefficient_group` ``(part)``."""
        return cls(layout.CoefficientSeries.of(layout.coefficient_group(part)), weights, biases)


class CoefficientModel[FieldsT: CoefficientFields, OffsetT](ABC):
    """A continuum model of FE coefficients ``θ`` (module docstring), generic over its fields
    and over what its lattice evaluation adds to the evaluation matrices (``OffsetT``: the
    data span's offset of a Galerkin model, the blocks' depths of a residual one)."""

    setup: DiscreteSetup
    galerkin: FieldsT
    spaces: Sequence[StoredSpace]
    rule: Rule
    state: State
    reference: float  # of the growth check (discrete/errors.py)

    @abstractmethod
    def coefficient_parts(self) -> list[CoefficientPart]:
        """The named parts of ``θ``, in the order of the fields' ``pack``/``unpack``."""

    @abstractmethod
    def _lattice(self, convention: Convention) -> tuple[list[Evaluation], OffsetT]:
        """The evaluation matrices of the factor spaces at the lattice of ``convention`` and
        the model's addition to them."""

    @abstractmethod
    def _lattice_values(
        self, evaluators: list[Evaluation], offset: OffsetT
    ) -> tuple[list[Array], list[Array]]:
        """The weight and bias fields at a lattice built by :meth:`_lattice`."""

    @property
    def t(self) -> float:
        return self.state.t

    def advance_to(self, t: float) -> None:
        """Step to ``t``; raises when the coefficients grow past the growth check's bound.

        The bound and the size are those of the whole ``θ``, over all ranks (one ``Allreduce``
        of a number per step): where the ranks hold different rows, a part that diverges on
        one rank stops every rank at the same step with the same message, instead of one rank
        raising while the others wait in the next collective."""
        steps = int(np.ceil((t - self.state.t) / self.rule.h - 1e-9))
        comm = self.galerkin.comm
        reference = comm.allreduce(self.reference, op=MPI.MAX)
        for state in self.rule.advance(self.state, steps):
            local = float(np.max(np.abs(state.theta), initial=0.0))
            size = comm.allreduce(local if np.isfinite(local) else np.inf, op=MPI.MAX)
            check_growth(
                "continuum solve", np.array([size]), reference, state.step, state.t, "reduce dt"
            )
            self.state = state

    def cost(self) -> float:
        return self.galerkin.value(self.state.theta)

    @functools.cached_property
    def _own_lattice(self) -> tuple[list[Evaluation], OffsetT]:
        """Evaluation at the run's own lattice, built when first asked for."""
        return self._lattice(self.setup.convention)

    def lattice_evaluators(self, convention: Convention | None = None) -> list[Evaluation]:
        """Per coordinate layer, the evaluation of its space's coefficients at the lattice of
        ``convention`` (default: the run's own, built once)."""
        lattice = self._own_lattice if convention is None else self._lattice(convention)
        return lattice[0]

    def lattice_fields(self) -> tuple[list[Array], list[Array]]:
        return self._lattice_values(*self._own_lattice)

    def evaluate_lattice(self, convention: Convention) -> tuple[list[Array], list[Array]]:
        """The fields at the lattice of another convention (another width)."""
        return self._lattice_values(*self._lattice(convention))

    def _coefficient_series(self) -> dict[str, tuple[int, ...]]:
        """Path → per-step shape of the state a resumed run reads back: the coefficients (and
        velocities) of every part and what the time scheme carries (:meth:`Rule.carried
        <discrete.training.Rule.carried>`)."""
        out: dict[str, tuple[int, ...]] = {}
        for part in self.coefficient_parts():
            s = part.series
            out[s.weights], out[s.biases] = part.weights, part.biases
            if self.state.velocity is not None:
                out[s.weight_velocity], out[s.bias_velocity] = part.weights, part.biases
        out.update((layout.scheme_state(name), ()) for name in self.rule.carried())
        return out

    def series(self) -> dict[str, tuple[int, ...]]:
        return self._coefficient_series()

    def rows(self) -> dict[str, Array]:
        """The FE coefficients of every field (gathered: a collective call)."""
        out: dict[str, Array] = {}
        parts = self.coefficient_parts()
        w, b = self.galerkin.unpack(self.state.theta)
        for part, wp, bp in zip(parts, w, b, strict=True):
            out[part.series.weights], out[part.series.biases] = wp, bp
        if self.state.velocity is not None:
            vw, vb = self.galerkin.unpack(self.state.velocity)
            for part, wp, bp in zip(parts, vw, vb, strict=True):
                out[part.series.weight_velocity], out[part.series.bias_velocity] = wp, bp
        for name, value in self.rule.carried().items():
            out[layout.scheme_state(name)] = np.asarray(value, dtype=float)
        return out

    def static(self) -> dict[str, Array]:
        """The factor spaces of the neuron layers (``/continuum/space{m}``)."""
        out: dict[str, Array] = {}
        for m, s in enumerate(self.spaces):
            out.update(s.static(layout.space(m)))
        return out

    def read_state(self, h5: h5py.File, index: int) -> dict[str, Array]:
        """The coefficient arrays of output step ``index`` of an open ``fields.h5``."""
        return {name: np.array(h5[name][index]) for name in self._coefficient_series()}

    def set_state(self, arrays: dict[str, Array], step: int) -> None:
        """Continue from coefficients read by :meth:`read_state` at training step ``step``,
        at the model's own step ``round(step Δt_training / Δt)``, with what the time scheme
        carried there."""
        series = [part.series for part in self.coefficient_parts()]
        theta = self.galerkin.pack(
            [arrays[s.weights] for s in series], [arrays[s.biases] for s in series]
        )
        vel = None
        if self.state.velocity is not None:
            vel = self.galerkin.pack(
                [arrays[s.weight_velocity] for s in series],
                [arrays[s.bias_velocity] for s in series],
            )
        own_step = round(step * self.setup.dt / self.rule.h)
        self.state = type(self.state)(own_step * self.rule.h, own_step, theta, vel)
        self.rule.carry(
            {name: float(arrays[layout.scheme_state(name)]) for name in self.rule.carried()}
        )
