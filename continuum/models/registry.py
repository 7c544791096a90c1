"""Which continuum model, with which time scheme, solves which discrete run.

Every continuum solver is declared here once, as an :class:`Entry`: a model *family* (which
networks and data it represents as fields, docs/physics.md "The continuum models") paired
with a time *scheme* (``[continuum] scheme``), the training rules that pair integrates, its
``dt`` policy and any further requirement.  :func:`resolve` is the only place where a
configuration is matched to a solver: it runs when the configuration is loaded
(:func:`continuum.load_config`) and again before a model is built, and it refuses every
combination that no entry solves with one :class:`~discrete.config.ConfigError` naming the
keys and the valid choices.  An absent ``scheme`` resolves to the first entry (in the order
below) that solves the run, and the resolved configuration is what ``fields.h5`` records.

Adding a solver is one module plus one :class:`Entry` in :data:`ENTRIES`.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from continuum.fields.layers import KINDS, kind_name
from discrete.config import ConfigError
from discrete.conventions import layer_weights
from discrete.training import RULES

if TYPE_CHECKING:
    from continuum.settings import Config

DtPolicy = Literal["training", "own", "adaptive"]
"""``training``: steps with ``[training] dt`` (``[continuum] dt`` refused unless equal);
``own``: ``[continuum] dt`` may set a step of its own, which divides the training ``dt`` (every
time the fields are compared at is a multiple of it); ``adaptive``: chooses its own steps to
``[continuum] tolerance`` and reports at the training ``dt`` (``[continuum] dt`` refused)."""


@dataclass(frozen=True)
class Scheme:
    """A time scheme of the continuum, ``[continuum] scheme = name``; ``reads`` lists the keys
    of :data:`OPTIONAL_KEYS` that the scheme reads whatever fields it steps, ``read_for`` the
    rules a key of them is read for where that is not every rule the scheme integrates."""

    name: str
    summary: str
    dt: DtPolicy
    reads: tuple[str, ...] = ()
    read_for: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def reads_key(self, key: str, rule: str) -> bool:
        """Whether a run of ``[training] rule`` with this scheme reads ``[continuum] key``."""
        only = dict(self.read_for).get(key)
        return key in self.reads and (only is None or rule in only)


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme(
            "matched",
            "the training rule's own scheme and step (RK4 flow, Euler/SGD, heavy ball or RK4 "
            "momentum); from 32768 weight coefficients the RK4 flow keeps its rank-L weight "
            "forces factored",
            "training",
        ),
        Scheme(
            "exponential",
            "the exact flow in time: residuals u(t) = u(0) e^{−Kt}, one update per output time",
            "training",
        ),
        Scheme(
            "adaptive",
            "the gradient flow to [continuum] tolerance: PETSc TS Verner 8(7) with steps of "
            "its own, reported at the training dt",
            "adaptive",
            ("tolerance",),
        ),
        Scheme(
            "jax",
            "the RK4 flow with the training dt compiled with JAX: the continuum cost in JAX, "
            "its coefficient gradient by jax.grad and the Riesz map M⁻¹ (∂C/∂W) M⁻¹, all steps "
            "between output times in one lax.fori_loop",
            "training",
        ),
        Scheme(
            "jax-adaptive",
            "the gradient flow to [continuum] tolerance compiled with JAX: the force of scheme "
            "'jax', Dormand–Prince 8(5,3) with steps of its own in one lax.while_loop per "
            "output interval, reported at the training dt",
            "adaptive",
            ("tolerance",),
        ),
        Scheme(
            "implicit",
            "Newton (PETSc SNES): θ-method (flow) or implicit midpoint (momentum)",
            "own",
            ("theta",),
            (("theta", ("flow",)),),
        ),
        Scheme("theta", "θ-method (`[continuum] theta`) of a linear flow", "own", ("theta",)),
        Scheme("bdf2", "BDF2 of a linear flow", "own"),
        Scheme("newmark", "Newmark β = ¼ of the damped wave equation", "own"),
        Scheme(
            "law",
            "the exact SGD law (mean and factored covariance) stepped with the training dt",
            "training",
        ),
        Scheme(
            "lna",
            "the linear-noise approximation: the full-batch mean and the covariance kept as a "
            "truncated factor, linearised around the mean, stepped with the training dt",
            "training",
        ),
        Scheme(
            "sde",
            "one seeded path of the stochastic modified equation (`[continuum] sde_scheme`: "
            "Euler–Maruyama or weak order 2) at a step dividing the training dt",
            "own",
        ),
    )
}


# --------------------------------------------------------------------------- families


def layer_kinds(cfg: Config) -> tuple[str, ...]:
    """The continuum layer kind of every weight layer (:data:`continuum.fields.layers.KINDS`):
    ``dense`` (a product field ``w(x, y)``), ``unit-cell`` (banded, one field per offset), or
    ``none``."""
    conns = cfg.network.connectivity
    conventions = layer_weights(cfg.coordinates.weights, len(conns))
    return tuple(kind_name(c, w) for c, w in zip(conns, conventions, strict=True))


def _no_continuum_of_layers(cfg: Config) -> str | None:
    kinds = layer_kinds(cfg)
    if "none" not in kinds:
        return None
    if "linear" in layer_weights(cfg.coordinates.weights, len(kinds)):
        return (
            "[coordinates] weights = 'linear': the linear ordering is a statement at fixed "
            "lattice spacing (its stiffness vanishes like a²); solve the banded layers' "
            "continuum with weights = 'unit-cell' (docs/toy-models.md)"
        )
    return (
        "[network] connectivity = 'banded' with [coordinates] weights = 'product': banded "
        "layers have no product-domain continuum; use weights = 'unit-cell' (their "
        "ultra-local limit)"
    )


@dataclass(frozen=True)
class Family:
    """A continuum model family: the networks and data it represents as fields.

    A family is considered for runs whose ``[continuum] fluctuations`` equals its own;
    ``accepts(cfg)`` returns ``None`` when it represents the run, else the reason it
    does not (naming the keys); ``width_order`` is the order in ``1/N`` at which networks of
    width ``N`` (cell or periodic placement, smooth data) approach the family's fields
    (docs/convergence.md)."""

    name: str
    summary: str
    accepts: Callable[[Config], str | None]
    width_order: int
    fluctuations: str = "none"


def _feedforward(cfg: Config) -> str | None:
    if cfg.network.architecture != "feedforward":
        return (
            f"[network] architecture = {cfg.network.architecture!r}: a residual network's "
            "continuum is the depth continuum"
        )
    return None


def _tabular_on_index_layers(cfg: Config) -> bool:
    """Arrays of samples (a data set, a file) are data of the continuum only on index input and
    output layers, whose points are the features and the classes (docs/physics.md "Index
    layers")."""
    layout = cfg.coordinates.layout
    return cfg.data.kind in ("dataset", "file") and layout[0] == layout[-1] == "index"


def _mse(cfg: Config) -> str | None:
    if cfg.network.loss != "mse":
        return (
            f"[network] loss = {cfg.network.loss!r}: only the tensor-product Galerkin fields "
            "of dense networks solve it"
        )
    return None


def series_family(kinds: tuple[str, ...]) -> str | None:
    """The model family of a feed-forward series of layer ``kinds`` (:func:`layer_kinds`; each
    kind of :data:`KINDS` names its own): ``galerkin`` when every kind's is, else the one other
    family its kinds name; ``None`` when a layer has no kind or the kinds name two others."""
    if "none" in kinds:
        return None
    special = {KINDS[kind].family for kind in kinds} - {"galerkin"}
    if len(special) > 1:
        return None
    return special.pop() if special else "galerkin"


def _galerkin(family: str, kind: str) -> Callable[[Config], str | None]:
    """The family of series whose kinds are all ``galerkin``'s, or that hold a ``kind`` layer
    (its family's); what each kind needs at its layer is its own :meth:`LayerKind.requires`."""

    def accepts(cfg: Config) -> str | None:
        if _feedforward(cfg) is not None:
            return _feedforward(cfg)
        tabular = family == "galerkin" and _tabular_on_index_layers(cfg)
        if cfg.data.kind != "expression" and not tabular:
            return (
                f"[data] kind = {cfg.data.kind!r}: the {kind} Galerkin fields need data given as "
                "expressions of the coordinates ([data] input and target), or arrays on index "
                "input and output layers ([coordinates] layout)"
            )
        kinds = layer_kinds(cfg)
        single = cfg.network.widths[0] == 1 or cfg.coordinates.layout[0] == "index"
        if cfg.continuum.input_layer == "data-span" and (kinds[0] != "dense" or single):
            return (
                "[continuum] input_layer = 'data-span' represents a dense input layer on a line "
                "or a grid; use input_layer = 'tensor' for this network"
            )
        reason = _no_continuum_of_layers(cfg)
        if reason is not None:
            return reason
        if series_family(kinds) != family:
            return (
                f"[network] connectivity: the {kind} fields need every layer {kind}"
                if family == "galerkin"
                else f"[network] connectivity: the {kind} fields need a {kind} layer"
            )
        for m, name in enumerate(kinds):
            reason = KINDS[name].requires(cfg, m)
            if reason is not None:
                return reason
        return None

    return accepts


def _perceptron(cfg: Config) -> str | None:
    net = cfg.network
    reason = _galerkin("galerkin", "dense")(cfg)
    if reason is not None:
        return reason
    if len(net.widths) != 2 or net.activation != "linear":
        return (
            f"[network] widths = {list(net.widths)}, activation = {net.activation!r}: the "
            "row-decoupled solver is the linear one-layer perceptron's"
        )
    if _mse(cfg) is not None or "index" in cfg.coordinates.layout:
        return _mse(cfg) or (
            "[coordinates] layout = 'index': the row-decoupled solver is that of line layers"
        )
    if cfg.training.metric != "continuum":
        return (
            "[training] metric = 'plain': the row-decoupled solver needs metric = 'continuum' "
            "(one rate η for weights and biases)"
        )
    return None


def _probes(cfg: Config) -> str | None:
    net = cfg.network
    if cfg.data.kind != "probes":
        return f"[data] kind = {cfg.data.kind!r}: the local theory is that of probe data sets"
    if _feedforward(cfg) is not None or _mse(cfg) is not None:
        return _feedforward(cfg) or _mse(cfg)
    if net.bias or net.widths[-1] != 1 or len(net.widths) != 2:
        return (
            f"[network] widths = {list(net.widths)}, bias = {str(net.bias).lower()}: probe data "
            "make Goldstein's chain from a one-layer, single-output network without bias; set "
            "widths = [N, 1], bias = false"
        )
    if cfg.coordinates.placement == "periodic" and cfg.continuum.cells < 3:
        return (
            f"[continuum] cells = {cfg.continuum.cells}: the periodic chain's circle needs at "
            "least 3 cells"
        )
    if net.output == "activation" and net.activation != "linear":
        return (
            f"[network] activation = {net.activation!r}, output = 'activation': Goldstein's "
            "chain is the linear layer's; set output = 'identity' or activation = 'linear'"
        )
    if layer_kinds(cfg) != ("dense",):
        return (
            "[network] connectivity = 'banded': Goldstein's chain is the dense layer's "
            "(connectivity = 'dense')"
        )
    return None


def _linear_layer_law(cfg: Config) -> str | None:
    net = cfg.network
    reason = _galerkin("galerkin", "dense")(cfg)
    if reason is not None:
        return reason
    linear = net.output == "identity" or net.activation == "linear"
    if len(net.widths) != 2 or not linear or _mse(cfg) is not None:
        return (
            f"[network] widths = {list(net.widths)}, activation = {net.activation!r}, loss = "
            f"{net.loss!r}: the SGD law is that of one dense layer with a linear output and "
            "the squared error"
        )
    if cfg.training.metric != "continuum":
        return "[training] metric = 'plain': the SGD law needs metric = 'continuum'"
    return None


def _linear_noise(cfg: Config) -> str | None:
    reason = _galerkin("galerkin", "dense")(cfg)
    if reason is not None:
        return reason
    return (
        None
        if cfg.continuum.input_layer == "tensor"
        else (
            f"[continuum] input_layer = {cfg.continuum.input_layer!r}: the linear-noise "
            "approximation represents the input layer in the tensor space (input_layer = 'tensor')"
        )
    )


def _depth(cfg: Config) -> str | None:
    if cfg.network.architecture != "residual":
        return "[network] architecture = 'feedforward': the depth continuum is a residual network's"
    if cfg.data.kind != "expression":
        return (
            f"[data] kind = {cfg.data.kind!r}: the depth continuum needs data given as "
            "expressions of the coordinates"
        )
    if _mse(cfg) is not None or "index" in cfg.coordinates.layout:
        return _mse(cfg) or (
            "[coordinates] layout = 'index': the depth continuum is that of line layers"
        )
    if cfg.continuum.input_layer != "tensor":
        return (
            f"[continuum] input_layer = {cfg.continuum.input_layer!r}: the depth continuum "
            "represents its input layer in the tensor space (input_layer = 'tensor')"
        )
    return None


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "galerkin",
            "dense networks of any depth: tensor-product Galerkin fields",
            _galerkin("galerkin", "dense"),
            width_order=2,
        ),
        Family(
            "unit-cell",
            "banded layers with weights = 'unit-cell', alone or in series with dense ones "
            "(weights = ['product', 'unit-cell', …]): the ultra-local limit "
            "z = Σ_s w_s(x) h(x) + b(x) of each banded layer, which drops the input shift s·a",
            _galerkin("unit-cell", "unit-cell"),
            width_order=1,
        ),
        Family(
            "perceptron",
            "the linear one-layer perceptron: row-decoupled implicit solves with the kernel "
            "kept factored",
            _perceptron,
            width_order=2,
        ),
        Family(
            "local",
            "probe data sets (Goldstein, Klein–Gordon): the local wave equation",
            _probes,
            width_order=2,
        ),
        Family(
            "residual",
            "residual networks, depth as a coordinate: fields w(τ, x, y), b(τ, x) in "
            "V_τ ⊗ V_x ⊗ V_x, the stream ∂_τ s = ∫ w σ(s) dy + b by RK4 in τ with its exact "
            'adjoint (docs/physics.md, "Depth as a coordinate")',
            _depth,
            width_order=2,
        ),
        Family(
            "moments",
            '`fluctuations = "moments"`, SGD with i.i.d. batches of one linear layer: the '
            "mean field and the covariance "
            'Q, factored through the data (docs/physics.md, "SGD fluctuations")',
            _linear_layer_law,
            width_order=2,
            fluctuations="moments",
        ),
        Family(
            "linear-noise",
            '`fluctuations = "moments"`, SGD or momentum SGD with i.i.d. batches of a dense '
            "network of any depth and activation: the full-batch mean fields and the covariance "
            'linearised around them, kept factored (docs/physics.md, "SGD fluctuations")',
            _linear_noise,
            width_order=2,
            fluctuations="moments",
        ),
        Family(
            "sme",
            '`fluctuations = "sde"`, SGD with i.i.d. batches of one linear layer: paths of '
            "the stochastic modified equation with L noise channels",
            _linear_layer_law,
            width_order=2,
            fluctuations="sde",
        ),
    )
}

