"""The continuum limit of a discrete setup: which field theory, and which solver.

* dense networks of any depth (product convention): Galerkin tensor-product fields
  (:mod:`continuum.galerkin`) integrated with the training rule's own time scheme;
* probe data sets (Goldstein's chain, Klein–Gordon): the local wave equation
  (:mod:`continuum.local`).
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from discrete.conventions import LayerCoordinates
from discrete.experiment import DiscreteSetup
from discrete.expressions import Expression
from discrete.training import make_rule
from meshes import interval, unit_square

from .galerkin import GalerkinNetwork
from .spaces import FactorSpace, PointSpace

Array = np.ndarray


def coordinate_space(coords: LayerCoordinates, cells: int, degree: int, comm: MPI.Comm):
    """The FE space of one neuron layer's coordinate domain."""
    if coords.size == 1:
        return PointSpace(coords.points[0])
    domain = interval(comm, cells) if coords.layout == "line" else unit_square(comm, cells)
    return FactorSpace(domain, degree)


def _names(coords: LayerCoordinates, prefix: str) -> list[str]:
    return [prefix] if coords.layout == "line" else [f"{prefix}1", f"{prefix}2"]


def data_function(expr: Expression, coords: LayerCoordinates, prefix: str):
    """``(points (n, d), samples (L,)) -> (n, L)`` values of a data expression."""
    names = _names(coords, prefix)

    def f(points: Array, samples: Array) -> Array:
        values = {n: points[:, k, None] for k, n in enumerate(names)}
        out = expr(l=np.asarray(samples)[None, :], **values)
        return np.broadcast_to(out, (len(points), len(samples))).copy()

    return f


class GalerkinModel:
    """The continuum run beside a discrete one: same rule, same dt, same sample schedule."""

    def __init__(self, setup: DiscreteSetup, comm: MPI.Comm):
        cfg = setup.config
        if cfg.data.kind != "expression":
            raise ValueError(
                f"[data] kind = {cfg.data.kind!r}: the tensor-product continuum needs data "
                "given as expressions of the coordinates"
            )
        conv = setup.convention
        self.setup = setup
        self.spaces = [
            coordinate_space(c, cfg.continuum.cells, cfg.continuum.degree, MPI.COMM_SELF)
            for c in conv.layers
        ]
        self.galerkin = GalerkinNetwork(
            setup.network,
            self.spaces,
            data_function(cfg.data.input, conv.layers[0], "y"),
            data_function(cfg.data.target, conv.layers[-1], "x"),
            setup.data.samples,
            comm,
        )
        self.evaluators = [
            s.evaluation_matrix(c.points) for s, c in zip(self.spaces, conv.layers, strict=True)
        ]
        tr = cfg.training
        rates = self._rates()
        self.rule = make_rule(
            tr.rule,
            self.galerkin,
            rates,
            tr.dt,
            gamma=tr.gamma,
            schedule=setup.schedule,
            scheme=tr.scheme,
            form=tr.momentum_form,
        )
        theta0 = self.galerkin.interpolate(self._weight_init(), self._bias_init())
        self.state = self.rule.initial(theta0)

    def _rates(self) -> Array:
        g = self.galerkin
        rates = np.zeros(g.size)
        for m, (rw, rb) in enumerate(self.setup.dictionary.continuum_rates()):
            rates[g._w[m]] = rw
            rates[g._b[m]] = rb
        return rates

    def _weight_init(self):
        cfg, conv = self.setup.config, self.setup.convention
        expr = cfg.init.weight

        def w(m: int, xs: Array, ys: Array) -> Array:
            names = _names(conv.layers[m + 1], "x") + _names(conv.layers[m], "y")
            cols = [xs[:, k, None] for k in range(xs.shape[1])]
            cols += [ys[None, :, k] for k in range(ys.shape[1])]
            values = dict(zip(names, cols, strict=True))
            return np.broadcast_to(expr(m=m, **values), (len(xs), len(ys)))

        return w

    def _bias_init(self):
        cfg, conv = self.setup.config, self.setup.convention
        expr = cfg.init.bias

        def b(m: int, xs: Array) -> Array:
            names = _names(conv.layers[m + 1], "x")
            values = {n: xs[:, k] for k, n in enumerate(names)}
            return np.broadcast_to(expr(m=m, **values), (len(xs),))

        return b

    @property
    def t(self) -> float:
        return self.state.t

    def advance_to(self, t: float) -> None:
        while self.state.t < t - 1e-9 * self.rule.h:
            self.state = self.rule.step(self.state)
            if not np.all(np.isfinite(self.state.theta)):
                raise FloatingPointError(
                    f"continuum solve diverged at step {self.state.step} "
                    f"(t = {self.state.t:.6g}): fields became NaN or inf; reduce dt"
                )

    def lattice_fields(self) -> tuple[list[Array], list[Array]]:
        return self.galerkin.lattice_values(self.state.theta, self.evaluators)

    def cost(self) -> float:
        return self.galerkin.value(self.state.theta)

    def _layer_names(self, m: int) -> tuple[str, str, str, str]:
        p = f"/continuum/layer{m}"
        return f"{p}/coefficients", f"{p}/bias_coefficients", f"{p}/velocity", f"{p}/bias_velocity"

    def series(self) -> dict[str, tuple[int, ...]]:
        out = {}
        for m, shape in enumerate(self.galerkin._shapes):
            w, b, vw, vb = self._layer_names(m)
            out[w], out[b] = shape, (shape[0],)
            if self.state.velocity is not None:
                out[vw], out[vb] = shape, (shape[0],)
        return out

    def rows(self) -> dict[str, Array]:
        """The FE coefficients of every field (gathered: a collective call)."""
        out = {}
        w, b = self.galerkin.unpack(self.state.theta)
        vel = None
        if self.state.velocity is not None:
            vel = self.galerkin.unpack(self.state.velocity)
        for m in range(self.setup.network.depth):
            nw, nb, nvw, nvb = self._layer_names(m)
            out[nw], out[nb] = w[m], b[m]
            if vel is not None:
                out[nvw], out[nvb] = vel[0][m], vel[1][m]
        return out

    def static(self) -> dict[str, Array]:
        out = {}
        for m, s in enumerate(self.spaces):
            out[f"/continuum/space{m}/dof_coordinates"] = s.dof_coordinates
            out[f"/continuum/space{m}/degree"] = np.int64(s.degree)
        return out

    def read_state(self, h5, index: int) -> dict[str, Array]:
        """The coefficient arrays of output step ``index`` of an open ``fields.h5``."""
        return {name: np.array(h5[name][index]) for name in self.series()}

    def set_state(self, arrays: dict[str, Array], step: int) -> None:
        """Continue from coefficients read by :meth:`read_state` at training step ``step``."""
        depth = self.setup.network.depth
        names = [self._layer_names(m) for m in range(depth)]
        theta = self.galerkin.pack([arrays[n[0]] for n in names], [arrays[n[1]] for n in names])
        vel = None
        if self.state.velocity is not None:
            vel = self.galerkin.pack([arrays[n[2]] for n in names], [arrays[n[3]] for n in names])
        self.state = type(self.state)(step * self.rule.h, step, theta, vel)


def continuum_model(setup: DiscreteSetup, comm: MPI.Comm):
    """The continuum model for ``setup``, or None when the config disables it."""
    if not setup.config.continuum.enabled:
        return None
    return GalerkinModel(setup, comm)
