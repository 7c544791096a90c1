"""The continuum models of a discrete setup, built by their :mod:`continuum.models.registry`
entries.

* ``galerkin`` (dense networks of any depth, product convention) and ``unit-cell`` (banded
  layers, their ultra-local limit, alone or in series with dense ones): Galerkin fields of the
  layer kinds in series (:mod:`continuum.fields.galerkin`, :mod:`continuum.fields.layers`;
  with ``input_layer = "data-span"`` the input layer's field in the span of the data,
  :mod:`continuum.fields.dataspan`), stepped by the time scheme of the entry: the training rule's
  own (``matched``), Newton's method (``implicit``, :mod:`continuum.schemes.implicit`), the exact
  flow of one linear layer (``exponential``, :mod:`continuum.schemes.exponential`) or the flow
  to a tolerance (``adaptive``, :mod:`continuum.schemes.adaptive`);
* ``perceptron``: the linear one-layer perceptron's row-decoupled implicit solver with the
  factored kernel (``theta``, ``bdf2``; :mod:`continuum.fields.perceptron`);
* ``local``: probe data sets (Goldstein's chain, Klein–Gordon), the local wave equation
  (:mod:`continuum.fields.local`): Newmark for the damped dynamics, θ-method for the flow.

Every model offers :class:`continuum.models.model.ContinuumModel`.  Coefficient arrays go to
``fields.h5`` in DOLFINx's global order (owned blocks in rank order), which is what
``--resume`` reads back with the same number of ranks.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable, Sequence

import numpy as np
from mpi4py import MPI

from continuum.fem import distribution
from continuum.fem.quadrature import converged_quadrature, with_quadrature
from continuum.fem.spaces import FactorSpace, IndexSpace, NodalSpace, PointSpace
from continuum.fields.dataspan import DataSpan
from continuum.fields.galerkin import GalerkinNetwork
from continuum.fields.local import FlowSolver, LocalTheory, WaveSolver
from continuum.fields.perceptron import PerceptronProblem, PerceptronSolver
from continuum.io import layout
from continuum.models.coefficients import CoefficientModel, CoefficientPart, Evaluation
from continuum.models.model import ContinuumModel, MeshSolver
from continuum.models.registry import lookup, resolve_entry
from continuum.schemes.adaptive import AdaptiveFlow
from continuum.schemes.exponential import ExponentialFlow
from continuum.schemes.factored_flow import FactoredFlow, factored_pays
from continuum.schemes.implicit import ImplicitFlow, ImplicitMomentum
from discrete.conventions import Convention, LayerCoordinates, coordinate_names
from discrete.cost import accuracy
from discrete.errors import reference_size
from discrete.experiment import DiscreteSetup
from discrete.expressions import Expression
from discrete.training import Rule, make_rule
from meshes import interval, unit_square

Array = np.ndarray


def coordinate_spaces(
    layers: Sequence[LayerCoordinates], cells: int, degree: int, quadrature: str = "gauss"
) -> list[FactorSpace | IndexSpace]:
    """The FE space of every neuron layer's coordinate domain (replicated on every rank);
    layers on the same domain (the interval, the square) share one space, a
    :class:`~continuum.fem.spaces.NodalSpace` with ``quadrature = "nodal"``."""
    shared: dict[str, FactorSpace] = {}
    spaces: list[FactorSpace | IndexSpace] = []
    for coords in layers:
        if coords.index:
            spaces.append(IndexSpace.of_size(coords.size))
            continue
        if coords.size == 1:
            spaces.append(PointSpace(coords.points[0]))
            continue
        if coords.layout not in shared:
            comm = MPI.COMM_SELF
            domain = interval(comm, cells) if coords.layout == "line" else unit_square(comm, cells)
            space = NodalSpace if quadrature == "nodal" else FactorSpace
            shared[coords.layout] = space(domain, degree)
        spaces.append(shared[coords.layout])
    return spaces


def _names(coords: LayerCoordinates, prefix: str) -> list[str]:
    return list(coordinate_names(coords.layout, prefix))


def data_function(expr: Expression, coords: LayerCoordinates, prefix: str):
    """``(points (n, d), samples (L,)) -> (n, L)`` values of a data expression."""
    names = _names(coords, prefix)

    def f(points: Array, samples: Array) -> Array:
        values = {n: points[:, k, None] for k, n in enumerate(names)}
        out = expr(l=np.asarray(samples)[None, :], **values)
        return np.broadcast_to(out, (len(points), len(samples))).copy()

    return f


def array_function(values: Array):
    """``(points (n, 1), samples (L,)) -> (n, L)`` of data rows ``values`` (L, d) on an index
    layer, whose points are the indices ``0 … d − 1``."""

    def f(points: Array, samples: Array) -> Array:
        return values[np.asarray(samples)][:, points[:, 0].astype(int)].T

    return f


def _continuum_dt(cfg) -> float:
    return cfg.continuum.dt or cfg.training.dt


GalerkinFields = GalerkinNetwork
"""The fields of a Galerkin model: its layer kinds in series."""


def matched_rule(galerkin: GalerkinFields, setup: DiscreteSetup) -> Rule:
    """``scheme = "matched"``: the training rule's own scheme and step, on the same sample
    schedule; the flow keeps its weight forces factored (the same RK4, fewer passes over the
    coefficients) where that is faster: a large network whose forces' rank, the samples, is low
    against its blocks (:func:`~continuum.schemes.factored_flow.factored_pays`)."""
    tr = setup.config.training
    if tr.rule == "flow" and factored_pays(galerkin.shapes, setup.data.samples):
        return FactoredFlow(galerkin, setup.dictionary.continuum_rates(), tr.dt)
    return make_rule(
        tr.rule,
        galerkin,
        galerkin.per_group(setup.dictionary.continuum_rates()),
        tr.dt,
        gamma=tr.gamma,
        schedule=setup.schedule,
        scheme=tr.momentum_scheme,
        form=tr.momentum_form,
    )


def exponential_rule(galerkin: GalerkinFields, setup: DiscreteSetup) -> Rule:
    """``scheme = "exponential"``: the exact flow of one layer with a linear output."""
    return ExponentialFlow(galerkin, setup.dictionary.continuum_rates()[0], setup.dt)


def adaptive_rule(galerkin: GalerkinFields, setup: DiscreteSetup) -> Rule:
    """``scheme = "adaptive"``: the full-batch flow to ``[continuum] tolerance``."""
    rates = galerkin.per_group(setup.dictionary.continuum_rates())
    return AdaptiveFlow(galerkin, rates, setup.dt, setup.config.continuum.tolerance)


def implicit_rule(galerkin: GalerkinFields, setup: DiscreteSetup) -> Rule:
    """``scheme = "implicit"``: Newton (SNES) θ-method of the flow or implicit midpoint of the
    damped dynamics, at ``[continuum] dt``."""
    cfg = setup.config
    rates = galerkin.per_group(setup.dictionary.continuum_rates())
    if cfg.training.rule == "momentum":
        return ImplicitMomentum(galerkin, rates, _continuum_dt(cfg), cfg.training.gamma)
    return ImplicitFlow(galerkin, rates, _continuum_dt(cfg), cfg.continuum.theta)


def fields_fingerprint(setup: DiscreteSetup, comm: MPI.Comm) -> tuple:
    """What the Galerkin fields of ``setup`` are built from, for the quadrature check's record
    (:data:`continuum.fem.quadrature.VERIFIED_RULES`): the network, coordinates, data and initial
    sections (expressions compare by their text), the FE degree, mesh and input layer, the
    number of ranks, and for tabular data a digest of the rows themselves."""
    cfg = setup.config
    rows = b""
    if cfg.data.kind in ("dataset", "file"):
        digest = hashlib.sha256(np.ascontiguousarray(setup.data.X).tobytes())
        digest.update(np.ascontiguousarray(setup.data.Y).tobytes())
        rows = digest.digest()
    c = cfg.continuum
    return (
        cfg.network,
        cfg.coordinates,
        cfg.data,
        cfg.init,
        (c.degree, c.cells, c.input_layer),
        comm.size,
        rows,
    )


class GalerkinModel(CoefficientModel[GalerkinFields, Array | None]):
    """The continuum run beside a discrete one: same rule, same dt, same sample schedule; its
    coefficient parts are the layers ``layer{m}`` (:class:`CoefficientModel`)."""

    spaces: Sequence[FactorSpace | IndexSpace | DataSpan]

    def __init__(
        self,
        setup: DiscreteSetup,
        comm: MPI.Comm,
        time_scheme: Callable[[GalerkinFields, DiscreteSetup], Rule],
    ):
        cfg = setup.config
        conv = setup.convention
        tabular = cfg.data.kind in ("dataset", "file")
        self.setup = setup
        if tabular:
            inputs, targets = array_function(setup.data.X), array_function(setup.data.Y)
        else:
            inputs = data_function(cfg.data.input, conv.layers[0], "y")
            targets = data_function(cfg.data.target, conv.layers[-1], "x")
        span = cfg.continuum.input_layer == "data-span"
        layers = conv.layers[1:] if span else conv.layers
        degree = cfg.continuum.degree
        quadrature = cfg.continuum.quadrature
        mesh_spaces = coordinate_spaces(layers, cfg.continuum.cells, degree, quadrature)
        self.distribution = self._distribution(mesh_spaces, span, comm)
        fields = functools.partial(
            GalerkinNetwork,
            loss=setup.cost.loss,
            distribution=self.distribution,
            weights=conv.weights,
        )

        data_span: list[DataSpan] = []  # built once, moved to each rule's points

        def build(quadrature_degree: int | None) -> GalerkinFields:
            """The fields with Gauss rules of ``quadrature_degree`` (``None``: the spaces' own)."""
            spaces: list[FactorSpace | IndexSpace | DataSpan] = list(
                mesh_spaces
                if quadrature_degree is None
                else with_quadrature(mesh_spaces, quadrature_degree)
            )
            if span:
                if not data_span:
                    data_span.append(self._data_span(inputs, spaces[0]))
                spaces.insert(0, data_span[0].at_points(spaces[0].quadrature_points))
            return fields(setup.network, spaces, inputs, targets, setup.data.samples, comm)

        # the nodal rule is fixed by the nodes: no Gauss rule to check
        self.galerkin = (
            build(None)
            if quadrature == "nodal"
            else converged_quadrature(
                build,
                lambda g: g.interpolate(self._weight_init(), self._bias_init()),
                degree,
                setup.network.activation.smooth,
                fields_fingerprint(setup, comm),
                cfg.continuum.quadrature_tolerance,
            )
        )
        self.spaces = self.galerkin.spaces
        self.rule = time_scheme(self.galerkin, setup)
        theta0 = self.galerkin.interpolate(self._weight_init(), self._bias_init())
        self.state = self.rule.initial(theta0)
        self.reference = reference_size(theta0)  # of the growth check (discrete/errors.py)

    def _distribution(self, spaces: list, span: bool, comm: MPI.Comm) -> str:
        """``[continuum] distribute`` resolved by the rule of :mod:`continuum.fem.distribution`
        (the columns of one gradient: the batch of an SGD step, else all samples), and the
        run-header line :attr:`split` that names it."""
        setup = self.setup
        requested = setup.config.continuum.distribute
        columns = setup.data.samples if setup.schedule is None else setup.schedule.shape[1]
        largest = max([s.size for s in spaces] + ([setup.data.samples] if span else []))
        chosen = distribution.choose(requested, columns, largest, lookup(setup.config).samples)
        self.split = distribution.describe(chosen, requested, comm.size, columns, largest)
        return chosen

    def _data_span(self, inputs, output: FactorSpace | IndexSpace | DataSpan) -> DataSpan:
        """``[continuum] input_layer = "data-span"``: ``w^(0)`` in ``V_1 ⊗ span{X^l}``."""
        conv = self.setup.convention
        weight = self._weight_init()
        return DataSpan(
            inputs,
            self.setup.data.samples,
            lambda x, y: weight(0, x, y),
            conv.layers[0].points.shape[1],
            output.quadrature_points,
        )

    def _lattice(self, convention: Convention) -> tuple[list[Evaluation], Array | None]:
        """Point-evaluation matrices at the lattice of ``convention`` (shared by layers with
        one space and one lattice), and the data span's offset ``w^(0)(0)`` there."""
        matrices: dict[tuple[int, bytes], Evaluation] = {}
        evaluators = []
        for s, c in zip(self.spaces, convention.layers, strict=True):
            key = (id(s), c.points.tobytes())
            if key not in matrices:
                matrices[key] = s.evaluation_matrix(c.points)
            evaluators.append(matrices[key])
        span = self.spaces[0] if isinstance(self.spaces[0], DataSpan) else None
        layers = convention.layers
        offset = None if span is None else span.initial_field(layers[1].points, layers[0].points)
        return evaluators, offset

    def _lattice_values(
        self, evaluators: list[Evaluation], offset: Array | None
    ) -> tuple[list[Array], list[Array]]:
        """The fields at a lattice: the coefficient part plus the data span's offset."""
        w, b = self.galerkin.lattice_values(self.state.theta, evaluators)
        if offset is not None:
            w[0] = w[0] + offset
        return w, b

    def node_lattice(self) -> Convention:
        """The lattice of the continuum's own neurons, with ``quadrature = "nodal"``: on every
        coordinate layer the DOF coordinates ``x_a`` with the GLL measure ``ω_a``, on index and
        one-neuron layers their own points (docs/physics.md "Nodal quadrature").

        With nodal quadrature the coefficients are the fields at the nodes, and they evolve as
        the neurons of a network whose sums over a layer are the GLL rule (a Nyström
        discretisation): their error is the rule's alone, ``O(ρ^{−2p})`` on the Bernstein
        ellipse of an analytic integrand, where a field between the nodes adds the
        interpolation error ``O(ρ^{−p})``.  The lattice L2 norm over this lattice is the norm
        in which a network's error is measured over its own neurons (``Σ Δx_i Δy_j d_ij²``
        with ``Δx = ω``)."""
        if self.setup.config.continuum.quadrature != "nodal":
            raise ValueError(
                "the node lattice is the quadrature's only with [continuum] quadrature = 'nodal'"
            )
        if isinstance(self.spaces[0], DataSpan):
            raise ValueError(
                "the node lattice needs every layer on a mesh or an index set; the input layer "
                "is in the span of the data ([continuum] input_layer = 'data-span')"
            )
        layers = []
        for space, coords in zip(self.spaces, self.setup.convention.layers, strict=True):
            if isinstance(space, NodalSpace):
                coords = dataclasses.replace(
                    coords,
                    points=space.quadrature_points,
                    measure=space.quadrature_weights,
                    shape=(space.size,),
                )
            layers.append(coords)
        return Convention(tuple(layers), self.setup.convention.weights)

    def _weight_init(self):
        cfg, conv = self.setup.config, self.setup.convention

        def w(m: int, xs: Array, ys: Array) -> Array:
            expr = cfg.init.layer_weight(m)
            names = _names(conv.layers[m + 1], "x") + _names(conv.layers[m], "y")
            cols = [xs[:, k, None] for k in range(xs.shape[1])]
            cols += [ys[None, :, k] for k in range(ys.shape[1])]
            values = dict(zip(names, cols, strict=True))
            return np.broadcast_to(expr(m=m, **values), (len(xs), len(ys)))

        return w

    def _bias_init(self):
        cfg, conv = self.setup.config, self.setup.convention

        def b(m: int, xs: Array) -> Array:
            expr = cfg.init.layer_bias(m)
            names = _names(conv.layers[m + 1], "x")
            values = {n: xs[:, k] for k, n in enumerate(names)}
            return np.broadcast_to(expr(m=m, **values), (len(xs),))

        return b

    def held_out(self) -> dict[str, float]:
        """The continuum classifier's accuracy on the training rows and its cost and accuracy
        on the test rows (tabular data on index layers, docs/physics.md "Index layers"; else
        nothing)."""
        data, g = self.setup.data, self.galerkin
        if self.setup.config.data.kind not in ("dataset", "file"):
            return {}
        assert data.X is not None and data.Y is not None  # tabular data
        out: dict[str, float] = {}
        if data.classes:
            out["accuracy_train"] = accuracy(g.outputs(self.state.theta, data.X.T).T, data.Y)
        if data.tested:
            assert data.X_test is not None and data.Y_test is not None
            Z = g.outputs(self.state.theta, data.X_test.T)
            weights = g.spaces[-1].quadrature_weights
            out["cost_test"] = float(np.mean(g.loss.per_sample(Z, data.Y_test.T, weights, axis=0)))
            if data.classes:
                out["accuracy_test"] = accuracy(Z.T, data.Y_test)
        return out

    def coefficient_parts(self) -> list[CoefficientPart]:
        """``layer{m}``: the coefficients of ``w^(m)`` and ``b^(m)``, one part per layer."""
        return [
            CoefficientPart.named(f"layer{m}", shape, (shape[0],))
            for m, shape in enumerate(self.galerkin.shapes)
        ]


def gather_owned(comm: MPI.Comm, owned: Array) -> Array:
    """Owned blocks of a distributed array, concatenated in rank order (global order)."""
    return np.concatenate(comm.allgather(np.asarray(owned)))


def owned_part(comm: MPI.Comm, full: Array, counts: Array) -> Array:
    start = int(np.sum(counts[: comm.rank]))
    return full[start : start + counts[comm.rank]]


class MeshSolverModel:
    """A continuum model around a DOLFINx solver that owns its state (the :class:`MeshSolver`
    contract): ``fields.h5`` stores every named field of the state, gathered in global order,
    at :func:`continuum.io.layout.mesh_state`, and a resume at training step ``n`` continues
    the solver from them at its own step ``round(n Δt_training / Δt)``."""

    solver: MeshSolver
    dt: float
    comm: MPI.Comm
    _static: dict[str, Array]

    def _declare_state(self, training_dt: float) -> None:
        """Record the per-rank counts and the global shapes of the solver's state."""
        self.training_dt = training_dt
        state = self.solver.state()
        self.counts = np.array(self.comm.allgather(len(next(iter(state.values())))))
        total = int(self.counts.sum())
        self._shapes = {layout.mesh_state(name): (total, *a.shape[1:]) for name, a in state.items()}

    @property
    def t(self) -> float:
        return self.solver.t

    def advance_to(self, t: float) -> None:
        self.solver.advance(max(0, round((t - self.t) / self.dt)))

    def series(self) -> dict[str, tuple[int, ...]]:
        return dict(self._shapes)

    def rows(self) -> dict[str, Array]:
        return {
            layout.mesh_state(name): gather_owned(self.comm, a)
            for name, a in self.solver.state().items()
        }

    def static(self) -> dict[str, Array]:
        """FE data gathered at construction (``static`` is called on rank 0 alone)."""
        return self._static

    def read_state(self, h5, index: int) -> dict[str, Array]:
        return {name: np.array(h5[name][index]) for name in self.series()}

    def set_state(self, arrays: dict[str, Array], step: int) -> None:
        state = {
            name: owned_part(self.comm, arrays[layout.mesh_state(name)], self.counts)
            for name in self.solver.state()
        }
        self.solver.load_state(state, round(step * self.training_dt / self.dt))


class PerceptronModel(MeshSolverModel):
    """The linear perceptron's field theory solved implicitly (θ-method or BDF2)."""

    solver: PerceptronSolver

    def __init__(self, setup: DiscreteSetup, comm: MPI.Comm):
        cfg = setup.config
        conv = setup.convention
        x_in, x_out = conv.layers[0], conv.layers[-1]
        inputs = cfg.data.input
        targets = cfg.data.target
        w0, b0 = cfg.init.layer_weight(0), cfg.init.layer_bias(0)
        problem = PerceptronProblem(
            inputs=lambda y, l: inputs(y=y, l=l),
            targets=lambda x, l: targets(x=x, l=l),
            samples=setup.data.samples,
            w0=lambda x, y: w0(x=x, y=y, m=0),
            b0=lambda x: b0(x=x, m=0),
            lr=setup.dictionary.lr,
            bias=setup.network.bias,
        )
        self.dt = cfg.continuum.dt or cfg.training.dt
        self.comm = comm
        assert cfg.continuum.scheme is not None  # resolved by the registry (continuum_model)
        self.solver = PerceptronSolver(
            problem,
            comm,
            cfg.continuum.cells,
            cfg.continuum.degree,
            cfg.continuum.scheme,
            cfg.continuum.theta,
            self.dt,
            quadrature_tolerance=cfg.continuum.quadrature_tolerance,
        )
        self.x, self.y = x_out.points[:, 0], x_in.points[:, 0]
        self.degree = cfg.continuum.degree
        self._declare_state(setup.dt)
        owned = len(self.solver.W)
        x_dofs = self.solver.output_space.tabulate_dof_coordinates()[:owned, :1]
        self._static = {  # gathered here: static() is called on rank 0 alone
            layout.dof_coordinates(layout.space(1)): gather_owned(comm, x_dofs),
            layout.dof_coordinates(layout.space(0)): (
                self.solver.input_space.tabulate_dof_coordinates()[:, :1]
            ),
            layout.degree(layout.space(0)): np.asarray(self.degree, dtype=np.int64),
        }

    def lattice_fields(self) -> tuple[list[Array], list[Array]]:
        w, b = self.solver.evaluate(self.x, self.y)
        return [w], [b]

    def evaluate_lattice(self, convention) -> tuple[list[Array], list[Array]]:
        w, b = self.solver.evaluate(
            convention.layers[-1].points[:, 0], convention.layers[0].points[:, 0]
        )
        return [w], [b]

    def cost(self) -> float:
        return self.solver.cost()


class LocalModel(MeshSolverModel):
    """Probe data sets: the local theory ``ρ(ẅ + γẇ) − ∂(κ ∂w) + m² w = 0`` on Ω_0."""

    solver: WaveSolver | FlowSolver

    def __init__(self, setup: DiscreteSetup, comm: MPI.Comm):
        cfg, conv = setup.config, setup.convention
        p = setup.probe_factors
        assert p is not None  # the model of probe data sets
        rate = setup.dictionary.continuum_rates()[0][0]
        self.theory = LocalTheory.constant(
            p.stiffness,
            p.mass,
            0.0,
            density=1.0 / rate,
            gamma=cfg.training.gamma,
            periodic=conv.layers[0].placement == "periodic",
        )
        x0 = float(conv.layers[1].points[0, 0])
        weight = cfg.init.layer_weight(0)
        w0 = lambda y: np.broadcast_to(weight(x=x0, y=y, m=0), np.shape(y))  # noqa: E731
        self.dt = cfg.continuum.dt or cfg.training.dt
        c = cfg.continuum
        if cfg.continuum.scheme == "newmark":
            self.solver = WaveSolver(self.theory, comm, c.cells, c.degree, self.dt, w0)
        else:
            self.solver = FlowSolver(self.theory, comm, c.cells, c.degree, self.dt, w0, c.theta)
        self.comm = comm
        self.y = conv.layers[0].points[:, 0]
        self._declare_state(setup.dt)
        owned = int(self.counts[comm.rank])
        y_dofs = self.solver.fem.V.tabulate_dof_coordinates()[:owned]
        self._static = {layout.dof_coordinates(layout.space(0)): gather_owned(comm, y_dofs)}

    def lattice_fields(self) -> tuple[list[Array], list[Array]]:
        return [self.solver.evaluate(self.y)[None, :]], [np.zeros(1)]

    def evaluate_lattice(self, convention) -> tuple[list[Array], list[Array]]:
        return [self.solver.evaluate(convention.layers[0].points[:, 0])[None, :]], [np.zeros(1)]

    def cost(self) -> float:
        return self.solver.potential()


CHECKED_MODELS: tuple[type[ContinuumModel], ...] = (GalerkinModel, PerceptronModel, LocalModel)
"""The models of this module as :class:`~continuum.models.model.ContinuumModel` s: mypy checks
each class against the protocol here."""


def galerkin_matched(setup: DiscreteSetup, comm: MPI.Comm) -> GalerkinModel:
    return GalerkinModel(setup, comm, matched_rule)


def galerkin_exponential(setup: DiscreteSetup, comm: MPI.Comm) -> GalerkinModel:
    return GalerkinModel(setup, comm, exponential_rule)


def galerkin_adaptive(setup: DiscreteSetup, comm: MPI.Comm) -> GalerkinModel:
    return GalerkinModel(setup, comm, adaptive_rule)


def galerkin_jax(setup: DiscreteSetup, comm: MPI.Comm) -> GalerkinModel:
    """The RK4 flow compiled with JAX (:mod:`continuum.schemes.jax_flow`, imported here: jax
    is an optional dependency)."""
    from continuum.schemes.jax_flow import jax_rule

    return GalerkinModel(setup, comm, jax_rule)


def galerkin_jax_adaptive(setup: DiscreteSetup, comm: MPI.Comm) -> GalerkinModel:
    """The flow to a tolerance compiled with JAX (:mod:`continuum.schemes.jax_adaptive`)."""
    from continuum.schemes.jax_adaptive import jax_adaptive_rule

    return GalerkinModel(setup, comm, jax_adaptive_rule)


def galerkin_implicit(setup: DiscreteSetup, comm: MPI.Comm) -> GalerkinModel:
    return GalerkinModel(setup, comm, implicit_rule)


def sgd_moments(setup: DiscreteSetup, comm: MPI.Comm):
    """The SGD law of a linear layer (:mod:`continuum.fields.fluctuations`; replicated on every
    rank)."""
    from continuum.fields.fluctuations import MomentsModel

    return MomentsModel(setup)


def sme_path(setup: DiscreteSetup, comm: MPI.Comm):
    """One path of the stochastic modified equation (:mod:`continuum.fields.fluctuations`)."""
    from continuum.fields.fluctuations import PathModel

    return PathModel(setup)


def continuum_model(setup: DiscreteSetup, comm: MPI.Comm):
    """The continuum model of ``setup``, looked up in :mod:`continuum.models.registry` (None when
    ``[continuum] enabled = false``).

    Raises:
        ConfigError: no registered model and scheme solve this run.
    """
    config, entry = resolve_entry(setup.config)
    if entry is None:
        return None
    if config is not setup.config:
        setup = dataclasses.replace(setup, config=config)
    return entry.builder()(setup, comm)