FLUCTUATIONS = tuple(dict.fromkeys(family.fluctuations for family in FAMILIES.values()))
"""The choices of ``[continuum] fluctuations``: ``none`` (the mean fields) and the fluctuation
models that some family solves."""


# --------------------------------------------------------------------------- entries


def _one_linear_layer(cfg: Config) -> str | None:
    """one layer with a linear output and the squared error"""
    net = cfg.network
    affine = net.activation == "linear" or net.output == "identity"
    if len(net.widths) != 2 or not affine or net.loss != "mse":
        return (
            f"[network] widths = {list(net.widths)}, output = {net.output!r}, loss = "
            f"{net.loss!r}: the exact flow is that of one layer with a linear output and the "
            "squared error"
        )
    return None


def _iid_batches(cfg: Config) -> str | None:
    """`[training] sampling = "replacement"`"""
    if cfg.training.sampling != "replacement":
        return (
            f"[training] sampling = {cfg.training.sampling!r}: the SGD law has a field limit "
            "for i.i.d. batches, sampling = 'replacement'"
        )
    return None


def _batched_heavy_ball(cfg: Config) -> str | None:
    """`sampling = "replacement"`; momentum: `momentum_scheme = "heavy-ball"`"""
    tr = cfg.training
    if tr.rule == "momentum" and tr.momentum_scheme != "heavy-ball":
        return (
            f"[training] momentum_scheme = {tr.momentum_scheme!r}: the linear-noise approximation "
            "of momentum SGD linearises the heavy ball (momentum_scheme = 'heavy-ball')"
        )
    return _iid_batches(cfg)


