"""Experiment configuration: TOML files read with :mod:`tomllib` and validated strictly.

A configuration has the sections ``[experiment]``, ``[network]``, ``[coordinates]``,
``[data]``, ``[init]``, ``[training]``, ``[continuum]`` and ``[output]``; each becomes a frozen
dataclass whose fields are exactly the keys the section accepts. Only ``[network] widths`` is
required; every other key has a default. Validation is strict and every failure raises a
:class:`ConfigError` naming the file, the ``[section] key`` and the problem:

* unknown sections and keys are rejected, with a suggestion for likely typos;
* types are checked exactly (a boolean is not an integer; an integer is accepted where a float
  is expected; lists are checked element by element) and choices are listed when violated;
* formulas are parsed with :func:`discrete.expressions.parse_expression` over the variables
  their section allows, so an unsafe or malformed formula fails when the file is read;
* keys that depend on each other (grid layouts and widths, banded-only weight maps, batch and
  sample counts, ``steps`` and ``t_end``) are checked together.

:func:`default_config` returns the built-in experiment, a linear perceptron, whose text
:data:`DEFAULT_TOML` is also shipped as ``examples/perceptron.toml``.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeGuard

from .activations import ACTIVATIONS
from .conventions import LAYOUTS, PLACEMENTS, WEIGHT_CONVENTIONS
from .cost import LOSSES
from .datasets import DATASETS
from .errors import ConfigError
from .expressions import Expression, ExpressionError, parse_expression
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
FLUCTUATIONS = ("none", "moments", "sde")
SDE_SCHEMES = ("euler-maruyama", "weak-order-2")
DEGREES = tuple(range(1, 11))
MAX_CONFIG_BYTES = 1 << 20
"""Largest configuration file read (1 MiB): a device or a huge file is refused, not read."""
MAX_WEIGHTS = 10**8
"""Most weight coefficients a network may hold (0.8 GB per copy of θ in float64)."""
INPUT_LAYERS = ("tensor", "data-span")
DISTRIBUTIONS = ("auto", "rows", "samples")
OUTPUT_FIELDS = ("w", "b", "cost", "energy")
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

[continuum]
degree = 2
cells = 32
scheme = "theta"

[output]
every = 10
"""
"""The built-in experiment (identical to ``examples/perceptron.toml``)."""

_EXPERIMENT_NAME = re.compile(r"[A-Za-z0-9_-]+")


# --------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class ExperimentConfig:
    """``[experiment]``: ``name`` (letters, digits, ``_``, ``-``) and a free ``description``."""

    name: str
    description: str


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


@dataclass(frozen=True)
class CoordinatesConfig:
    """``[coordinates]``: neuron placement, one ``layout`` per neuron layer, weight map;
    ``seed`` draws the labels of ``placement = "random"``."""

    placement: str
    layout: tuple[str, ...]
    weights: str
    seed: int


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


