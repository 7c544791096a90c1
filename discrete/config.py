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
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .expressions import Expression, ExpressionError, parse_expression

ACTIVATIONS = ("linear", "quadratic", "tanh", "softplus", "relu")
OUTPUTS = ("identity", "activation")
CONNECTIVITIES = ("dense", "banded")
ENDS = ("periodic", "open")
PLACEMENTS = ("cell", "vertex", "periodic")
LAYOUTS = ("line", "grid")
WEIGHT_MAPS = ("product", "unit-cell", "linear")
DATA_KINDS = ("expression", "probes", "file")
DATA_SUFFIXES = (".npz", ".h5", ".hdf5")
INIT_KINDS = ("expression", "random")
RULES = ("flow", "gd", "sgd", "momentum")
METRICS = ("continuum", "plain")
MOMENTUM_FORMS = ("exp", "linear")
MOMENTUM_SCHEMES = ("heavy-ball", "rk4")
DEGREES = (1, 2)
MAX_CONFIG_BYTES = 1 << 20
"""Largest configuration file read (1 MiB): a device or a huge file is refused, not read."""
MAX_WEIGHTS = 10**8
"""Most weight coefficients a network may hold (0.8 GB per copy of θ in float64)."""
INTEGRATORS = ("matched", "exponential", "adaptive", "theta", "bdf2", "newmark", "implicit")
INPUT_LAYERS = ("tensor", "data-span")
OUTPUT_FIELDS = ("w", "b", "cost", "energy")
INIT_WEIGHT_VARIABLES = ("x", "y", "x1", "x2", "y1", "y2", "m")
INIT_BIAS_VARIABLES = ("x", "x1", "x2", "m")

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
integrator = "theta"

[output]
every = 10
"""
"""The built-in experiment (identical to ``examples/perceptron.toml``)."""

_EXPERIMENT_NAME = re.compile(r"[A-Za-z0-9_-]+")


class ConfigError(ValueError):
    """An invalid configuration; the message names the source, ``[section] key`` and problem."""


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
    ``ends`` describe the band of the banded layers; ``quadratic`` holds the coefficients
    ``(c0, c1, c2)`` of the quadratic activation.
    """

    widths: tuple[int, ...]
    activation: str
    quadratic: tuple[float, float, float]
    output: str
    bias: bool
    connectivity: tuple[str, ...]
    offsets: tuple[int, ...]
    ends: str


@dataclass(frozen=True)
class CoordinatesConfig:
    """``[coordinates]``: neuron placement, one ``layout`` per neuron layer, weight map."""

    placement: str
    layout: tuple[str, ...]
    weights: str


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: where the training pairs come from.

    ``input`` is a formula in ``l`` and the input-layer coordinates (``y`` or ``y1, y2``),
    ``target`` one in ``l`` and the output-layer coordinates (``x`` or ``x1, x2``). ``path`` is
    set only for ``kind = "file"``, resolved against the directory of the configuration file.
    ``stiffness`` and ``mass`` are the probe amplitudes κ and m² of ``kind = "probes"``.
    """

    kind: str
    samples: int
    input: Expression
    target: Expression
    path: str | None
    seed: int
    stiffness: float
    mass: float
    noise: float


@dataclass(frozen=True)
class InitConfig:
    """``[init]``: initial weights and biases, as formulas or seeded noise of size ``scale``."""

    kind: str
    weight: Expression
    bias: Expression
    scale: float
    seed: int


@dataclass(frozen=True)
class TrainingConfig:
    """``[training]``: the update rule and its clock.

    ``steps`` is always resolved: given directly, computed as ``t_end / dt`` when ``t_end`` is
    given (``t_end`` is ``None`` otherwise), or 100 by default.
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


@dataclass(frozen=True)
class ContinuumConfig:
    """``[continuum]``: the finite-element model; ``dt`` is ``None`` to use the training dt;
    ``tolerance`` is the local error tolerance of the adaptive integrator; ``input_layer``
    represents ``w^(0)`` in ``V_1 ⊗ V_0`` or in the span of the data."""

    degree: int
    cells: int
    integrator: str
    theta: float
    dt: float | None
    tolerance: float
    enabled: bool
    input_layer: str


@dataclass(frozen=True)
class OutputConfig:
    """``[output]``: record ``fields`` every ``every`` steps; ``quiet`` silences progress."""

    every: int
    fields: tuple[str, ...]
    quiet: bool


@dataclass(frozen=True)
class Config:
    """A validated experiment configuration, with the TOML ``text`` it was read from."""

    experiment: ExperimentConfig
    network: NetworkConfig
    coordinates: CoordinatesConfig
    data: DataConfig
    init: InitConfig
    training: TrainingConfig
    continuum: ContinuumConfig
    output: OutputConfig
    text: str = field(repr=False)
    source: str


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


_SHOW_LIMIT = 120
"""Characters of a value shown in an error message before it is cut with ``…``."""


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


def _is_integer(value: object) -> bool:
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
        return tuple(numbers)

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
    return NetworkConfig(
        widths=widths,
        activation=section.choice("activation", ACTIVATIONS, "linear"),
        quadratic=section.numbers("quadratic", (0.0, 1.0, 0.5), length=3),
        output=section.choice("output", OUTPUTS, "identity"),
        bias=section.boolean("bias", True),
        connectivity=connectivity,
        offsets=offsets,
        ends=section.choice("ends", ENDS, "periodic"),
    )