def _full_batch(cfg: Config) -> str | None:
    """a full batch (no `sampling = "replacement"` for momentum)"""
    if cfg.training.sampling == "replacement":
        return (
            "[training] sampling = 'replacement': this scheme integrates the full-batch "
            "dynamics; momentum SGD runs with scheme = 'matched' (the same batches) or "
            "fluctuations = 'moments'"
        )
    return None


def _theta_for_the_local_flow(cfg: Config) -> str | None:
    """`theta` in [0.5, 1]"""
    theta = cfg.continuum.theta
    if cfg.training.rule == "flow" and not 0.5 <= theta <= 1.0:
        return f"[continuum] theta = {theta:g}: the local flow solver is stable for θ in [0.5, 1]"
    return None


def _compiled_flow(cfg: Config) -> str | None:
    """`input_layer = "tensor"`; the `jax` package; one MPI rank"""
    if cfg.continuum.input_layer != "tensor":
        return (
            f"[continuum] input_layer = {cfg.continuum.input_layer!r}: the compiled flow "
            "represents the input layer in the tensor space (input_layer = 'tensor')"
        )
    if importlib.util.find_spec("jax") is None:
        return (
            f"[continuum] scheme = {cfg.continuum.scheme or 'jax'!r} needs the jax package "
            "(pip install 'synfield[jax]'); or choose scheme = 'matched'"
        )
    return None