@dataclass(frozen=True)
class TrainingConfig:
    """``[training]``: the update rule and its clock.

    ``steps`` is always resolved: given directly, computed as ``t_end / dt`` when ``t_end`` is
    given (``t_end`` is ``None`` otherwise), or 100 by default.  ``sampling`` draws the
    batches of ``rule = "sgd"``: seeded permutations (``epochs``) or i.i.d. uniform draws
    (``replacement``); ``rule = "momentum"`` with ``sampling = "replacement"`` is momentum
    SGD (the heavy ball on i.i.d. batches), without it the full-batch heavy ball.
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
    scheme: str
    sampling: str


@dataclass(frozen=True)
class ContinuumConfig:
    """``[continuum]``: the finite-element model; ``scheme`` is the time scheme (its choices and
    what each solves are declared by :mod:`continuum.models.registry`, which resolves ``None`` to
    the scheme that runs; ``integrator`` is accepted as its former spelling); ``dt`` is ``None`` to
    use the training dt; ``tolerance`` is the local error tolerance of the adaptive scheme;
    ``input_layer`` represents ``w^(0)`` in ``V_1 ⊗ V_0`` or in the span of the data; ``fluctuations
    = "moments"`` solves for the mean field and the SGD covariance instead, ``"sde"`` for one seeded
    path of the stochastic modified equation with ``sde_scheme`` (``None`` for the other models;
    docs/physics.md "SGD fluctuations"); ``distribute`` splits the rows of every weight block or the
    samples over the MPI ranks (``auto``: the rule of
    :mod:`continuum.fem.distribution`)."""

    degree: int
    cells: int
    scheme: str | None
    theta: float
    dt: float | None
    tolerance: float
    enabled: bool
    input_layer: str
    fluctuations: str
    sde_scheme: str | None
    depth_cells: int | None
    distribute: str


@dataclass(frozen=True)
class OutputConfig:
    """``[output]``: record ``fields`` every ``every`` steps; ``quiet`` silences progress."""

    every: int
    fields: tuple[str, ...]
    quiet: bool


@dataclass(frozen=True)
class Config:
    """A validated experiment configuration; :attr:`text` is its resolved TOML (every key with
    the value that runs), which :func:`parse_config` reads back to an equal ``Config``."""

    experiment: ExperimentConfig
    network: NetworkConfig
    coordinates: CoordinatesConfig
    data: DataConfig
    init: InitConfig
    training: TrainingConfig
    continuum: ContinuumConfig
    output: OutputConfig
    source: str

    def document(self) -> dict[str, dict[str, Any]]:
        """The resolved configuration as a TOML document (``{section: {key: value}}``)."""
        doc: dict[str, dict[str, Any]] = {}
        for name in _SECTIONS:
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

    def replace(self, **changes: dict[str, Any]) -> Config:
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
        return _build_config(doc, self.source, base_dir=None)


_SECTIONS: dict[str, type] = {
    "experiment": ExperimentConfig,
    "network": NetworkConfig,
    "coordinates": CoordinatesConfig,
    "data": DataConfig,
    "init": InitConfig,
    "training": TrainingConfig,
    "continuum": ContinuumConfig,
    "output": OutputConfig,
}


# --------------------------------------------------------------------------- typed access

_REQUIRED: Any = object()
"""Default marking a key that must be present."""

_SIGNS = {
    "": lambda value: True,
    "positive": lambda value: value > 0,
    "non-negative": lambda value: value >= 0,
}
"""Sign qualifiers of integers and numbers: the word used in messages and its check."""


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


_SHOW_LIMIT = 120
"""Characters of a value shown in an error message before it is cut with ``…``."""


def _toml(value: object) -> str:
    """A TOML value written in full (the resolved configuration's text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return repr(value) if isinstance(value, float) else str(value)


def _show(value: object, depth: int = 0) -> str:
    """Write a TOML value the way it appears in a file (for error messages), cut to
    :data:`_SHOW_LIMIT` characters and 8 levels of nesting."""
    if depth > 8:
        return "…"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value[: 2 * _SHOW_LIMIT], ensure_ascii=False)
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(_show(item, depth + 1) for item in value[:_SHOW_LIMIT]) + "]"
    elif isinstance(value, dict):
        items = list(value.items())[:_SHOW_LIMIT]
        text = "{" + ", ".join(f"{key} = {_show(item, depth + 1)}" for key, item in items) + "}"
    elif _is_integer(value) and abs(value) >= 10**_SHOW_LIMIT:
        text = f"an integer of {len(str(abs(value)))} digits"
    else:
        text = str(value)
    return text if len(text) <= _SHOW_LIMIT else text[: _SHOW_LIMIT - 1] + "…"


def _one_of(choices: tuple[object, ...]) -> str:
    return "one of " + ", ".join(_show(choice) for choice in choices)


def _suggestion(word: str, candidates: tuple[str, ...], decorate: str = "'{}'") -> str:
    """`` (did you mean ...?)`` for a close match of ``word``, or ``""``."""
    matches = difflib.get_close_matches(word, candidates, n=1)
    return f" (did you mean {decorate.format(matches[0])}?)" if matches else ""


