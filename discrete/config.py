"""Experiment configuration, discrete side: TOML files read with :mod:`tomllib` and validated
strictly against the key declarations of :mod:`discrete.schema`.

The discrete configuration has the sections ``[experiment]``, ``[network]``, ``[coordinates]``,
``[data]``, ``[init]`` and ``[training]``; each becomes a frozen dataclass whose fields are
exactly the keys the section declares (its ``*_KEYS`` tuple: one :class:`~discrete.schema.Key`
per key, with its kind, default, choices or sign and doc). Only ``[network] widths`` is
required; every other key has a default. The continuum side adds ``[continuum]`` and
``[output]`` (:mod:`continuum.settings`: a subclass of :class:`DiscreteConfig` that declares them
and reads them through :func:`build_config`); the loaders here refuse those sections, as every
section they do not declare. Every failure raises a :class:`ConfigError` naming the file, the
``[section] key`` and the problem:

* unknown sections and keys are rejected, with a suggestion for likely typos;
* types are checked exactly (a boolean is not an integer; an integer is accepted where a float
  is expected; lists are checked element by element) and choices are listed when violated;
* formulas are parsed with :func:`discrete.expressions.parse_expression` over the variables
  their section allows, so an unsafe or malformed formula fails when the file is read;
* keys that depend on each other (grid layouts and widths, banded-only weight maps, batch and
  sample counts, ``steps`` and ``t_end``) are checked together, by the section's parser.

:func:`default_config` returns the discrete part of the built-in experiment, a linear
perceptron (:data:`DEFAULT_TOML`).
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Self

from .activations import ACTIVATIONS
from .conventions import LAYOUTS, PLACEMENTS, WEIGHT_CONVENTIONS
from .cost import LOSSES
from .datasets import DATASETS
from .expressions import Expression, ExpressionError, parse_expression
from .schema import (
    REQUIRED,
    ConfigError,
    Key,
    Section,
    check_keys,
    one_of,
    show,
    suggestion,
)
from .training import MOMENTUM_FORMS, MOMENTUM_SCHEMES, RULES, SAMPLINGS

ARCHITECTURES = ("feedforward", "residual")
OUTPUTS = ("identity", "activation")
CONNECTIVITIES = ("dense", "banded")
ENDS = ("periodic", "open")
DATA_KINDS = ("expression", "probes", "file", "dataset")
DATASET_NAMES = tuple(DATASETS)
DATA_SUFFIXES = (".npz", ".h5", ".hdf5")
INIT_KINDS = ("expression", "random")
METRICS = ("continuum", "plain")
MAX_CONFIG_BYTES = 1 << 20
"""Largest configuration file read (1 MiB): a device or a huge file is refused, not read."""
MAX_WEIGHTS = 10**8
"""Most weight coefficients a network may hold (0.8 GB per copy of θ in float64)."""
INIT_WEIGHT_VARIABLES = ("x", "y", "x1", "x2", "y1", "y2", "i", "j", "m")
INIT_BIAS_VARIABLES = ("x", "x1", "x2", "i", "m")
RESIDUAL_INIT_PARTS = ("input layer", "blocks", "readout")

DEFAULT_TOML = """\
[experiment]
name = "perceptron"
description = "Linear perceptron trained by gradient flow on smooth data: \
the bilinear field theory of a single layer."

[network]
widths = [32, 32]
activation = "linear"
bias = true

[coordinates]
placement = "cell"

[data]
samples = 3
input = "sin(pi*(l+1)*y) + 0.5*cos(pi*l*y)"
target = "cos(pi*(l+1)*x) * (1 + x)"

[init]
weight = "0.5*sin(pi*x)*cos(pi*y)"
bias = "0.1*x"