@dataclass(frozen=True)
class Entry:
    """One solver: a family, a scheme, the rules it integrates and where it is built.

    ``build`` is ``"module:function"`` with ``function(setup, comm)`` returning the
    :class:`~continuum.models.model.ContinuumModel`; it is imported only when a model is built, so
    resolving a configuration never imports DOLFINx; ``samples`` marks the solvers that can
    split the samples over the MPI ranks (``[continuum] distribute``,
    :mod:`continuum.fem.distribution`), the others split rows or their mesh; ``nodal`` marks
    the solvers built on the Galerkin factor spaces, which run with ``[continuum] quadrature =
    "nodal"`` (:class:`~continuum.fem.spaces.NodalSpace`), the others need the Gauss rule;
    ``reads`` lists the keys of :data:`OPTIONAL_KEYS` that its fields read (its scheme's are
    :attr:`Scheme.reads`; a value other than the default of any other is refused,
    :func:`_unread_problem`)."""

    family: str
    scheme: str
    rules: tuple[str, ...]
    build: str
    requires: Callable[[Config], str | None] | None = None
    samples: bool = False
    nodal: bool = False
    reads: tuple[str, ...] = ()

    @property
    def keys_read(self) -> tuple[str, ...]:
        """The keys of :data:`OPTIONAL_KEYS` that the solver reads for some rule: its scheme's
        and its fields'."""
        return SCHEMES[self.scheme].reads + self.reads

    def reads_key(self, key: str, rule: str) -> bool:
        """Whether the solver reads ``[continuum] key`` in a run of ``[training] rule``."""
        return key in self.reads or SCHEMES[self.scheme].reads_key(key, rule)

    def builder(self) -> Callable:
        module, name = self.build.split(":")
        return getattr(importlib.import_module(module), name)


