"""The whole configuration: the discrete sections and the continuum's ``[continuum]``, ``[output]``.

:class:`Config` extends :class:`discrete.config.DiscreteConfig` by the finite-element model
(:class:`ContinuumConfig`) and the output (:class:`OutputConfig`); their keys are declared once,
in :data:`CONTINUUM_KEYS` and :data:`OUTPUT_KEYS` (:class:`discrete.schema.Key`), and read by the
same validator as the discrete sections.  The choices of the keys come from the modules that
implement them: ``fluctuations`` from the families of :mod:`continuum.models.registry`,
``sde_scheme`` from :mod:`continuum.fields.sme`, ``input_layer`` from
:mod:`continuum.fields.dataspan`, ``distribute`` from :mod:`continuum.fem.distribution` and
``[output] fields`` from :mod:`continuum.io.output`; ``scheme`` is a name checked against the
registry's schemes by :func:`continuum.models.registry.resolve`.

The loaders here validate and do not resolve (:func:`continuum.load_config` and its siblings
resolve as well).  Nothing here imports DOLFINx.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from continuum.fem.distribution import DISTRIBUTIONS
from continuum.fields.dataspan import INPUT_LAYERS
from continuum.fields.depth_rule import DEPTH_RULES
from continuum.fields.sme import SCHEMES as SDE_SCHEMES
from continuum.io.output import OUTPUT_FIELDS
from continuum.models.registry import FLUCTUATIONS
from discrete import config as discrete
from discrete.schema import Key, Section, show

DEGREES = tuple(range(1, 25))
"""The polynomial degrees of the Lagrange elements (``[continuum] degree``)."""

QUADRATURES = ("gauss", "nodal")
"""The quadrature of the Galerkin fields (``[continuum] quadrature``): the checked Gauss rule
(:mod:`continuum.fem.quadrature`) or the Gauss–Lobatto–Legendre rule at the element's nodes
(:class:`continuum.fem.spaces.NodalSpace`)."""

DEFAULT_TOML = (
    discrete.DEFAULT_TOML
    + """
[continuum]
degree = 2
cells = 32
scheme = "theta"