def _is_integer(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_float(value: object) -> float | None:
    """``value`` as a finite float if it is a TOML integer or float, else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _a(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


class _Section:
    """The keys of one TOML table, read with type checks that raise :class:`ConfigError`."""

    def __init__(self, name: str, values: dict[str, Any], source: str) -> None:
        self.name = name
        self.values = values
        self.source = source

    def has(self, key: str) -> bool:
        return key in self.values

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: [{self.name}] {key}: {problem}")

    def _raw(self, key: str, default: Any) -> Any:
        if key in self.values:
            return self.values[key]
        if default is _REQUIRED:
            raise self.error(key, "required key is missing")
        return default

    def string(self, key: str, default: Any = _REQUIRED) -> str:
        value = self._raw(key, default)
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {_show(value)}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self._raw(key, default)
        if not isinstance(value, str) or value not in choices:
            hint = _suggestion(value, choices, '"{}"') if isinstance(value, str) else ""
            raise self.error(key, f"expected {_one_of(choices)}, got {_show(value)}{hint}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {_show(value)}")
        return value

    def integer(self, key: str, default: Any = _REQUIRED, sign: str = "") -> int:
        value = self._raw(key, default)
        if not (_is_integer(value) and _SIGNS[sign](value)):
            raise self.error(key, f"expected {_a(f'{sign} integer'.strip())}, got {_show(value)}")
        return value

    def number(self, key: str, default: Any = _REQUIRED, sign: str = "") -> float:
        value = self._raw(key, default)
        number = _as_float(value)
        if number is None or not _SIGNS[sign](number):
            raise self.error(key, f"expected {_a(f'{sign} number'.strip())}, got {_show(value)}")
        return number

    def optional_number(self, key: str, sign: str = "") -> float | None:
        return self.number(key, sign=sign) if self.has(key) else None

    def integers(self, key: str, default: Any = _REQUIRED, sign: str = "") -> tuple[int, ...]:
        value = self._raw(key, default)
        if not isinstance(value, list | tuple) or not all(
            _is_integer(item) and _SIGNS[sign](item) for item in value
        ):
            words = f"{sign} integers".strip()
            raise self.error(key, f"expected a list of {words}, got {_show(value)}")
        return tuple(value)

    def numbers(self, key: str, default: tuple[float, ...], length: int) -> tuple[float, ...]:
        value = self._raw(key, default)
        numbers = [_as_float(item) for item in value] if isinstance(value, list | tuple) else []
        if len(numbers) != length or None in numbers:
            raise self.error(key, f"expected a list of {length} numbers, got {_show(value)}")
        return tuple(number for number in numbers if number is not None)

    def coefficients(
        self, key: str, default: tuple[float, float, float]
    ) -> tuple[float, float, float]:
        """Three numbers, as :meth:`numbers` with ``length = 3``."""
        c0, c1, c2 = self.numbers(key, default, length=3)
        return c0, c1, c2

    def subset(
        self, key: str, choices: tuple[str, ...], default: tuple[str, ...]
    ) -> tuple[str, ...]:
        value = self._raw(key, default)
        if (
            not isinstance(value, list | tuple)
            or not all(isinstance(item, str) and item in choices for item in value)
            or len(set(value)) != len(value)
        ):
            raise self.error(
                key,
                f"expected a list of distinct names from {_show(choices)}, got {_show(value)}",
            )
        return tuple(value)

    def per_layer(
        self, key: str, choices: tuple[str, ...], default: str, count: int, what: str
    ) -> tuple[str, ...]:
        """One choice for all ``count`` layers, or a list with one choice per layer."""
        value = self._raw(key, default)
        if isinstance(value, str) and value in choices:
            return (value,) * count
        if (
            not isinstance(value, list)
            or len(value) != count
            or not all(isinstance(item, str) and item in choices for item in value)
        ):
            raise self.error(
                key,
                f"expected {_one_of(choices)}, or a list of {count} of them (one per {what}), "
                f"got {_show(value)}",
            )
        return tuple(value)

    def expression(self, key: str, default: str, variables: tuple[str, ...]) -> Expression:
        value = self._raw(key, default)
        if not isinstance(value, str):
            raise self.error(key, f"expected a formula in quotes, got {_show(value)}")
        try:
            return parse_expression(value, variables)
        except ExpressionError as exc:
            origin = "" if self.has(key) else f" (the default {_show(default)})"
            raise self.error(key, f"invalid formula{origin}: {exc}") from None


# --------------------------------------------------------------------------- section parsers


def _parse_experiment(section: _Section) -> ExperimentConfig:
    name = section.string("name", "experiment")
    if not _EXPERIMENT_NAME.fullmatch(name):
        raise section.error(
            "name", f"expected letters, digits, '_' and '-' only, got {_show(name)}"
        )
    return ExperimentConfig(name=name, description=section.string("description", ""))


def _parse_network(section: _Section) -> NetworkConfig:
    widths = section.integers("widths", sign="positive")
    if len(widths) < 2:
        raise section.error(
            "widths", f"expected at least 2 layers (input and output), got {_show(widths)}"
        )
    offsets = section.integers("offsets", (0, 1))
    if not offsets or len(set(offsets)) != len(offsets):
        raise section.error(
            "offsets", f"expected a non-empty list of distinct integers, got {_show(offsets)}"
        )
    connectivity = section.per_layer(
        "connectivity", CONNECTIVITIES, "dense", len(widths) - 1, "weight layer"
    )
    weights = sum(
        n_out * (len(offsets) if kind == "banded" else n_in)
        for n_in, n_out, kind in zip(widths, widths[1:], connectivity, strict=False)
    )
    if weights > MAX_WEIGHTS:
        raise section.error(
            "widths",
            f"{_show(widths)} gives {_show(weights)} weight coefficients; at most "
            f"{MAX_WEIGHTS:.0e} are supported",
        )
    architecture = section.choice("architecture", ARCHITECTURES, "feedforward")
    depth = None
    if architecture == "residual":
        if len(widths) != 3:
            raise section.error(
                "widths",
                'architecture = "residual" expects [N_in, N, N_out] (input, stream, output), '
                f"got {_show(widths)}",
            )
        depth = section.integer("depth", sign="positive")
    elif section.has("depth"):
        raise section.error("depth", 'only used with architecture = "residual"')
    network = NetworkConfig(
        widths=widths,
        activation=section.choice("activation", ACTIVATIONS, "linear"),
        quadratic=section.coefficients("quadratic", (0.0, 1.0, 0.5)),
        output=section.choice("output", OUTPUTS, "identity"),
        bias=section.boolean("bias", True),
        connectivity=connectivity,
        offsets=offsets,
        ends=section.choice("ends", ENDS, "periodic"),
        architecture=architecture,
        depth=depth,
        loss=section.choice("loss", LOSSES, "mse"),
    )
    if architecture == "residual" and "banded" in network.connectivity:
        raise section.error(
            "connectivity", 'architecture = "residual" has dense layers and blocks only'
        )
    return network


def _parse_coordinates(section: _Section, network: NetworkConfig) -> CoordinatesConfig:
    widths = network.widths
    placement = section.choice("placement", PLACEMENTS, "cell")
    layout = section.per_layer("layout", LAYOUTS, "line", len(widths), "neuron layer")
    field_widths = [n for n, kind in zip(widths, layout, strict=True) if kind != "index"]
    if placement == "vertex" and field_widths and min(field_widths) < 2:
        raise section.error(
            "placement",
            "vertex placement needs at least 2 neurons per layer, "
            f"but [network] widths = {_show(widths)}",
        )
    if network.loss == "cross-entropy" and (layout[-1] != "index" or widths[-1] < 2):
        raise section.error(
            "layout",
            '[network] loss = "cross-entropy" is a softmax over classes: it needs an output '
            f'layer with layout "index" and at least 2 neurons, got layout {_show(layout[-1])} '
            f"and [network] widths[-1] = {widths[-1]}",
        )
    for index, (kind, width) in enumerate(zip(layout, widths, strict=True)):
        if kind == "grid" and math.isqrt(width) ** 2 != width:
            raise section.error(
                "layout",
                f"grid layer {index} needs a square width (n*n neurons), "
                f"but [network] widths[{index}] = {width}",
            )
    weights = section.choice("weights", WEIGHT_CONVENTIONS, "product")
    if weights != "product" and "dense" in network.connectivity:
        index = network.connectivity.index("dense")
        raise section.error(
            "weights",
            f"{_show(weights)} requires every layer to be banded, "
            f'but [network] connectivity is "dense" for weight layer {index}',
        )
    if placement == "random" and "grid" in layout:
        raise section.error(
            "placement", f'"random" places neurons on line layers, but layout = {_show(layout)}'
        )
    seed = section.integer("seed", 0, sign="non-negative")
    return CoordinatesConfig(placement=placement, layout=layout, weights=weights, seed=seed)


def _coordinate_names(layout: str, prefix: str) -> tuple[str, ...]:
    """Names of a layer's coordinates in formulas: ``y`` on a line, ``y1, y2`` on a grid,
    the index ``j`` (input side) or ``i`` (output side) on an index layer."""
    if layout == "index":
        return ("j",) if prefix == "y" else ("i",)
    return (prefix,) if layout == "line" else (f"{prefix}1", f"{prefix}2")


def _parse_table(
    section: _Section, kind: str, network: NetworkConfig, coordinates: CoordinatesConfig
) -> tuple[str | None, int | None, int, bool]:
    """``name``, ``samples``, ``test`` and ``standardize`` of tabular data (``kind`` =
    ``"dataset"`` or ``"file"``); a bundled set is loaded and its split checked here."""
    from .datasets import SHAPES, DataError, bundled, split

    tabular = _TABULAR
    for key, kinds in (
        ("test", tabular),
        ("standardize", tabular),
        ("scale", tabular),
        ("name", ("dataset",)),
    ):
        if section.has(key) and kind not in kinds:
            wanted = " or ".join(_show(k) for k in kinds)
            raise section.error(key, f"only used when kind = {wanted}, but kind = {_show(kind)}")
    if kind not in ("dataset", "file"):
        return None, section.integer("samples", 4, sign="positive"), 0, False
    samples = section.integer("samples", sign="positive") if section.has("samples") else None
    test = section.integer("test", 0, sign="non-negative")
    standardize = section.boolean("standardize", False)
    if kind == "file":
        if samples is not None and test >= samples:
            raise section.error(
                "test",
                f"{test} rows held out leave none of [data] samples = {samples} for training",
            )
        return None, samples, test, standardize
    name = section.choice("name", DATASET_NAMES, "") if section.has("name") else None
    if name is None:
        raise section.error("name", f'required when kind = "dataset"; {_one_of(DATASET_NAMES)}')
    rows, d, k = SHAPES[name]
    ends = (coordinates.layout[0], coordinates.layout[-1])
    if ends != ("index", "index"):
        raise section.error(
            "kind",
            f"the data set {name!r} has {d} features and {k} output(s) and no coordinates: it "
            f'needs [coordinates] layout "index" on the input and the output layer, got '
            f"{_show(list(ends))}",
        )
    if (network.widths[0], network.widths[-1]) != (d, k):
        raise section.error(
            "name",
            f"{name!r} has {d} features and {k} output(s), but [network] widths = "
            f"{_show(network.widths)} (the first must be {d}, the last {k})",
        )
    try:
        split(
            bundled(name),
            samples,
            test,
            standardize,
            section.integer("seed", 0, sign="non-negative"),
        )
    except DataError as exc:
        raise section.error(exc.key, str(exc)) from None
    return name, rows if samples is None else samples, test, standardize


def _parse_data(
    section: _Section, network: NetworkConfig, coordinates: CoordinatesConfig, base_dir: Path | None
) -> DataConfig:
    kind = section.choice("kind", DATA_KINDS, "expression")
    path = None
    if kind == "file":
        if not section.has("path"):
            raise section.error("path", 'required when kind = "file"')
        path = section.string("path")
        if not path.lower().endswith(DATA_SUFFIXES):
            raise section.error("path", f"expected a .npz, .h5 or .hdf5 file, got {_show(path)}")
        if base_dir is not None:
            path = os.path.normpath(base_dir / path)
    elif section.has("path"):
        raise section.error("path", f'only used when kind = "file", but kind = {_show(kind)}')
    input_names = _coordinate_names(coordinates.layout[0], "y")
    target_names = _coordinate_names(coordinates.layout[-1], "x")
    name, samples, test, standardize = _parse_table(section, kind, network, coordinates)
    return DataConfig(
        kind=kind,
        samples=samples,
        input=section.expression(
            "input",
            "sin(pi*(l+1)*" + ("j" if coordinates.layout[0] == "index" else "y") + ")",
            ("l", *input_names),
        ),
        target=section.expression("target", "0", ("l", *target_names)),
        path=path,
        seed=section.integer("seed", 0, sign="non-negative"),
        stiffness=section.number("stiffness", 1.0, sign="non-negative"),
        mass=section.number("mass", 0.0, sign="non-negative"),
        noise=section.number("noise", 0.0, sign="non-negative"),
        name=name,
        test=test,
        standardize=standardize,
        scale=section.number("scale", 1.0, sign="positive"),
    )


def _init_expressions(
    section: _Section, key: str, variables: tuple[str, ...], network: NetworkConfig
) -> Expression | tuple[Expression, ...]:
    """One formula, or (residual networks) a list of three: input layer, blocks, readout."""
    if network.architecture != "residual":
        return section.expression(key, "0", variables)
    variables = (*(name for name in variables if name != "m"), "tau")
    value = section.values.get(key, "0")
    if not isinstance(value, list):
        return section.expression(key, "0", variables)
    if len(value) != len(RESIDUAL_INIT_PARTS):
        raise section.error(
            key,
            "expected one formula or a list of 3 (" + ", ".join(RESIDUAL_INIT_PARTS) + "), "
            f"got {_show(value)}",
        )
    parts = []
    for part, item in zip(RESIDUAL_INIT_PARTS, value, strict=True):
        entry = _Section(section.name, {key: item}, section.source)
        try:
            parts.append(entry.expression(key, "0", variables))
        except ConfigError as exc:
            raise ConfigError(f"{exc} (the {part} entry)") from None
    return tuple(parts)


def _init_formulas(
    section: _Section, key: str, layers: list[tuple[str, ...]]
) -> Expression | tuple[Expression, ...]:
    """One formula for every weight layer, or a list with one per layer; ``layers[m]`` holds
    the variables layer ``m`` offers (besides ``m``), and a formula may use only those."""
    value = section.values.get(key, "0")
    if isinstance(value, list):
        if len(value) != len(layers) or not all(isinstance(item, str) for item in value):
            raise section.error(
                key,
                f"expected a formula, or a list of {len(layers)} (one per weight layer), "
                f"got {_show(value)}",
            )
        formulas = []
        for m, (text, names) in enumerate(zip(value, layers, strict=True)):
            try:
                formulas.append(parse_expression(text, (*names, "m")))
            except ExpressionError as exc:
                raise section.error(key, f"invalid formula for weight layer {m}: {exc}") from None
        return tuple(formulas)
    variables = INIT_WEIGHT_VARIABLES if key == "weight" else INIT_BIAS_VARIABLES
    formula = section.expression(key, "0", variables)
    for m, names in enumerate(layers):
        absent = sorted(formula.used - {*names, "m"})
        if absent:
            raise section.error(
                key,
                f"{_show(formula.text)} uses {', '.join(absent)}, which weight layer {m} does not "
                f"have (its variables: {', '.join(names)}, m); give a list with one formula per "
                "layer",
            )
    return formula


def _parse_init(
    section: _Section, network: NetworkConfig, coordinates: CoordinatesConfig
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
    return InitConfig(
        kind=section.choice("kind", INIT_KINDS, "expression"),
        weight=weight,
        bias=bias,
        scale=section.number("scale", 0.0, sign="non-negative"),
        seed=section.integer("seed", 0, sign="non-negative"),
    )


def _parse_training(section: _Section, data: DataConfig) -> TrainingConfig:
    dt = section.number("dt", 0.01, sign="positive")
    t_end = section.optional_number("t_end", sign="positive")
    if t_end is None:
        steps = section.integer("steps", 100, sign="positive")
    elif section.has("steps"):
        raise section.error(
            "t_end",
            f"cannot be combined with [training] steps = {_show(section.values['steps'])}; "
            "give either steps or t_end",
        )
    else:
        ratio = t_end / dt
        steps = round(ratio) if math.isfinite(ratio) else 0
        if steps < 1 or abs(steps * dt - t_end) > 1e-9 * t_end:
            raise section.error("t_end", f"{_show(t_end)} is not a multiple of dt = {_show(dt)}")
    batch = section.integer("batch", 1, sign="positive")
    samples = data.samples if data.kind in ("expression", "dataset") else None
    if samples is not None and batch > samples - data.test:
        raise section.error(
            "batch",
            f"{batch} exceeds [data] samples = {data.samples}"
            + (f" less test = {data.test}" if data.test else "")
            + " (a batch cannot hold more samples than the training set)",
        )
    rule = section.choice("rule", RULES, "flow")
    sampling = section.choice("sampling", SAMPLINGS, "epochs")
    if sampling != "epochs" and rule not in ("sgd", "momentum"):
        raise section.error(
            "sampling",
            f'{_show(sampling)} draws the batches of rule = "sgd" (or "momentum"), but '
            f"[training] rule = {_show(rule)} uses the full batch",
        )
    if sampling == "replacement" and rule == "momentum" and section.values.get("scheme") == "rk4":
        raise section.error(
            "scheme",
            '"rk4" integrates the full-batch damped dynamics; momentum SGD (sampling = '
            '"replacement") is the heavy ball on each step\'s batch (scheme = "heavy-ball")',
        )
    rule = section.choice("rule", RULES, "flow")
    gamma = section.number("gamma", 0.0, sign="non-negative")
    if rule == "momentum" and gamma * dt > 1.0:
        raise section.error(
            "gamma",
            f"γ·dt = {gamma * dt:.4g} > 1 (dt = {_show(dt)}): the step does not resolve the "
            f"damping time 1/γ = {1 / gamma:.4g}, so the discrete dynamics is not the damped "
            "equation θ̈ + γθ̇ + η∂C/∂θ = 0 that its continuum solves (heavy-ball moves θ by "
            "h²η∂C per step where the equation moves it by hη∂C/γ); choose dt ≤ 1/γ, or "
            "rule = 'flow' with lr divided by γ for the overdamped limit",
        )
    return TrainingConfig(
        rule=rule,
        lr=section.number("lr", 1.0, sign="positive"),
        gamma=gamma,
        steps=steps,
        t_end=t_end,
        dt=dt,
        batch=batch,
        seed=section.integer("seed", 0, sign="non-negative"),
        metric=section.choice("metric", METRICS, "continuum"),
        momentum_form=section.choice("momentum_form", MOMENTUM_FORMS, "central"),
        scheme=section.choice("scheme", MOMENTUM_SCHEMES, "heavy-ball"),
        sampling=sampling,
    )


def _parse_continuum(section: _Section) -> ContinuumConfig:
    degree = section.integer("degree", 2)
    if degree not in DEGREES:
        raise section.error("degree", f"expected {_one_of(DEGREES)}, got {degree}")
    theta = section.number("theta", 0.5)
    if not 0.0 <= theta <= 1.0:
        raise section.error("theta", f"expected a number in [0, 1], got {_show(theta)}")
    fluctuations = section.choice("fluctuations", FLUCTUATIONS, "none")
    return ContinuumConfig(
        degree=degree,
        cells=section.integer("cells", 32, sign="positive"),
        scheme=section.string("scheme") if section.has("scheme") else None,
        theta=theta,
        dt=section.optional_number("dt", sign="positive"),
        tolerance=section.number("tolerance", 1e-10, sign="positive"),
        enabled=section.boolean("enabled", True),
        input_layer=section.choice("input_layer", INPUT_LAYERS, "tensor"),
        fluctuations=fluctuations,
        sde_scheme=(
            section.choice("sde_scheme", SDE_SCHEMES, "euler-maruyama")
            if fluctuations == "sde"
            else None
        ),
        depth_cells=section.integer("depth_cells", sign="positive")
        if section.has("depth_cells")
        else None,
        distribute=section.choice("distribute", DISTRIBUTIONS, "auto"),
    )


def _check_fluctuations(section: _Section, continuum: ContinuumConfig) -> None:
    """``sde_scheme`` belongs to ``fluctuations = "sde"`` (which networks and rules the
    fluctuation models solve is declared by :mod:`continuum.models.registry`)."""
    if section.has("sde_scheme") and continuum.fluctuations != "sde":
        raise section.error(
            "sde_scheme",
            f'integrates fluctuations = "sde", but [continuum] fluctuations = '
            f"{_show(continuum.fluctuations)}",
        )


RESIDUAL_DEGREES = (1, 2, 3)
"""Degrees of the depth continuum whose flow converges to the residual networks' (at degree
≥ 4 the τ Riesz map of the RK4 stage evaluations converges to another flow,
docs/convergence.md "Residual networks")."""


def _check_residual(
    sections: dict[str, _Section],
    network: NetworkConfig,
    coordinates: CoordinatesConfig,
    continuum: ContinuumConfig,
) -> None:
    """Keys that a residual network (docs/physics.md "Depth as a coordinate") constrains:
    ``depth_cells`` belongs to it, its stream lies on a line, and its continuum's degree is
    one of :data:`RESIDUAL_DEGREES` (which continuum solves it is declared by
    :mod:`continuum.models.registry`)."""
    if network.architecture != "residual":
        if sections["continuum"].has("depth_cells"):
            raise sections["continuum"].error(
                "depth_cells", 'only used with [network] architecture = "residual"'
            )
        return
    if "grid" in coordinates.layout:
        raise sections["coordinates"].error(
            "layout", 'expected "line" layers with [network] architecture = "residual"'
        )
    if continuum.enabled and continuum.degree not in RESIDUAL_DEGREES:
        raise sections["continuum"].error(
            "degree",
            f"expected one of {', '.join(map(str, RESIDUAL_DEGREES))} with [network] "
            'architecture = "residual" (at degree 4 and above the depth continuum\'s flow '
            "converges to another limit than the networks'), got "
            f"{continuum.degree}",
        )


def _parse_output(section: _Section) -> OutputConfig:
    return OutputConfig(
        every=section.integer("every", 10, sign="positive"),
        fields=section.subset("fields", OUTPUT_FIELDS, OUTPUT_FIELDS),
        quiet=section.boolean("quiet", False),
    )


# --------------------------------------------------------------------------- public API


_ALIASES = {("continuum", "integrator"): "scheme"}
"""Former spellings of keys, read as the key they name."""


def _split_sections(document: dict[str, Any], source: str) -> dict[str, _Section]:
    """Wrap each section of ``document``, rejecting unknown sections and keys."""
    names = tuple(_SECTIONS)
    document = {
        name: _unalias(name, values, source) if isinstance(values, dict) else values
        for name, values in document.items()
    }
    for name, values in document.items():
        if name not in _SECTIONS:
            what = f"section [{name}]" if isinstance(values, dict) else f"top-level key '{name}'"
            hint = _suggestion(name, names, "[{}]") or "; sections: " + ", ".join(
                f"[{section}]" for section in names
            )
            raise ConfigError(f"{source}: unknown {what}{hint}")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{name}] must be a table, got {_show(values)}")
        keys = tuple(item.name for item in fields(_SECTIONS[name]))
        for key in values:
            if key not in keys:
                hint = _suggestion(key, keys) or "; keys: " + ", ".join(keys)
                raise ConfigError(f"{source}: [{name}] unknown key '{key}'{hint}")
    return {name: _Section(name, document.get(name, {}), source) for name in names}


def _unalias(name: str, values: dict[str, Any], source: str) -> dict[str, Any]:
    out = dict(values)
    for (section, old), new in _ALIASES.items():
        if section == name and old in out:
            if new in out:
                raise ConfigError(
                    f"{source}: [{name}] {old}: the former spelling of '{new}'; give one of them"
                )
            out[new] = out.pop(old)
    return out


def _parse_text(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text.removeprefix("\ufeff"))  # a UTF-8 byte-order mark
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: TOML syntax error: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: TOML syntax error: arrays nested too deeply") from None


def _build_config(document: dict[str, Any], source: str, base_dir: Path | None) -> Config:
    sections = _split_sections(document, source)
    experiment = _parse_experiment(sections["experiment"])
    network = _parse_network(sections["network"])
    coordinates = _parse_coordinates(sections["coordinates"], network)
    data = _parse_data(sections["data"], network, coordinates, base_dir)
    training = _parse_training(sections["training"], data)
    continuum = _parse_continuum(sections["continuum"])
    _check_fluctuations(sections["continuum"], continuum)
    _check_residual(sections, network, coordinates, continuum)
    return Config(
        experiment=experiment,
        network=network,
        coordinates=coordinates,
        data=data,
        init=_parse_init(sections["init"], network, coordinates),
        training=training,
        continuum=continuum,
        output=_parse_output(sections["output"]),
        source=source,
    )


def parse_config(
    text: str, source: str = "<string>", base_dir: str | os.PathLike[str] | None = None
) -> Config:
    """Parse and validate TOML ``text``; ``source`` names it in error messages.

    A relative ``[data] path`` is resolved against ``base_dir`` when given, else kept as
    written (see :func:`load_config`).

    Raises:
        ConfigError: The text is not valid TOML or not a valid configuration.
    """
    base = None if base_dir is None else Path(base_dir)
    return _build_config(_parse_text(text, source), source, base_dir=base)


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate the TOML configuration file at ``path``.

    A relative ``[data] path`` is resolved against the directory holding the file.

    Raises:
        ConfigError: The file cannot be read, is not valid TOML or not a valid configuration.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{path}: not a configuration file: larger than {MAX_CONFIG_BYTES} bytes"
            )
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration file: {exc}") from None
    return _build_config(_parse_text(text, str(path)), str(path), base_dir=path.absolute().parent)


def default_config() -> Config:
    """The built-in experiment: the linear perceptron of :data:`DEFAULT_TOML`."""
    return parse_config(DEFAULT_TOML, source="<default>")