_LIMIT = "continuum.models.limit"
CHECKED_RULE = ("quadrature_tolerance",)
"""What the fields whose Gauss rule is checked (continuum/fem/quadrature.py) read where they
have no input layer to choose: the check's tolerance (the compiled and linear-noise Galerkin
fields, the perceptron's solver for its data moments, the depth continuum for its rule in x)."""
GALERKIN_READS = (*CHECKED_RULE, "input_layer")
"""What the fields built on :class:`~continuum.models.limit.GalerkinModel` read: the tolerance
of their Gauss rule's check and the input layer's representation."""


ENTRIES: tuple[Entry, ...] = (
    Entry(
        "galerkin",
        "matched",
        RULES,
        f"{_LIMIT}:galerkin_matched",
        samples=True,
        nodal=True,
        reads=GALERKIN_READS,
    ),
    Entry(
        "galerkin",
        "exponential",
        ("flow",),
        f"{_LIMIT}:galerkin_exponential",
        _one_linear_layer,
        nodal=True,
        reads=GALERKIN_READS,
    ),
    Entry(
        "galerkin",
        "adaptive",
        ("flow",),
        f"{_LIMIT}:galerkin_adaptive",
        samples=True,
        nodal=True,
        reads=GALERKIN_READS,
    ),
    Entry(
        "galerkin",
        "jax",
        ("flow",),
        f"{_LIMIT}:galerkin_jax",
        _compiled_flow,
        nodal=True,
        reads=CHECKED_RULE,  # input_layer: "tensor" only,
    ),
    Entry(
        "galerkin",
        "jax-adaptive",
        ("flow",),
        f"{_LIMIT}:galerkin_jax_adaptive",
        _compiled_flow,
        nodal=True,
        reads=CHECKED_RULE,  # input_layer: "tensor" only,
    ),
    Entry(
        "galerkin",
        "implicit",
        ("flow", "momentum"),
        f"{_LIMIT}:galerkin_implicit",
        _full_batch,
        nodal=True,
        reads=GALERKIN_READS,
    ),
    Entry(
        "unit-cell",
        "matched",
        RULES,
        f"{_LIMIT}:galerkin_matched",
        samples=True,
        nodal=True,
        reads=GALERKIN_READS,
    ),
    Entry(
        "unit-cell",
        "adaptive",
        ("flow",),
        f"{_LIMIT}:galerkin_adaptive",
        nodal=True,
        reads=GALERKIN_READS,
    ),
    Entry("perceptron", "theta", ("flow",), f"{_LIMIT}:PerceptronModel", reads=CHECKED_RULE),
    Entry("perceptron", "bdf2", ("flow",), f"{_LIMIT}:PerceptronModel", reads=CHECKED_RULE),
    Entry("local", "newmark", ("momentum",), f"{_LIMIT}:LocalModel", _full_batch),
    Entry("local", "theta", ("flow",), f"{_LIMIT}:LocalModel", _theta_for_the_local_flow),
    Entry(
        "residual",
        "matched",
        RULES,
        "continuum.fields.residual:ResidualModel",
        nodal=True,
        reads=CHECKED_RULE,
    ),
    Entry(
        "residual",
        "jax",
        ("flow",),
        "continuum.schemes.jax_depth_flow:residual_jax",
        _compiled_flow,
        nodal=True,
        reads=CHECKED_RULE,
    ),
    Entry(
        "residual",
        "jax-adaptive",
        ("flow",),
        "continuum.schemes.jax_depth_flow:residual_jax_adaptive",
        _compiled_flow,
        nodal=True,
        reads=CHECKED_RULE,
    ),
    Entry("moments", "law", ("sgd",), f"{_LIMIT}:sgd_moments", _iid_batches),
    Entry(
        "linear-noise",
        "lna",
        ("sgd", "momentum"),
        "continuum.fields.linear_noise:LinearNoiseModel",
        _batched_heavy_ball,
        reads=CHECKED_RULE,
    ),
    Entry("sme", "sde", ("sgd",), f"{_LIMIT}:sme_path", _iid_batches),
)