[training]
rule = "flow"
lr = 1.0
dt = 0.01
t_end = 1.0
"""
"""The discrete sections of the built-in experiment (the whole of it, with its continuum
sections, is :data:`continuum.settings.DEFAULT_TOML`, shipped as ``examples/perceptron.toml``)."""

_EXPERIMENT_NAME = re.compile(r"[A-Za-z0-9_-]+")


# --------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class ExperimentConfig:
    """``[experiment]``: ``name`` (letters, digits, ``_``, ``-``) and a free ``description``."""

    name: str
    description: str


EXPERIMENT_KEYS = (
    Key("name", "string", "experiment", "the run's name: letters, digits, '_' and '-'"),
    Key("description", "string", "", "a free description"),
)


@dataclass(frozen=True)
class NetworkConfig:
    """``[network]``: the architecture.

    ``connectivity`` holds one entry per weight layer (``len(widths) - 1``); ``offsets`` and
    ``ends`` describe the band of the banded layers; ``quadratic`` holds the coefficients ``(c0, c1,
    c2)`` of the quadratic activation.  ``architecture = "residual"`` (docs/physics.md "Depth as a
    coordinate") reads ``widths = [N_in, N, N_out]`` with ``depth`` residual blocks on the stream of
    width ``N`` (``depth`` is ``None`` for a feed-forward network).
    """

    widths: tuple[int, ...]
    activation: str
    quadratic: tuple[float, float, float]
    output: str
    bias: bool
    connectivity: tuple[str, ...]
    offsets: tuple[int, ...]
    ends: str
    architecture: str
    depth: int | None
    loss: str


NETWORK_KEYS = (
    Key("widths", "integers", REQUIRED, "neurons per layer, input first", sign="positive"),
    Key("activation", "choice", "linear", "the activation σ", choices=ACTIVATIONS),
    Key("quadratic", "numbers", (0.0, 1.0, 0.5), "c0, c1, c2 of σ = c0 + c1 z + c2 z²", length=3),
    Key("output", "choice", "identity", "the output layer's map", choices=OUTPUTS),
    Key("bias", "boolean", True, "whether the layers have biases"),
    Key(
        "connectivity",
        "per-layer",
        "dense",
        "dense or banded, for all weight layers or one per weight layer",
        choices=CONNECTIVITIES,
    ),
    Key("offsets", "integers", (0, 1), "the distinct offsets of a banded layer's band"),
    Key("ends", "choice", "periodic", "the band's ends: wrapped or cut", choices=ENDS),
    Key("architecture", "choice", "feedforward", "the network's form", choices=ARCHITECTURES),
    Key(
        "depth",
        "integer",
        REQUIRED,
        'residual blocks (architecture = "residual" only)',
        sign="positive",
        conditional=True,
    ),
    Key("loss", "choice", "mse", "the cost per sample", choices=LOSSES),
)


@dataclass(frozen=True)
class CoordinatesConfig:
    """``[coordinates]``: neuron placement, one ``layout`` per neuron layer, weight map;
    ``seed`` draws the labels of ``placement = "random"``."""

    placement: str
    layout: tuple[str, ...]
    weights: str | tuple[str, ...]
    """One weight convention for every weight layer, or one per weight layer (a network of
    dense and banded layers: ``product`` for the dense ones, ``unit-cell`` or ``linear`` for the
    banded ones)."""
    seed: int


COORDINATES_KEYS = (
    Key("placement", "choice", "cell", "where the neurons of a layer sit", choices=PLACEMENTS),
    Key(
        "layout",
        "per-layer",
        "line",
        "line, grid or index, for all neuron layers or one per neuron layer",
        choices=LAYOUTS,
    ),
    Key(
        "weights",
        "per-layer",
        "product",
        "the weight map, for all weight layers or one per weight layer",
        choices=WEIGHT_CONVENTIONS,
    ),
    Key("seed", "integer", 0, 'draws the labels of placement = "random"', sign="non-negative"),
)


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: where the training pairs come from.

    ``input`` is a formula in ``l`` and the input-layer coordinates (``y`` or ``y1, y2``),
    ``target`` one in ``l`` and the output-layer coordinates (``x`` or ``x1, x2``). ``path`` is
    set only for ``kind = "file"``, resolved against the directory of the configuration file.
    ``stiffness`` and ``mass`` are the probe amplitudes κ and m² of ``kind = "probes"``.
    ``name`` is the scikit-learn set of ``kind = "dataset"``; for it and for files ``samples``
    is the number of rows used (``None``: all rows of a file), ``test`` of them held out, and
    ``standardize`` scales the features on the training rows, and ``scale`` multiplies them
    after that (:mod:`discrete.datasets`).
    """

    kind: str
    samples: int | None
    input: Expression
    target: Expression
    path: str | None
    seed: int
    stiffness: float
    mass: float
    noise: float
    name: str | None
    test: int
    standardize: bool
    scale: float


DATA_KEYS = (
    Key("kind", "choice", "expression", "where the training pairs come from", choices=DATA_KINDS),
    Key(
        "samples",
        "integer",
        4,
        "training pairs (tabular data: rows used, all when absent)",
        sign="positive",
        conditional=True,
    ),
    Key(
        "input",
        "expression",
        "sin(pi*(l+1)*y)",
        "input of sample l over the input coordinates (j in place of y on an index layer)",
    ),
    Key("target", "expression", "0", "target of sample l over the output coordinates"),
    Key("path", "string", None, 'a .npz, .h5 or .hdf5 file (kind = "file")'),
    Key("seed", "integer", 0, "seeds the data's random draws", sign="non-negative"),
    Key("stiffness", "number", 1.0, 'probe amplitude κ (kind = "probes")', sign="non-negative"),
    Key("mass", "number", 0.0, 'probe amplitude m² (kind = "probes")', sign="non-negative"),
    Key("noise", "number", 0.0, "standard deviation of the target noise", sign="non-negative"),
    Key("name", "choice", None, 'the bundled data set (kind = "dataset")', choices=DATASET_NAMES),
    Key("test", "integer", 0, "rows held out (tabular data)", sign="non-negative"),
    Key("standardize", "boolean", False, "scale the features on the training rows (tabular)"),
    Key("scale", "number", 1.0, "multiplies the features (tabular data)", sign="positive"),
)


@dataclass(frozen=True)
class InitConfig:
    """``[init]``: initial weights and biases, as formulas (one, or a list with one per weight
    layer) or seeded noise of size ``scale``.

    A residual network takes one formula for all its layers or a list of three (input layer,
    blocks, readout); its formulas use the depth ``tau`` in place of ``m`` (the blocks' ``τ_k``;
    0 for the input layer and 1 for the readout when one formula serves all three)."""

    kind: str
    weight: Expression | tuple[Expression, ...]
    bias: Expression | tuple[Expression, ...]
    scale: float
    seed: int

    def layer_weight(self, m: int) -> Expression:
        """The weight formula of layer ``m`` (one for all layers, or one per layer)."""
        return self.weight[m] if isinstance(self.weight, tuple) else self.weight

    def layer_bias(self, m: int) -> Expression:
        """The bias formula of layer ``m`` (one for all layers, or one per layer)."""
        return self.bias[m] if isinstance(self.bias, tuple) else self.bias


INIT_KEYS = (
    Key("kind", "choice", "expression", "formulas or seeded noise", choices=INIT_KINDS),
    Key("weight", "expression", "0", "w(x, y) and m, one formula or a list (one per layer)"),
    Key("bias", "expression", "0", "b(x) and m, one formula or a list (one per layer)"),
    Key("scale", "number", 0.0, 'size of the noise of kind = "random"', sign="non-negative"),
    Key("seed", "integer", 0, 'seeds the noise of kind = "random"', sign="non-negative"),
)


@dataclass(frozen=True)
class TrainingConfig:
    """``[training]``: the update rule and its clock.

    ``steps`` is always resolved: given directly, computed as ``t_end / dt`` when ``t_end`` is
    given (``t_end`` is ``None`` otherwise), or 100 by default.  ``sampling`` draws the
    batches of ``rule = "sgd"``: seeded permutations (``epochs``) or i.i.d. uniform draws
    (``replacement``); ``rule = "momentum"`` with ``sampling = "replacement"`` is momentum
    SGD (the heavy ball on i.i.d. batches), without it the full-batch heavy ball.
    ``stability_check`` (default true) checks the step's linear stability at every output step
    of a full-batch rule (:class:`discrete.stability.StabilityMonitor`).
    """

    rule: str
    lr: float
    gamma: float
    steps: int
    t_end: float | None
    dt: float
    batch: int
    seed: int
    metric: str
    momentum_form: str
    momentum_scheme: str
    sampling: str
    stability_check: bool


TRAINING_KEYS = (
    Key("rule", "choice", "flow", "the update rule", choices=RULES),
    Key("lr", "number", 1.0, "the learning rate η", sign="positive"),
    Key("gamma", "number", 0.0, 'the damping γ of rule = "momentum"', sign="non-negative"),
    Key(
        "steps", "integer", 100, "training steps (or give t_end)", sign="positive", conditional=True
    ),
    Key("t_end", "number", None, "the final time, a multiple of dt (or steps)", sign="positive"),
    Key("dt", "number", 0.01, "the time step", sign="positive"),
    Key("batch", "integer", 1, 'samples per batch of rule = "sgd"', sign="positive"),
    Key("seed", "integer", 0, "seeds the batches", sign="non-negative"),
    Key("metric", "choice", "continuum", "the metric of the gradient", choices=METRICS),
    Key("momentum_form", "choice", "central", "the heavy ball's form", choices=MOMENTUM_FORMS),
    Key(
        "momentum_scheme",
        "choice",
        "heavy-ball",
        "the momentum rule's scheme (former spelling: scheme)",
        choices=MOMENTUM_SCHEMES,
    ),
    Key("sampling", "choice", "epochs", "how SGD draws its batches", choices=SAMPLINGS),
    Key(
        "stability_check",
        "boolean",
        True,
        "check the step's linear stability at every output step of a full-batch rule",
    ),
)


@dataclass(frozen=True)
class DiscreteConfig:
    """A validated discrete configuration; :attr:`text` is its resolved TOML (every key with
    the value that runs), which its loader reads back to an equal configuration.

    :attr:`SECTIONS` declares the sections and their keys; a subclass adds sections (dataclass
    fields after ``source``, their declarations in :attr:`SECTIONS`) and reads them in
    :meth:`parse_sections` (:class:`continuum.settings.Config`)."""

    experiment: ExperimentConfig
    network: NetworkConfig
    coordinates: CoordinatesConfig
    data: DataConfig
    init: InitConfig
    training: TrainingConfig
    source: str

    SECTIONS: ClassVar[dict[str, tuple[Key, ...]]] = {
        "experiment": EXPERIMENT_KEYS,
        "network": NETWORK_KEYS,
        "coordinates": COORDINATES_KEYS,
        "data": DATA_KEYS,
        "init": INIT_KEYS,
        "training": TRAINING_KEYS,
    }

    ALIASES: ClassVar[dict[tuple[str, str], str]] = {("training", "scheme"): "momentum_scheme"}
    """Former spellings of keys, ``(section, old): new``, read as the key they name."""

    UNDECLARED: ClassVar[str] = (
        " (this is the discrete loader: continuum.load_config reads the whole configuration, "
        "[continuum] and [output] included)"
    )
    """Added to the message refusing a section that :attr:`SECTIONS` does not declare."""

    @classmethod
    def parse_sections(cls, sections: dict[str, Section], parsed: DiscreteConfig) -> dict[str, Any]:
        """The sections a subclass adds, read from ``sections`` beside the ``parsed`` discrete
        ones (none here)."""
        return {}

    def document(self) -> dict[str, dict[str, Any]]:
        """The resolved configuration as a TOML document (``{section: {key: value}}``)."""
        doc: dict[str, dict[str, Any]] = {}
        for name in self.SECTIONS:
            values: dict[str, Any] = {}
            for item in fields(getattr(self, name)):
                value = _plain(getattr(getattr(self, name), item.name))
                applies = _APPLIES.get((name, item.name), lambda config: True)
                if value is not None and applies(self):
                    values[item.name] = value
            doc[name] = values
        tr = self.training
        if tr.t_end is not None and math.isclose(tr.steps * tr.dt, tr.t_end, rel_tol=1e-9):
            del doc["training"]["steps"]
        else:  # no t_end, or one left stale by dataclasses.replace: the steps are what run
            doc["training"].pop("t_end", None)
        return doc

    @property
    def text(self) -> str:
        """The resolved configuration as TOML text."""
        return "".join(
            f"[{name}]\n" + "".join(f"{key} = {_toml(v)}\n" for key, v in values.items()) + "\n"
            for name, values in self.document().items()
        )

    def replace(self, **changes: dict[str, Any]) -> Self:
        """A copy with ``changes`` (``section={key: value}``, TOML values; ``None`` returns a
        key to its default) applied and the whole configuration validated again, exactly as
        if the file had said so.

        Raises:
            ConfigError: an unknown section or key, or the changed configuration is invalid.
        """
        doc = self.document()
        for name, keys in changes.items():
            if name not in doc:
                raise ConfigError(f"{self.source}: unknown section [{name}]")
            if name == "training" and {"steps", "t_end"} & set(keys):
                doc[name].pop("steps", None)
                doc[name].pop("t_end", None)
            doc[name].update(keys)
            for key in [key for key, value in keys.items() if value is None]:
                del doc[name][key]
        return build_config(doc, self.source, None, type(self))


# --------------------------------------------------------------------------- resolved text


_TABULAR = ("dataset", "file")

_APPLIES: dict[tuple[str, str], Any] = {
    ("data", "test"): lambda config: config.data.kind in _TABULAR,
    ("data", "standardize"): lambda config: config.data.kind in _TABULAR,
    ("data", "scale"): lambda config: config.data.kind in _TABULAR,
}
"""Keys that a section accepts only beside others (the parser refuses them elsewhere): the
resolved document leaves them out where they do not apply."""


def _plain(value: object) -> Any:
    """A parsed value back as a TOML value (expressions as their text, tuples as lists)."""
    if isinstance(value, Expression):
        return value.text
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


def _toml(value: object) -> str:
    """A TOML value written in full (the resolved configuration's text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return repr(value) if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------- section parsers


def _parse_experiment(section: Section) -> ExperimentConfig:
    experiment = ExperimentConfig(**section.read_plain())
    if not _EXPERIMENT_NAME.fullmatch(experiment.name):
        raise section.error(
            "name", f"expected letters, digits, '_' and '-' only, got {show(experiment.name)}"
        )
    return experiment


def _parse_network(section: Section) -> NetworkConfig:
    plain = section.read_plain()
    widths = plain["widths"]
    if len(widths) < 2:
        raise section.error(
            "widths", f"expected at least 2 layers (input and output), got {show(widths)}"
        )
    offsets = plain["offsets"]
    if not offsets or len(set(offsets)) != len(offsets):
        raise section.error(
            "offsets", f"expected a non-empty list of distinct integers, got {show(offsets)}"
        )
    connectivity = section.read("connectivity", count=len(widths) - 1, what="weight layer")
    for m, kind in enumerate(connectivity):
        if kind == "banded" and plain["ends"] == "periodic" and widths[m + 1] > widths[m]:
            raise section.error(
                "widths",
                f'banded weight layer {m} with ends = "periodic" wraps its band around its '
                f"{widths[m]} inputs, so it needs at most as many outputs, got "
                f'{widths[m]} -> {widths[m + 1]} (or ends = "open")',
            )
    weights = sum(
        n_out * (len(offsets) if kind == "banded" else n_in)
        for n_in, n_out, kind in zip(widths, widths[1:], connectivity, strict=False)
    )
    if weights > MAX_WEIGHTS:
        raise section.error(
            "widths",
            f"{show(widths)} gives {show(weights)} weight coefficients; at most "
            f"{MAX_WEIGHTS:.0e} are supported",
        )
    architecture = plain["architecture"]
    depth = None
    if architecture == "residual":
        if len(widths) != 3:
            raise section.error(
                "widths",
                'architecture = "residual" expects [N_in, N, N_out] (input, stream, output), '
                f"got {show(widths)}",
            )
        depth = section.read("depth")
    elif section.has("depth"):
        raise section.error("depth", 'only used with architecture = "residual"')
    if architecture == "residual" and "banded" in connectivity:
        raise section.error(
            "connectivity", 'architecture = "residual" has dense layers and blocks only'
        )
    return NetworkConfig(**plain, connectivity=connectivity, depth=depth)


def _parse_coordinates(section: Section, network: NetworkConfig) -> CoordinatesConfig:
    widths = network.widths
    placement = section.read("placement")
    layout = section.read("layout", count=len(widths), what="neuron layer")
    field_widths = [n for n, kind in zip(widths, layout, strict=True) if kind != "index"]
    if placement == "vertex" and field_widths and min(field_widths) < 2:
        raise section.error(
            "placement",
            "vertex placement needs at least 2 neurons per layer, "
            f"but [network] widths = {show(widths)}",
        )
    if network.loss == "cross-entropy" and (layout[-1] != "index" or widths[-1] < 2):
        raise section.error(
            "layout",
            '[network] loss = "cross-entropy" is a softmax over classes: it needs an output '
            f'layer with layout "index" and at least 2 neurons, got layout {show(layout[-1])} '
            f"and [network] widths[-1] = {widths[-1]}",
        )
    for index, (kind, width) in enumerate(zip(layout, widths, strict=True)):
        if kind == "grid" and math.isqrt(width) ** 2 != width:
            raise section.error(
                "layout",
                f"grid layer {index} needs a square width (n*n neurons), "
                f"but [network] widths[{index}] = {width}",
            )
    conventions = section.read("weights", count=len(widths) - 1, what="weight layer")
    weights: str | tuple[str, ...] = conventions
    if len(set(conventions)) == 1:
        weights = conventions[0]
        if weights != "product" and "dense" in network.connectivity:
            index = network.connectivity.index("dense")
            raise section.error(
                "weights",
                f"{show(weights)} requires every layer to be banded, "
                f'but [network] connectivity is "dense" for weight layer {index}',
            )
    for index, (kind, conn) in enumerate(zip(conventions, network.connectivity, strict=True)):
        if isinstance(weights, tuple) and (conn == "dense") != (kind == "product"):
            wanted = '"product"' if conn == "dense" else '"unit-cell" or "linear"'
            raise section.error(
                "weights",
                f"weight layer {index} is {conn} ([network] connectivity) and needs {wanted}, "
                f"got {show(kind)}",
            )
    if placement == "random" and "grid" in layout:
        raise section.error(
            "placement", f'"random" places neurons on line layers, but layout = {show(layout)}'
        )
    seed = section.read("seed")
    return CoordinatesConfig(placement=placement, layout=layout, weights=weights, seed=seed)


def _coordinate_names(layout: str, prefix: str) -> tuple[str, ...]:
    """Names of a layer's coordinates in formulas: ``y`` on a line, ``y1, y2`` on a grid,
    the index ``j`` (input side) or ``i`` (output side) on an index layer."""
    if layout == "index":
        return ("j",) if prefix == "y" else ("i",)
    return (prefix,) if layout == "line" else (f"{prefix}1", f"{prefix}2")


def _check_tabular_keys(section: Section, kind: str) -> None:
    """``test``, ``standardize`` and ``scale`` belong to tabular data, ``name`` to data sets."""
    for key, kinds in (
        ("test", _TABULAR),
        ("standardize", _TABULAR),
        ("scale", _TABULAR),
        ("name", ("dataset",)),
    ):
        if section.has(key) and kind not in kinds:
            wanted = " or ".join(show(k) for k in kinds)
            raise section.error(key, f"only used when kind = {wanted}, but kind = {show(kind)}")


def _check_table(
    section: Section, plain: dict[str, Any], network: NetworkConfig, coordinates: CoordinatesConfig
) -> int | None:
    """The ``samples`` of tabular data (``kind`` = ``"dataset"`` or ``"file"``; ``None``: all
    rows of a file); a bundled set is loaded and its split checked here."""
    from .datasets import SHAPES, DataError, bundled, split

    kind, test, name = plain["kind"], plain["test"], plain["name"]
    samples = section.read("samples", default=None)
    if kind == "file":
        if samples is not None and test >= samples:
            raise section.error(
                "test",
                f"{test} rows held out leave none of [data] samples = {samples} for training",
            )
        return samples
    if name is None:
        raise section.error("name", f'required when kind = "dataset"; {one_of(DATASET_NAMES)}')
    rows, d, k = SHAPES[name]
    ends = (coordinates.layout[0], coordinates.layout[-1])
    if ends != ("index", "index"):
        raise section.error(
            "kind",
            f"the data set {name!r} has {d} features and {k} output(s) and no coordinates: it "
            f'needs [coordinates] layout "index" on the input and the output layer, got '
            f"{show(list(ends))}",
        )
    if (network.widths[0], network.widths[-1]) != (d, k):
        raise section.error(
            "name",
            f"{name!r} has {d} features and {k} output(s), but [network] widths = "
            f"{show(network.widths)} (the first must be {d}, the last {k})",
        )
    try:
        split(bundled(name), samples, test, plain["standardize"], plain["seed"])
    except DataError as exc:
        raise section.error(exc.key, str(exc)) from None
    return rows if samples is None else samples


def _parse_data(
    section: Section, network: NetworkConfig, coordinates: CoordinatesConfig, base_dir: Path | None
) -> DataConfig:
    plain = section.read_plain()
    kind, path = plain["kind"], plain["path"]
    if kind == "file":
        if path is None:
            raise section.error("path", 'required when kind = "file"')
        if not path.lower().endswith(DATA_SUFFIXES):
            raise section.error("path", f"expected a .npz, .h5 or .hdf5 file, got {show(path)}")
        if base_dir is not None:
            plain["path"] = os.path.normpath(base_dir / path)
    elif path is not None:
        raise section.error("path", f'only used when kind = "file", but kind = {show(kind)}')
    _check_tabular_keys(section, kind)
    if kind in _TABULAR:
        samples = _check_table(section, plain, network, coordinates)
    else:
        samples = section.read("samples")
    default_input = section.default("input")
    if coordinates.layout[0] == "index":  # the input index j in place of the coordinate y
        default_input = default_input.replace("y", "j")
    return DataConfig(
        **plain,
        samples=samples,
        input=section.read(
            "input",
            variables=("l", *_coordinate_names(coordinates.layout[0], "y")),
            default=default_input,
        ),
        target=section.read(
            "target", variables=("l", *_coordinate_names(coordinates.layout[-1], "x"))
        ),
    )


def _init_expressions(
    section: Section, key: str, variables: tuple[str, ...], network: NetworkConfig
) -> Expression | tuple[Expression, ...]:
    """One formula, or (residual networks) a list of three: input layer, blocks, readout."""
    if network.architecture != "residual":
        return section.read(key, variables=variables)
    variables = (*(name for name in variables if name != "m"), "tau")
    value = section.values.get(key, section.default(key))
    if not isinstance(value, list):
        return section.read(key, variables=variables)
    if len(value) != len(RESIDUAL_INIT_PARTS):
        raise section.error(
            key,
            "expected one formula or a list of 3 (" + ", ".join(RESIDUAL_INIT_PARTS) + "), "
            f"got {show(value)}",
        )
    parts = []
    for part, item in zip(RESIDUAL_INIT_PARTS, value, strict=True):
        entry = Section(section.name, {key: item}, section.source, (section.keys[key],))
        try:
            parts.append(entry.read(key, variables=variables))
        except ConfigError as exc:
            raise ConfigError(f"{exc} (the {part} entry)") from None
    return tuple(parts)


def _init_formulas(
    section: Section, key: str, layers: list[tuple[str, ...]]
) -> Expression | tuple[Expression, ...]:
    """One formula for every weight layer, or a list with one per layer; ``layers[m]`` holds
    the variables layer ``m`` offers (besides ``m``), and a formula may use only those."""
    value = section.values.get(key, section.default(key))
    if isinstance(value, list):
        if len(value) != len(layers) or not all(isinstance(item, str) for item in value):
            raise section.error(
                key,
                f"expected a formula, or a list of {len(layers)} (one per weight layer), "
                f"got {show(value)}",
            )
        formulas = []
        for m, (text, names) in enumerate(zip(value, layers, strict=True)):
            try:
                formulas.append(parse_expression(text, (*names, "m")))
            except ExpressionError as exc:
                raise section.error(key, f"invalid formula for weight layer {m}: {exc}") from None
        return tuple(formulas)
    variables = INIT_WEIGHT_VARIABLES if key == "weight" else INIT_BIAS_VARIABLES
    formula: Expression = section.read(key, variables=variables)
    for m, names in enumerate(layers):
        absent = sorted(formula.used - {*names, "m"})
        if absent:
            raise section.error(
                key,
                f"{show(formula.text)} uses {', '.join(absent)}, which weight layer {m} does not "
                f"have (its variables: {', '.join(names)}, m); give a list with one formula per "
                "layer",
            )
    return formula


def _parse_init(
    section: Section, network: NetworkConfig, coordinates: CoordinatesConfig
) -> InitConfig:
    if network.architecture == "residual":
        weight = _init_expressions(section, "weight", INIT_WEIGHT_VARIABLES, network)
        bias = _init_expressions(section, "bias", INIT_BIAS_VARIABLES, network)
    else:
        layout = coordinates.layout
        outputs = [_coordinate_names(kind, "x") for kind in layout[1:]]
        inputs = [_coordinate_names(kind, "y") for kind in layout[:-1]]
        pairs = [o + i for o, i in zip(outputs, inputs, strict=True)]
        weight = _init_formulas(section, "weight", pairs)
        bias = _init_formulas(section, "bias", outputs)
    return InitConfig(**section.read_plain(), weight=weight, bias=bias)


def _parse_training(section: Section, data: DataConfig) -> TrainingConfig:
    plain = section.read_plain()
    dt, t_end = plain["dt"], plain["t_end"]
    if t_end is None:
        steps = section.read("steps")
    elif section.has("steps"):
        raise section.error(
            "t_end",
            f"cannot be combined with [training] steps = {show(section.values['steps'])}; "
            "give either steps or t_end",
        )
    else:
        ratio = t_end / dt
        steps = round(ratio) if math.isfinite(ratio) else 0
        if steps < 1 or abs(steps * dt - t_end) > 1e-9 * t_end:
            raise section.error("t_end", f"{show(t_end)} is not a multiple of dt = {show(dt)}")
    batch = plain["batch"]
    samples = data.samples if data.kind in ("expression", "dataset") else None
    if samples is not None and batch > samples - data.test:
        raise section.error(
            "batch",
            f"{batch} exceeds [data] samples = {data.samples}"
            + (f" less test = {data.test}" if data.test else "")
            + " (a batch cannot hold more samples than the training set)",
        )
    rule, sampling = plain["rule"], plain["sampling"]
    if sampling != "epochs" and rule not in ("sgd", "momentum"):
        raise section.error(
            "sampling",
            f'{show(sampling)} draws the batches of rule = "sgd" (or "momentum"), but '
            f"[training] rule = {show(rule)} uses the full batch",
        )
    if sampling == "replacement" and rule == "momentum" and plain["momentum_scheme"] == "rk4":
        raise section.error(
            "momentum_scheme",
            '"rk4" integrates the full-batch damped dynamics; momentum SGD (sampling = '
            '"replacement") is the heavy ball on each step\'s batch (momentum_scheme = '
            '"heavy-ball")',
        )
    gamma = plain["gamma"]
    if rule == "momentum" and gamma * dt > 1.0:
        raise section.error(
            "gamma",
            f"γ·dt = {gamma * dt:.4g} > 1 (dt = {show(dt)}): the step does not resolve the "
            f"damping time 1/γ = {1 / gamma:.4g}, so the discrete dynamics is not the damped "
            "equation θ̈ + γθ̇ + η∂C/∂θ = 0 that its continuum solves (heavy-ball moves θ by "
            "h²η∂C per step where the equation moves it by hη∂C/γ); choose dt ≤ 1/γ, or "
            "rule = 'flow' with lr divided by γ for the overdamped limit",
        )
    return TrainingConfig(**plain, steps=steps)


@dataclass(frozen=True)
class UsedWith:
    """The runs that read a key: ``applies(config)`` is true for them, ``wanted`` names them
    (``[section] key = value`` phrases) and ``shown`` lists the ``(section, key)`` that decide it.
    """

    applies: Callable[[DiscreteConfig], bool]
    wanted: str
    shown: tuple[tuple[str, str], ...]


def draws_batches(training: TrainingConfig) -> bool:
    """Whether the rule trains on drawn batches (SGD, or momentum SGD with i.i.d. batches)
    rather than on the full batch: what ``batch`` and the sample schedule belong to."""
    return training.rule == "sgd" or (
        training.rule == "momentum" and training.sampling == "replacement"
    )


def _value(config: DiscreteConfig, section: str, key: str) -> Any:
    """The parsed value of ``[section] key``."""
    return getattr(getattr(config, section), key)


def _equals(section: str, key: str, value: str) -> UsedWith:
    """The runs whose ``[section] key`` is ``value``."""
    return UsedWith(
        lambda c: _value(c, section, key) == value,
        f'[{section}] {key} = "{value}"',
        ((section, key),),
    )


_MOMENTUM = _equals("training", "rule", "momentum")
_BANDED = UsedWith(
    lambda c: "banded" in c.network.connectivity,
    '[network] connectivity = "banded"',
    (("network", "connectivity"),),
)
_PROBES = _equals("data", "kind", "probes")
_EXPRESSIONS = _equals("data", "kind", "expression")
_NOISE = _equals("init", "kind", "random")

USED_WITH: dict[tuple[str, str], UsedWith] = {
    ("network", "quadratic"): _equals("network", "activation", "quadratic"),
    ("network", "offsets"): _BANDED,
    ("network", "ends"): _BANDED,
    ("coordinates", "seed"): _equals("coordinates", "placement", "random"),
    ("data", "samples"): UsedWith(
        lambda c: c.data.kind != "probes",
        '[data] kind = "expression", "dataset" or "file" (probe data hold one sample a site)',
        (("data", "kind"),),
    ),
    ("data", "input"): _EXPRESSIONS,
    ("data", "target"): _EXPRESSIONS,
    ("data", "noise"): _EXPRESSIONS,
    ("data", "stiffness"): _PROBES,
    ("data", "mass"): _PROBES,
    ("init", "bias"): UsedWith(
        lambda c: c.network.bias, "[network] bias = true", (("network", "bias"),)
    ),
    ("init", "scale"): _NOISE,
    ("init", "seed"): _NOISE,
    ("training", "gamma"): _MOMENTUM,
    ("training", "momentum_form"): _MOMENTUM,
    ("training", "momentum_scheme"): _MOMENTUM,
    ("training", "batch"): UsedWith(
        lambda c: draws_batches(c.training),
        '[training] rule = "sgd", or "momentum" with sampling = "replacement"',
        (("training", "rule"), ("training", "sampling")),
    ),
}
"""The keys that only some runs read.  A key given a value other than its default where it is
not read is refused (:func:`_check_used`): the run would not do what the file says.  Its
default is accepted anywhere, as the resolved text of every run writes it."""


def _is_default(section: Section, key: str, value: object) -> bool:
    """Whether the parsed ``value`` of ``key`` is its declared default (the input formula's
    default is written in ``j`` on an index input layer)."""
    default = _plain(section.default(key))
    plain = _plain(value)
    if key == "input":
        return plain in (default, default.replace("y", "j"))
    return plain == default


def _check_used(sections: dict[str, Section], config: DiscreteConfig) -> None:
    """Refuse a key that this run would not read (:data:`USED_WITH`), naming the keys that
    decide it."""
    for (name, key), used in USED_WITH.items():
        section = sections[name]
        if not section.has(key) or used.applies(config):
            continue
        if _is_default(section, key, _value(config, name, key)):
            continue
        here = ", ".join(
            f"[{part}] {item} = {show(_plain(_value(config, part, item)))}"
            for part, item in used.shown
        )
        raise section.error(
            key, f"{show(section.values[key])} is only read with {used.wanted}, but {here}"
        )
    init = config.init
    if init.kind == "random" and init.scale == 0.0:
        raise sections["init"].error(
            "scale", 'kind = "random" adds noise of size scale, but scale = 0 (the default)'
        )


def _check_residual(sections: dict[str, Section], coordinates: CoordinatesConfig) -> None:
    """A residual network's stream lies on a line (docs/physics.md "Depth as a coordinate";
    which continuum solves it is declared by :mod:`continuum.models.registry`)."""
    if "grid" in coordinates.layout:
        raise sections["coordinates"].error(
            "layout", 'expected "line" layers with [network] architecture = "residual"'
        )


# --------------------------------------------------------------------------- public API


def _split_sections(
    document: dict[str, Any], source: str, kind: type[DiscreteConfig]
) -> dict[str, Section]:
    """Wrap each section of ``document``, rejecting sections and keys that ``kind`` does not
    declare."""
    declared = kind.SECTIONS
    names = tuple(declared)
    document = {
        name: _unalias(name, values, source, kind.ALIASES) if isinstance(values, dict) else values
        for name, values in document.items()
    }
    for name, values in document.items():
        if name not in declared:
            what = f"section [{name}]" if isinstance(values, dict) else f"top-level key '{name}'"
            hint = suggestion(name, names, "[{}]") or "; sections: " + ", ".join(
                f"[{section}]" for section in names
            )
            raise ConfigError(f"{source}: unknown {what}{hint}{kind.UNDECLARED}")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{name}] must be a table, got {show(values)}")
        check_keys(name, values, declared[name], source)
    return {name: Section(name, document.get(name, {}), source, declared[name]) for name in names}


def _unalias(
    name: str, values: dict[str, Any], source: str, aliases: dict[tuple[str, str], str]
) -> dict[str, Any]:
    out = dict(values)
    for (section, old), new in aliases.items():
        if section == name and old in out:
            if new in out:
                raise ConfigError(
                    f"{source}: [{name}] {old}: the former spelling of '{new}'; give one of them"
                )
            out[new] = out.pop(old)
    return out


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """The TOML document of ``text`` (a UTF-8 byte-order mark is skipped).

    Raises:
        ConfigError: ``source: TOML syntax error: ...``.
    """
    try:
        return tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: TOML syntax error: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: TOML syntax error: arrays nested too deeply") from None


def read_text(path: Path) -> str:
    """The text of the configuration file at ``path``, at most :data:`MAX_CONFIG_BYTES`.

    Raises:
        ConfigError: The file is missing, too large, unreadable or not UTF-8.
    """
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{path}: not a configuration file: larger than {MAX_CONFIG_BYTES} bytes"
            )
        return raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration file: {exc}") from None


def build_config[C: DiscreteConfig](
    document: dict[str, Any], source: str, base_dir: Path | None, kind: type[C]
) -> C:
    """Validate ``document`` as a configuration of type ``kind`` (:class:`DiscreteConfig` or
    a subclass that declares further sections); a relative ``[data] path`` is resolved against
    ``base_dir`` when given.

    Raises:
        ConfigError: the first problem found, naming ``source`` and ``[section] key``.
    """
    sections = _split_sections(document, source, kind)
    experiment = _parse_experiment(sections["experiment"])
    network = _parse_network(sections["network"])
    coordinates = _parse_coordinates(sections["coordinates"], network)
    data = _parse_data(sections["data"], network, coordinates, base_dir)
    training = _parse_training(sections["training"], data)
    if network.architecture == "residual":
        _check_residual(sections, coordinates)
    discrete = DiscreteConfig(
        experiment=experiment,
        network=network,
        coordinates=coordinates,
        data=data,
        init=_parse_init(sections["init"], network, coordinates),
        training=training,
        source=source,
    )
    _check_used(sections, discrete)
    parts = {item.name: getattr(discrete, item.name) for item in fields(DiscreteConfig)}
    return kind(**parts, **kind.parse_sections(sections, discrete))


def parse_config(
    text: str, source: str = "<string>", base_dir: str | os.PathLike[str] | None = None
) -> DiscreteConfig:
    """Parse and validate the discrete configuration in TOML ``text``; ``source`` names it in
    error messages.

    A relative ``[data] path`` is resolved against ``base_dir`` when given, else kept as
    written (see :func:`load_config`).

    Raises:
        ConfigError: The text is not valid TOML or not a valid discrete configuration (a
            ``[continuum]`` or ``[output]`` section is refused: :mod:`continuum.settings`
            reads them).
    """
    base = None if base_dir is None else Path(base_dir)
    return build_config(parse_toml(text, source), source, base, DiscreteConfig)


def load_config(path: str | os.PathLike[str]) -> DiscreteConfig:
    """Read and validate the discrete TOML configuration file at ``path``.

    A relative ``[data] path`` is resolved against the directory holding the file.

    Raises:
        ConfigError: The file cannot be read, is not valid TOML or not a valid configuration.
    """
    path = Path(path)
    document = parse_toml(read_text(path), str(path))
    return build_config(document, str(path), path.absolute().parent, DiscreteConfig)


def default_config() -> DiscreteConfig:
    """The discrete part of the built-in experiment, the linear perceptron of
    :data:`DEFAULT_TOML`."""
    return parse_config(DEFAULT_TOML, source="<default>")