[output]
every = 10
"""
)
"""The built-in experiment (identical to ``examples/perceptron.toml``)."""


@dataclass(frozen=True)
class ContinuumConfig:
    """``[continuum]``: the finite-element model; ``scheme`` is the time scheme (its choices and
    what each solves are declared by :mod:`continuum.models.registry`, which resolves ``None`` to
    the scheme that runs; ``integrator`` is accepted as its former spelling); ``dt`` is ``None`` to
    use the training dt; ``tolerance`` is the local error tolerance of the adaptive schemes;
    ``input_layer`` represents ``w^(0)`` in ``V_1 ⊗ V_0`` or in the span of the data; ``fluctuations
    = "moments"`` solves for the mean field and the SGD covariance instead, ``"sde"`` for one seeded
    path of the stochastic modified equation with ``sde_scheme`` (``None`` for the other models;
    docs/physics.md "SGD fluctuations"); ``distribute`` splits the rows of every weight block or the
    samples over the MPI ranks (``auto``: the rule of
    :mod:`continuum.fem.distribution`); ``quadrature_tolerance`` is the relative change at which
    the check of the Gauss rule stops raising it (:mod:`continuum.fem.quadrature`); ``quadrature``
    is that checked Gauss rule or the Gauss–Lobatto–Legendre rule at the element's nodes, with
    diagonal operators (``"nodal"``, :class:`continuum.fem.spaces.NodalSpace`)."""

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
    quadrature_tolerance: float
    quadrature: str
    depth_degree: int | None
    depth_steps: int | None
    depth_rule: str | None


CONTINUUM_KEYS = (
    Key("degree", "choice", 2, "the Lagrange elements' polynomial degree", choices=DEGREES),
    Key("cells", "integer", 32, "mesh cells per unit length of a layer", sign="positive"),
    Key("scheme", "string", None, "the time scheme (the registry's; absent: the first that runs)"),
    Key("theta", "number", 0.5, "θ of the theta scheme", bounds=(0.0, 1.0)),
    Key("dt", "number", None, "the continuum's step (absent: the training dt)", sign="positive"),
    Key(
        "tolerance",
        "number",
        1e-10,
        "local error tolerance (schemes adaptive and jax-adaptive)",
        sign="positive",
    ),
    Key("enabled", "boolean", True, "whether the continuum is solved beside the network"),
    Key("input_layer", "choice", "tensor", "the input layer's field", choices=INPUT_LAYERS),
    Key("fluctuations", "choice", "none", "the SGD fluctuation model", choices=FLUCTUATIONS),
    Key(
        "sde_scheme",
        "choice",
        "euler-maruyama",
        'the SDE path scheme (fluctuations = "sde" only)',
        choices=SDE_SCHEMES,
        conditional=True,
    ),
    Key(
        "depth_cells",
        "integer",
        None,
        'cells in the depth τ (architecture = "residual" only)',
        sign="positive",
    ),
    Key("distribute", "choice", "auto", "what the MPI ranks split", choices=DISTRIBUTIONS),
    Key(
        "quadrature_tolerance",
        "number",
        1e-12,
        "relative change at which the Gauss rule's check stops raising the rule",
        bounds=(1e-15, 1e-3),  # from rounding to far above any FE error
    ),
    Key(
        "quadrature",
        "choice",
        "gauss",
        "the Galerkin fields' quadrature: checked Gauss rule, or GLL at the nodes",
        choices=QUADRATURES,
    ),
    Key(
        "depth_degree",
        "choice",
        None,
        'the depth space V_τ\'s degree (architecture = "residual" only; absent: degree)',
        choices=DEGREES,
    ),
    Key(
        "depth_steps",
        "integer",
        None,
        'steps of depth_rule in τ per depth cell (architecture = "residual" only; absent: 1)',
        sign="positive",
    ),
    Key(
        "depth_rule",
        "choice",
        None,
        'the Runge–Kutta rule in τ (architecture = "residual" only; absent: rk4)',
        choices=DEPTH_RULES,
    ),
)


@dataclass(frozen=True)
class OutputConfig:
    """``[output]``: record ``fields`` every ``every`` steps; ``quiet`` silences progress."""

    every: int
    fields: tuple[str, ...]
    quiet: bool


OUTPUT_KEYS = (
    Key("every", "integer", 10, "steps between recorded steps", sign="positive"),
    Key("fields", "names", OUTPUT_FIELDS, "the per-step fields recorded", choices=OUTPUT_FIELDS),
    Key("quiet", "boolean", False, "silences the progress display"),
)


@dataclass(frozen=True)
class Config(discrete.DiscreteConfig):
    """A validated configuration, the discrete sections and ``[continuum]``, ``[output]``;
    :attr:`text` is its resolved TOML, which :func:`parse_config` reads back to an equal
    ``Config``."""

    continuum: ContinuumConfig
    output: OutputConfig

    SECTIONS: ClassVar[dict[str, tuple[Key, ...]]] = {
        **discrete.DiscreteConfig.SECTIONS,
        "continuum": CONTINUUM_KEYS,
        "output": OUTPUT_KEYS,
    }
    ALIASES: ClassVar[dict[tuple[str, str], str]] = {
        **discrete.DiscreteConfig.ALIASES,
        ("continuum", "integrator"): "scheme",
    }
    UNDECLARED: ClassVar[str] = ""

    @classmethod
    def parse_sections(
        cls, sections: dict[str, Section], parsed: discrete.DiscreteConfig
    ) -> dict[str, Any]:
        """``[continuum]`` and ``[output]``, with their cross-key checks."""
        section = sections["continuum"]
        plain = section.read_plain()
        _check_fluctuations(section, plain["fluctuations"])
        _check_residual(section, parsed.network, plain)
        _check_nodal(section, plain)
        sde = section.read("sde_scheme") if plain["fluctuations"] == "sde" else None
        return {
            "continuum": ContinuumConfig(**plain, sde_scheme=sde),
            "output": OutputConfig(**sections["output"].read_plain()),
        }


def _check_fluctuations(section: Section, fluctuations: str) -> None:
    """``sde_scheme`` belongs to ``fluctuations = "sde"`` (which networks and rules the
    fluctuation models solve is declared by :mod:`continuum.models.registry`)."""
    if section.has("sde_scheme") and fluctuations != "sde":
        raise section.error(
            "sde_scheme",
            f'integrates fluctuations = "sde", but [continuum] fluctuations = {show(fluctuations)}',
        )


def _check_nodal(section: Section, plain: dict[str, Any]) -> None:
    """``quadrature_tolerance`` stops the check of the Gauss rule; the nodal rule has none."""
    tolerance = plain["quadrature_tolerance"]
    if plain["quadrature"] == "nodal" and tolerance != section.default("quadrature_tolerance"):
        raise section.error(
            "quadrature_tolerance",
            f'{tolerance:g} is only read with quadrature = "gauss" (the checked rule), but '
            'quadrature = "nodal" (the rule of the nodes, fixed)',
        )


RESIDUAL_DEGREES = {"rk4": (1, 2, 3), "dop853": (1, 2, 3, 4, 5, 6, 7)}
"""Per ``[continuum] depth_rule``, the degrees of the depth space ``V_τ`` whose flow converges
to the residual networks' (above them the τ Riesz map of the stage evaluations converges to
another flow: the stage rule of an order-r tableau is exact to degree r − 1, docs/convergence.md
"Residual networks"); the stream space ``V_x`` takes any of :data:`DEGREES`
(``[continuum] depth_degree`` separates the two)."""


def _check_residual(
    section: Section, network: discrete.NetworkConfig, plain: dict[str, Any]
) -> None:
    """``depth_cells``, ``depth_degree``, ``depth_steps`` and ``depth_rule`` belong to the depth
    of a residual network, and that network's depth space has a degree of
    :data:`RESIDUAL_DEGREES` for its ``depth_rule`` (``depth_degree``, or ``degree`` where it is
    absent; docs/physics.md "Depth as a coordinate")."""
    if network.architecture != "residual":
        for name in ("depth_cells", "depth_degree", "depth_steps", "depth_rule"):
            if section.has(name):
                raise section.error(name, 'only used with [network] architecture = "residual"')
        return
    if not plain["enabled"]:
        return
    rule = plain["depth_rule"] or "rk4"
    degrees = RESIDUAL_DEGREES[rule]
    allowed = ", ".join(map(str, degrees))
    above = degrees[-1] + 1
    reason = (
        f"at degree {above} and above in τ the depth continuum's flow converges to another limit"
    )
    if plain["depth_degree"] is not None:
        if plain["depth_degree"] not in degrees:
            raise section.error(
                "depth_degree",
                f'expected one of {allowed} with [network] architecture = "residual" and '
                f"[continuum] depth_rule = {show(rule)} ({reason} than the networks'), "
                f"got {plain['depth_degree']}",
            )
    elif plain["degree"] not in degrees:
        raise section.error(
            "degree",
            f'expected one of {allowed} with [network] architecture = "residual", '
            f"[continuum] depth_rule = {show(rule)} and no [continuum] depth_degree "
            f"({reason} than the networks'), got {plain['degree']}: "
            "set [continuum] depth_degree = 2 to keep this degree in x",
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
    return discrete.build_config(discrete.parse_toml(text, source), source, base, Config)


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate the TOML configuration file at ``path``.

    A relative ``[data] path`` is resolved against the directory holding the file.

    Raises:
        ConfigError: The file cannot be read, is not valid TOML or not a valid configuration.
    """
    path = Path(path)
    document = discrete.parse_toml(discrete.read_text(path), str(path))
    return discrete.build_config(document, str(path), path.absolute().parent, Config)


def default_config() -> Config:
    """The built-in experiment: the linear perceptron of :data:`DEFAULT_TOML`."""
    return parse_config(DEFAULT_TOML, source="<default>")