# --------------------------------------------------------------------------- lookup


def _choices(names) -> str:
    return ", ".join(repr(n) for n in names) or "none"


def _dt_problem(cfg: Config, scheme: Scheme) -> str | None:
    dt = cfg.continuum.dt
    if scheme.dt == "training" and dt not in (None, cfg.training.dt):
        return (
            f"[continuum] dt = {dt:g} with [continuum] scheme = {scheme.name!r}: this scheme steps "
            f"with the training dt = {cfg.training.dt:g}; drop the key, or choose scheme = "
            "'implicit' for a step of its own"
        )
    if scheme.dt == "adaptive" and dt is not None:
        return (
            f"[continuum] dt = {dt:g} with [continuum] scheme = {scheme.name!r}: this scheme "
            "chooses its own steps to [continuum] tolerance and reports at the training dt; drop "
            "the key"
        )
    if scheme.dt == "own" and dt is not None:
        ratio = cfg.training.dt / dt
        if round(ratio) < 1 or abs(ratio - round(ratio)) > 1e-9 * ratio:
            return (
                f"[continuum] dt = {dt:g} with [continuum] scheme = {scheme.name!r}: the "
                f"continuum's own step must divide [training] dt = {cfg.training.dt:g}, so that "
                "it reaches every time the fields are compared at; choose [training] dt / k"
            )
    return None


