"""The discrete side of an experiment, built from a validated configuration.

One call, :func:`build`, turns a validated configuration (a
:class:`~discrete.config.DiscreteConfig`, or the whole :class:`continuum.settings.Config`) into
the network, the indexing convention, the data set, the dictionary, the cost, the training rule
and the initial parameters — every random choice seeded from the config.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .activations import activation
from .config import ConfigError, DiscreteConfig, draws_batches
from .conventions import Convention, LayerCoordinates, coordinate_names
from .cost import Cost, loss
from .data import DataSet, ProbeFactors, coordinate_values, from_expressions, probes, read_arrays
from .datasets import DataError, bundled, split
from .dictionary import ScalingDictionary
from .expressions import Expression
from .network import Banded, Connectivity, Dense, Network
from .residual import ResidualNetwork, layer_formula, neuron_layouts
from .training import Rule, make_rule, sample_schedule

Array = np.ndarray


@dataclass
class DiscreteSetup[C: DiscreteConfig]:
    """Everything the discrete run needs, and what the continuum limit reads from it;
    ``config`` is the configuration it was built from (with the continuum's sections when the
    continuum side built it)."""

    config: C
    network: Network
    convention: Convention
    data: DataSet
    probe_factors: ProbeFactors | None
    dictionary: ScalingDictionary
    cost: Cost
    rule: Rule
    theta0: Array
    schedule: Array | None

    @property
    def steps(self) -> int:
        return self.config.training.steps

    @property
    def dt(self) -> float:
        return self.config.training.dt


def network_from_config(config: DiscreteConfig) -> Network:
    net = config.network
    if net.architecture == "residual":
        assert net.depth is not None, "a residual [network] has a depth"
        return ResidualNetwork(
            list(net.widths),
            activation(net.activation, net.quadratic),
            net.depth,
            net.bias,
            net.output,
        )
    conn: list[Connectivity] = [
        Banded(tuple(net.offsets), net.ends) if c == "banded" else Dense() for c in net.connectivity
    ]
    return Network(
        list(net.widths), activation(net.activation, net.quadratic), conn, net.bias, net.output
    )


def data_from_config(
    config: DiscreteConfig, network: Network, convention: Convention
) -> tuple[DataSet, ProbeFactors | None]:
    d = config.data
    inputs, outputs = convention.layers[0], convention.layers[-1]
    if d.kind == "probes":
        return probes(inputs, outputs.size, d.stiffness, d.mass)
    if d.kind in ("file", "dataset"):
        return tabular_data(config, network), None
    assert d.samples is not None, "an expression data set has a sample count"
    return from_expressions(d.input, d.target, d.samples, inputs, outputs, d.noise, d.seed), None


def tabular_data(config: DiscreteConfig, network: Network) -> DataSet:
    """The training and test rows of a bundled set or a file (:mod:`discrete.datasets`)."""
    d = config.data
    if d.kind == "dataset":
        source, table = f"data set {d.name!r}", bundled(d.name)
    else:
        assert d.path is not None, "a file data set has a path"
        source, table = (
            f"file: {d.path}",
            read_arrays(d.path, network.widths[0], network.widths[-1]),
        )
    try:
        rows = split(table, d.samples, d.test, d.standardize, d.seed, d.scale)
    except DataError as exc:
        raise ConfigError(f"{config.source}: [data] {exc.key}: {exc}") from None
    scaled = ", standardized" if d.standardize else ""
    description = (
        f"{source}: {rows.X.shape[0]} training rows, {rows.X_test.shape[0]} test rows{scaled}"
    )
    return DataSet(rows.X, rows.Y, description, rows.X_test, rows.Y_test, rows.classes)


def _weight_variables(out: LayerCoordinates, inp: LayerCoordinates, pts: Array) -> dict:
    names = coordinate_names(out.layout, "x") + coordinate_names(inp.layout, "y")
    return {name: pts[..., k] for k, name in enumerate(names)}


def field_values(
    formula: Expression | tuple[Expression, ...], convention: Convention, network: Network, m: int
) -> Array:
    """The weight field ``w^(m)`` of a formula at every stored weight's ``(x_i, y_j)`` (and,
    for a residual block, its depth ``τ_k``)."""
    expr, layer = layer_formula(formula, network, m)
    pts = convention.product_points(network, m)
    values = _weight_variables(convention.layers[m + 1], convention.layers[m], pts)
    return np.broadcast_to(expr(**values, **layer), network.layers[m].weight_shape)


def bias_values(
    formula: Expression | tuple[Expression, ...], convention: Convention, network: Network, m: int
) -> Array:
    expr, layer = layer_formula(formula, network, m)
    out = convention.layers[m + 1]
    return np.broadcast_to(expr(**coordinate_values(out, "x"), **layer), (out.size,))


def initial_parameters(config: DiscreteConfig, network: Network, convention: Convention) -> Array:
    """θ₀ from the initial fields ``w(x, y, m)``, ``b(x, m)`` (``W = Δy w``); for
    ``kind = "random"`` plus ``scale`` times seeded standard normal noise on ``w`` and ``b``."""
    init = config.init
    w = [field_values(init.weight, convention, network, m) for m in range(network.depth)]
    b = [bias_values(init.bias, convention, network, m) for m in range(network.depth)]
    if init.kind == "random":
        rng = np.random.default_rng(init.seed)
        w = [wm + init.scale * rng.standard_normal(wm.shape) for wm in w]
        b = [bm + init.scale * rng.standard_normal(bm.shape) for bm in b]
    return convention.from_fields(network, w, b)


def _texts(formula: Expression | tuple[Expression, ...]) -> str:
    if isinstance(formula, tuple):
        return "[" + ", ".join(repr(f.text) for f in formula) + "]"
    return repr(formula.text)


def check_initial_cost(config: DiscreteConfig, cost: Cost, theta0: Array) -> None:
    """Refuse initial parameters whose cost ``C(θ₀)`` is not a finite number.

    The cost is a sum of squared residuals, so ``|θ₀| ≳ 1e154`` (a huge ``[init] scale`` or
    formula) overflows before the first step; no choice of dt or lr can help.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        finite = bool(np.all(np.isfinite(theta0))) and np.isfinite(cost.value(theta0))
    if not finite:
        init = config.init
        scale = f"scale = {init.scale:g}, " if init.kind == "random" else ""
        raise ConfigError(
            f"{config.source}: [init] {scale}weight = {_texts(init.weight)}, bias = "
            f"{_texts(init.bias)}: the initial cost C(θ₀) is not a finite number (the initial "
            "parameters are too large or not finite); choose a smaller initial state"
        )


def build[C: DiscreteConfig](config: C) -> DiscreteSetup[C]:
    """The discrete experiment described by ``config``."""
    network = network_from_config(config)
    coords = config.coordinates
    layouts = neuron_layouts(network, coords.layout)
    convention = Convention.build(network, coords.placement, layouts, coords.weights, coords.seed)
    data, factors = data_from_config(config, network, convention)
    tr = config.training
    dictionary = ScalingDictionary(network, convention, tr.lr, tr.gamma, tr.metric)
    cost = Cost(network, data, convention.layers[-1].measure, loss(config.network.loss))
    schedule = (
        sample_schedule(data.samples, tr.batch, tr.steps, tr.seed, tr.sampling)
        if draws_batches(tr)
        else None
    )
    rule = make_rule(
        tr.rule,
        cost,
        dictionary.rates(),
        tr.dt,
        gamma=tr.gamma,
        schedule=schedule,
        scheme=tr.momentum_scheme,
        form=tr.momentum_form,
    )
    theta0 = initial_parameters(config, network, convention)
    check_initial_cost(config, cost, theta0)
    return DiscreteSetup(
        config, network, convention, data, factors, dictionary, cost, rule, theta0, schedule
    )
