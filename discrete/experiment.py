"""The discrete side of an experiment, built from a validated configuration.

One call, :func:`build`, turns a :class:`~discrete.config.Config` into the network, the
indexing convention, the data set, the dictionary, the cost, the training rule and the
initial parameters — every random choice seeded from the config.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .activations import activation
from .config import Config, ConfigError
from .conventions import Convention, LayerCoordinates
from .cost import Cost
from .data import DataSet, ProbeFactors, coordinate_values, from_expressions, from_file, probes
from .dictionary import ScalingDictionary
from .expressions import Expression
from .network import Banded, Connectivity, Dense, Network
from .training import Rule, make_rule, sample_schedule

Array = np.ndarray


@dataclass
class DiscreteSetup:
    """Everything the discrete run needs, and what the continuum limit reads from it."""

    config: Config
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


def network_from_config(config: Config) -> Network:
    net = config.network
    conn: list[Connectivity] = [
        Banded(tuple(net.offsets), net.ends) if c == "banded" else Dense() for c in net.connectivity
    ]
    return Network(
        list(net.widths), activation(net.activation, net.quadratic), conn, net.bias, net.output
    )


def data_from_config(
    config: Config, network: Network, convention: Convention
) -> tuple[DataSet, ProbeFactors | None]:
    d = config.data
    inputs, outputs = convention.layers[0], convention.layers[-1]
    if d.kind == "probes":
        return probes(inputs, outputs.size, d.stiffness, d.mass)
    if d.kind == "file":
        return from_file(d.path, network.widths[0], network.widths[-1]), None
    return from_expressions(d.input, d.target, d.samples, inputs, outputs, d.noise, d.seed), None


def _weight_variables(out: LayerCoordinates, inp: LayerCoordinates, pts: Array) -> dict:
    names = (["x"] if out.layout == "line" else ["x1", "x2"]) + (
        ["y"] if inp.layout == "line" else ["y1", "y2"]
    )
    return {name: pts[..., k] for k, name in enumerate(names)}


def field_values(expr: Expression, convention: Convention, network: Network, m: int) -> Array:
    """The weight field ``w^(m)`` of an expression at every stored weight's ``(x_i, y_j)``."""
    pts = convention.product_points(network, m)
    values = _weight_variables(convention.layers[m + 1], convention.layers[m], pts)
    return np.broadcast_to(expr(m=m, **values), network.layers[m].weight_shape)


def bias_values(expr: Expression, convention: Convention, m: int) -> Array:
    out = convention.layers[m + 1]
    return np.broadcast_to(expr(m=m, **coordinate_values(out, "x")), (out.size,))


def initial_parameters(config: Config, network: Network, convention: Convention) -> Array:
    """θ₀ from the initial fields ``w(x, y, m)``, ``b(x, m)`` (``W = Δy w``); for
    ``kind = "random"`` plus ``scale`` times seeded standard normal noise on ``w`` and ``b``."""
    init = config.init
    w = [field_values(init.weight, convention, network, m) for m in range(network.depth)]
    b = [bias_values(init.bias, convention, m) for m in range(network.depth)]
    if init.kind == "random":
        rng = np.random.default_rng(init.seed)
        w = [wm + init.scale * rng.standard_normal(wm.shape) for wm in w]
        b = [bm + init.scale * rng.standard_normal(bm.shape) for bm in b]
    return convention.from_fields(network, w, b)


def check_initial_cost(config: Config, cost: Cost, theta0: Array) -> None:
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
            f"{config.source}: [init] {scale}weight = {init.weight.text!r}, bias = "
            f"{init.bias.text!r}: the initial cost C(θ₀) is not a finite number (the initial "
            "parameters are too large or not finite); choose a smaller initial state"
        )


def build(config: Config) -> DiscreteSetup:
    """The discrete experiment described by ``config``."""
    network = network_from_config(config)
    coords = config.coordinates
    convention = Convention.build(network, coords.placement, coords.layout, coords.weights)
    data, factors = data_from_config(config, network, convention)
    tr = config.training
    dictionary = ScalingDictionary(network, convention, tr.lr, tr.gamma, tr.metric)
    cost = Cost(network, data, convention.layers[-1].measure)
    schedule = (
        sample_schedule(data.samples, tr.batch, tr.steps, tr.seed) if tr.rule == "sgd" else None
    )
    rule = make_rule(
        tr.rule,
        cost,
        dictionary.rates(),
        tr.dt,
        gamma=tr.gamma,
        schedule=schedule,
        scheme=tr.scheme,
        form=tr.momentum_form,
    )
    theta0 = initial_parameters(config, network, convention)
    check_initial_cost(config, cost, theta0)
    return DiscreteSetup(
        config, network, convention, data, factors, dictionary, cost, rule, theta0, schedule
    )