OPTIONAL_KEYS = ("theta", "tolerance", "input_layer", "quadrature_tolerance")
"""The ``[continuum]`` keys that only some solvers read (:attr:`Entry.keys_read`)."""


def _unread_problem(cfg: Config, entry: Entry, found: list[Entry]) -> str | None:
    """A key of :data:`OPTIONAL_KEYS` set away from its default where ``entry`` does not read
    it, with the schemes of this run that do (``found``, the entries of its family)."""
    from continuum.settings import CONTINUUM_KEYS  # here: continuum.settings imports this module

    defaults = {key.name: key.default for key in CONTINUUM_KEYS}
    rule = cfg.training.rule
    for key in OPTIONAL_KEYS:
        value = getattr(cfg.continuum, key)
        if entry.reads_key(key, rule) or value == defaults[key]:
            continue
        readers = [e.scheme for e in found if rule in e.rules and e.reads_key(key, rule)]
        with_rule = f" with [training] rule = {rule!r}" if key in entry.keys_read else ""
        return (
            f"[continuum] {key} = {value!r}: the {entry.family} fields with scheme "
            f"{entry.scheme!r} do not read it{with_rule} (schemes that do for this run: "
            f"{_choices(dict.fromkeys(readers))}); drop the key, or set [continuum] scheme"
        )
    return None


def _solvers(has: Callable[[Entry], bool]) -> list[str]:
    """``family/scheme`` of the entries that ``has`` a property, sorted."""
    return sorted({f"{e.family}/{e.scheme}" for e in ENTRIES if has(e)})


def _distribution_problem(cfg: Config, entry: Entry) -> str | None:
    if cfg.continuum.distribute == "samples" and not entry.samples:
        return (
            f"[continuum] distribute = 'samples' with the {entry.family} fields and scheme "
            f"{entry.scheme!r}: only {_choices(_solvers(lambda e: e.samples))} (family/scheme) "
            "split the samples over the ranks; use distribute = 'rows' or 'auto'"
        )
    return None


def _quadrature_problem(cfg: Config, entry: Entry) -> str | None:
    if cfg.continuum.quadrature == "nodal" and not entry.nodal:
        nodal = _solvers(lambda e: e.nodal)
        return (
            f"[continuum] quadrature = 'nodal' with the {entry.family} fields and scheme "
            f"{entry.scheme!r}: the nodal spaces are built by {_choices(nodal)} "
            "(family/scheme); use quadrature = 'gauss'"
        )
    return None


def candidates(cfg: Config) -> tuple[list[Entry], list[str]]:
    """The entries whose family represents the run, and the reasons of the families that do
    not (the scheme and rule are not looked at)."""
    found, reasons = [], []
    for family in FAMILIES.values():
        if family.fluctuations != cfg.continuum.fluctuations:
            continue
        reason = family.accepts(cfg)
        if reason is None:
            found += [e for e in ENTRIES if e.family == family.name]
        else:
            reasons.append(reason)
    return found, reasons


def check_scheme_name(cfg: Config) -> None:
    """Refuse a ``[continuum] scheme`` that names no scheme of :data:`SCHEMES`, with the
    nearest name; checked with the continuum disabled too, which keeps the setting.

    Raises:
        ConfigError: the unknown name and the valid ones.
    """
    wanted = cfg.continuum.scheme
    if wanted is not None and wanted not in SCHEMES:
        hint = difflib.get_close_matches(wanted, list(SCHEMES), n=1)
        near = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ConfigError(
            f"{cfg.source}: [continuum] scheme: expected one of {_choices(SCHEMES)}, got "
            f"{wanted!r}{near}"
        )