def _parse_coordinates(section: _Section, network: NetworkConfig) -> CoordinatesConfig:
    widths = network.widths
    placement = section.choice("placement", PLACEMENTS, "cell")
    if placement == "vertex" and min(widths) < 2:
        raise section.error(
            "placement",
            "vertex placement needs at least 2 neurons per layer, "
            f"but [network] widths = {_show(widths)}",
        )
    layout = section.per_layer("layout", LAYOUTS, "line", len(widths), "neuron layer")
    for index, (kind, width) in enumerate(zip(layout, widths, strict=True)):
        if kind == "grid" and math.isqrt(width) ** 2 != width:
            raise section.error(
                "layout",
                f"grid layer {index} needs a square width (n*n neurons), "
                f"but [network] widths[{index}] = {width}",
            )
    weights = section.choice("weights", WEIGHT_MAPS, "product")
    if weights != "product" and "dense" in network.connectivity:
        index = network.connectivity.index("dense")
        raise section.error(
            "weights",
            f"{_show(weights)} requires every layer to be banded, "
            f'but [network] connectivity is "dense" for weight layer {index}',
        )
    return CoordinatesConfig(placement=placement, layout=layout, weights=weights)


def _coordinate_names(layout: str, prefix: str) -> tuple[str, ...]:
    """Names of a layer's coordinates in formulas: ``y`` on a line, ``y1, y2`` on a grid."""
    return (prefix,) if layout == "line" else (f"{prefix}1", f"{prefix}2")


def _parse_data(
    section: _Section, coordinates: CoordinatesConfig, base_dir: Path | None
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
    return DataConfig(
        kind=kind,
        samples=section.integer("samples", 4, sign="positive"),
        input=section.expression("input", "sin(pi*(l+1)*y)", ("l", *input_names)),
        target=section.expression("target", "0", ("l", *target_names)),
        path=path,
        seed=section.integer("seed", 0, sign="non-negative"),
        stiffness=section.number("stiffness", 1.0, sign="non-negative"),
        mass=section.number("mass", 0.0, sign="non-negative"),
        noise=section.number("noise", 0.0, sign="non-negative"),
    )


def _parse_init(section: _Section) -> InitConfig:
    return InitConfig(
        kind=section.choice("kind", INIT_KINDS, "expression"),
        weight=section.expression("weight", "0", INIT_WEIGHT_VARIABLES),
        bias=section.expression("bias", "0", INIT_BIAS_VARIABLES),
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
    if data.kind == "expression" and batch > data.samples:
        raise section.error(
            "batch",
            f"{batch} exceeds [data] samples = {data.samples} (a batch cannot hold more samples "
            "than the data set)",
        )
    return TrainingConfig(
        rule=section.choice("rule", RULES, "flow"),
        lr=section.number("lr", 1.0, sign="positive"),
        gamma=section.number("gamma", 0.0, sign="non-negative"),
        steps=steps,
        t_end=t_end,
        dt=dt,
        batch=batch,
        seed=section.integer("seed", 0, sign="non-negative"),
        metric=section.choice("metric", METRICS, "continuum"),
        momentum_form=section.choice("momentum_form", MOMENTUM_FORMS, "exp"),
        scheme=section.choice("scheme", MOMENTUM_SCHEMES, "heavy-ball"),
    )


def _parse_continuum(section: _Section) -> ContinuumConfig:
    degree = section.integer("degree", 2)
    if degree not in DEGREES:
        raise section.error("degree", f"expected {_one_of(DEGREES)}, got {degree}")
    theta = section.number("theta", 0.5)
    if not 0.0 <= theta <= 1.0:
        raise section.error("theta", f"expected a number in [0, 1], got {_show(theta)}")
    return ContinuumConfig(
        degree=degree,
        cells=section.integer("cells", 32, sign="positive"),
        integrator=section.choice("integrator", INTEGRATORS, "matched"),
        theta=theta,
        dt=section.optional_number("dt", sign="positive"),
        tolerance=section.number("tolerance", 1e-10, sign="positive"),
        enabled=section.boolean("enabled", True),
        input_layer=section.choice("input_layer", INPUT_LAYERS, "tensor"),
    )


def _parse_output(section: _Section) -> OutputConfig:
    return OutputConfig(
        every=section.integer("every", 10, sign="positive"),
        fields=section.subset("fields", OUTPUT_FIELDS, OUTPUT_FIELDS),
        quiet=section.boolean("quiet", False),
    )


# --------------------------------------------------------------------------- public API


def _split_sections(document: dict[str, Any], source: str) -> dict[str, _Section]:
    """Wrap each section of ``document``, rejecting unknown sections and keys."""
    names = tuple(_SECTIONS)
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


def _build_config(text: str, source: str, base_dir: Path | None) -> Config:
    try:
        document = tomllib.loads(text.removeprefix("\ufeff"))  # a UTF-8 byte-order mark
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: TOML syntax error: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: TOML syntax error: arrays nested too deeply") from None
    sections = _split_sections(document, source)
    experiment = _parse_experiment(sections["experiment"])
    network = _parse_network(sections["network"])
    coordinates = _parse_coordinates(sections["coordinates"], network)
    data = _parse_data(sections["data"], coordinates, base_dir)
    return Config(
        experiment=experiment,
        network=network,
        coordinates=coordinates,
        data=data,
        init=_parse_init(sections["init"]),
        training=_parse_training(sections["training"], data),
        continuum=_parse_continuum(sections["continuum"]),
        output=_parse_output(sections["output"]),
        text=text,
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
    return _build_config(text, source, base_dir=None if base_dir is None else Path(base_dir))


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
    return _build_config(text, str(path), base_dir=path.absolute().parent)


def default_config() -> Config:
    """The built-in experiment: the linear perceptron of :data:`DEFAULT_TOML`."""
    return parse_config(DEFAULT_TOML, source="<default>")