def lookup(cfg: Config) -> Entry:
    """The one entry that solves ``cfg``, or a :class:`ConfigError` naming the keys.

    Raises:
        ConfigError: no continuum of this network and data (noisy targets among them), an
            unknown scheme, a scheme that does not integrate the rule, or a requirement of the
            entry not met.
    """
    src, rule, wanted = cfg.source, cfg.training.rule, cfg.continuum.scheme
    check_scheme_name(cfg)
    if cfg.data.kind == "expression" and cfg.data.noise > 0:
        raise ConfigError(
            f"{src}: [data] noise = {cfg.data.noise:g}: the target noise is drawn at each output "
            "neuron and has no continuum field (the continuum would train on the noise-free "
            "targets, off by O(noise) at every width); set noise = 0, or [continuum] enabled = "
            "false for the network alone"
        )
    found, reasons = candidates(cfg)
    fluctuations = cfg.continuum.fluctuations
    model = "" if fluctuations == "none" else f" [continuum] fluctuations = {fluctuations!r}:"
    if not found:
        raise ConfigError(
            f"{src}: no continuum solves this run:{model} "
            + "; ".join(dict.fromkeys(reasons))
            + "; or set [continuum] enabled = false"
        )
    schemes = list(dict.fromkeys(e.scheme for e in found))
    if wanted is not None and wanted not in schemes:
        families = " / ".join(dict.fromkeys(FAMILIES[e.family].summary for e in found))
        raise ConfigError(
            f"{src}: [continuum] scheme = {wanted!r} does not solve this network and data "
            f"([network], [coordinates], [data] kind = {cfg.data.kind!r}: {families}); valid "
            f"schemes: {_choices(schemes)}"
        )
    matching = [e for e in found if wanted in (None, e.scheme) and rule in e.rules]
    if not matching:
        valid = [e.scheme for e in found if rule in e.rules]
        what = f"[continuum] scheme = {wanted!r}" if wanted else "no continuum scheme"
        raise ConfigError(
            f"{src}: [training] rule = {rule!r} with {what}: "
            + (
                f"that scheme integrates rule(s) {_choices(_rules(found, wanted))}; "
                if wanted
                else ""
            )
            + f"valid schemes for rule {rule!r} on this network and data: {_choices(valid)}"
        )
    problems = []
    for entry in matching:
        problem = (
            (entry.requires(cfg) if entry.requires else None)
            or _dt_problem(cfg, SCHEMES[entry.scheme])
            or _distribution_problem(cfg, entry)
            or _quadrature_problem(cfg, entry)
        )
        if problem is None:
            unread = _unread_problem(cfg, entry, found)
            if unread is not None:
                raise ConfigError(f"{src}:{model} {unread}")
            return entry
        problems.append(f"[continuum] scheme = {entry.scheme!r} needs: {problem}")
    raise ConfigError(f"{src}:{model} " + "; ".join(problems))


def _rules(found: list[Entry], scheme: str | None) -> list[str]:
    return list(dict.fromkeys(r for e in found if e.scheme == scheme for r in e.rules))


def resolve(cfg: Config) -> Config:
    """``cfg`` with ``[continuum] scheme`` set to the scheme that will run (unchanged when the
    continuum is disabled), after :func:`lookup` has accepted it."""
    return resolve_entry(cfg)[0]


def resolve_entry(cfg: Config) -> tuple[Config, Entry | None]:
    """:func:`resolve` and the entry that solves the run (``None`` when the continuum is
    disabled): one :func:`lookup`."""
    if not cfg.continuum.enabled:
        check_scheme_name(cfg)
        return cfg, None
    entry = lookup(cfg)
    if cfg.continuum.scheme == entry.scheme:
        return cfg, entry
    return dataclasses.replace(
        cfg, continuum=dataclasses.replace(cfg.continuum, scheme=entry.scheme)
    ), entry


def table() -> str:
    """The registry in Markdown, as the README shows it: one row per entry, then what each
    family and scheme is."""
    lines = [
        "| `[continuum] scheme` | model family | rules | dt | reads | also needs |",
        "|---|---|---|---|---|---|",
    ]
    for e in ENTRIES:
        needs = (e.requires.__doc__ or "").strip() if e.requires else ""
        only = dict(SCHEMES[e.scheme].read_for)
        reads = ", ".join(
            f"`{key}`" + (f" ({', '.join(only[key])})" if key in only else "")
            for key in e.keys_read
        )
        lines.append(
            f"| `{e.scheme}` | {e.family} | {', '.join(e.rules)} | {SCHEMES[e.scheme].dt} "
            f"| {reads} | {needs} |"
        )
    lines += ["", "Model families (chosen by the network and the data):", ""]
    lines += [f"- {f.name}: {f.summary} (width order {f.width_order})" for f in FAMILIES.values()]
    lines += ["", "Schemes:", ""]
    lines += [f"- `{s.name}`: {s.summary}" for s in SCHEMES.values()]
    return "\n".join(lines)
