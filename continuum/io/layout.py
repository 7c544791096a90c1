"""Every group and dataset path of ``fields.h5`` and ``ensemble.h5`` (docs/parallel-and-output.md,
"fields.h5"; SPEC 3.3): the one place the package names them, and the reference for opening
a run's output with plain h5py::

    import h5py
    from continuum.io import layout

    with h5py.File("runs/perceptron/fields.h5", "r") as f:
        t = f[layout.DISCRETE_TIMES][()]                        # (nt,)
        w = f[layout.discrete_field("layer0", "w")][-1]         # (N_1, N_0), last output step
        w_h = f[layout.lattice_field("layer0", "w")][-1]        # the continuum at the lattice

Conventions.  A *time series* has one row per output step on its first axis (``nt`` rows;
rows beyond the last verified checksum of :data:`CHECKSUMS` belong to an interrupted step);
every other dataset is *static*, written once before the first step.  Arrays are float64
unless :data:`FIELDS_H5` says otherwise.  ``{layer}`` is a weight layer's name
(:meth:`discrete.network.Network.layer_name`: ``layer{m}``; in a residual network ``layer0``,
``block{k}``, ``layer{M+1}``), ``{m}`` a neuron layer's index (``N_m`` neurons, coordinates
of dimension ``d``), ``P`` the number of discrete parameters, ``L`` the number of samples.
FE coefficients are in DOLFINx's global DOF order (owned blocks in rank order), which is
what ``--resume`` reads back with the same number of ranks.

The file's attributes: ``synfield_version``, ``config`` (the TOML text), ``ranks``,
``created``; the group :data:`DICTIONARY` carries the discrete↔continuum constants as
attributes (and all of them as the attribute ``json``).  :data:`FIELDS_H5` and
:data:`ENSEMBLE_H5` list every path with its shape and meaning; the functions below build
them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ----------------------------------------------------------------- groups

DICTIONARY = "/dictionary"
DISCRETE = "/discrete"
CONTINUUM = "/continuum"
DIAGNOSTICS = "/diagnostics"
COMPARISON = "/comparison"
INTEGRITY = "/integrity"
ENSEMBLE = "/ensemble"

# ----------------------------------------------------------------- the discrete network

DISCRETE_TIMES = f"{DISCRETE}/times"
"""The training time of every output step, ``(nt,)``."""
SCHEDULE = f"{DISCRETE}/schedule"
"""The SGD sample indices of every training step, ``(steps, batch)`` int64."""
STATE_THETA = f"{DISCRETE}/state/theta"
STATE_VELOCITY = f"{DISCRETE}/state/velocity"
STATE_STEP = f"{DISCRETE}/state/step"


def discrete_field(layer: str, name: str) -> str:
    """``W``, ``b`` (raw parameters) or ``w``, ``bias`` (field-normalised) of weight layer
    ``layer``: ``(nt, N_{m+1}, N_m)`` and ``(nt, N_{m+1})``."""
    return f"{DISCRETE}/{layer}/{name}"


def coordinates(m: int | str) -> str:
    """The neuron coordinates of neuron layer ``m``, ``(N_m, d)``."""
    return f"{DISCRETE}/coords/layer{m}"


def measure(m: int | str) -> str:
    """The cell measures ``Δx_i`` of neuron layer ``m``, ``(N_m,)``."""
    return f"{DISCRETE}/measure/layer{m}"


def axis(m: int | str) -> str:
    """The 1-D axis of neuron layer ``m`` (of each coordinate of a grid), for XDMF."""
    return f"{DISCRETE}/axes/layer{m}"


# ----------------------------------------------------------------- the continuum

CONTINUUM_TIMES = f"{CONTINUUM}/times"
"""The continuum model's own time at every output step, ``(nt,)``."""
TIME_SERIES = (DISCRETE_TIMES, CONTINUUM_TIMES)
"""The series written last in a step, with its checksum (:mod:`continuum.io.output`)."""


def lattice_field(layer: str, field: str) -> str:
    """The continuum field ``field`` (``w`` or ``b``) of weight layer ``layer`` at the discrete
    lattice: ``w_at_lattice`` ``(nt, N_{m+1}, N_m)``, ``b_at_lattice`` ``(nt, N_{m+1})``."""
    return f"{CONTINUUM}/{layer}/{field}_at_lattice"


def lattice_variance(layer: str, field: str) -> str:
    """``Var w`` or ``Var b`` of weight layer ``layer`` at the lattice under SGD:
    ``w_var_at_lattice``, ``b_var_at_lattice``, shaped as :func:`lattice_field`."""
    return f"{CONTINUUM}/{layer}/{field}_var_at_lattice"


def coefficient_group(part: str) -> str:
    """The group of one part of a continuum model's coefficients: ``layer{m}`` (a weight
    layer), ``blocks`` (the residual blocks' ``w(τ, x, y)``, ``b(τ, x)``)."""
    return f"{CONTINUUM}/{part}"


@dataclass(frozen=True)
class CoefficientSeries:
    """The four time series of one coefficient part (:func:`coefficient_group`): the weight
    field's and the bias field's FE coefficients and, under second-order rules, their
    velocities (shapes: the part's coefficient arrays, after the step axis)."""

    weights: str
    biases: str
    weight_velocity: str
    bias_velocity: str

    @classmethod
    def of(cls, group: str) -> CoefficientSeries:
        return cls(
            f"{group}/coefficients",
            f"{group}/bias_coefficients",
            f"{group}/velocity",
            f"{group}/bias_velocity",
        )


SCHEME_STATE = f"{CONTINUUM}/scheme"
"""What an adaptive time scheme carries from one output step to the next beside the
coefficients (:meth:`discrete.training.Rule.carried`): a resumed run reads it back and takes
the uninterrupted run's steps."""


def scheme_state(name: str) -> str:
    """One number the time scheme carries (``next_step``: the step its next solve tries
    first), ``(nt,)``."""
    return f"{SCHEME_STATE}/{name}"


def mesh_state(name: str) -> str:
    """One field of the state of a solver that owns its state (the perceptron's rows, the
    local theories): ``coefficients``, ``bias_coefficients``, ``velocity``, ``acceleration``
    as DOF values, ``(nt, n_dofs)``."""
    return f"{coefficient_group('layer0')}/{name}"


def space(m: int | str) -> str:
    """The group of the FE factor space of neuron layer ``m``."""
    return f"{CONTINUUM}/space{m}"


DEPTH_SPACE = f"{CONTINUUM}/depth_space"
"""The group of the depth factor ``V_τ`` of a residual network's continuum."""


def dof_coordinates(group: str) -> str:
    """The DOF coordinates of a factor space (:func:`space`, :data:`DEPTH_SPACE`), ``(n, d)``."""
    return f"{group}/dof_coordinates"


def degree(group: str) -> str:
    """The Lagrange degree of a factor space, a scalar int64."""
    return f"{group}/degree"


def gram(group: str) -> str:
    """The Gram matrix ``G_kl = ∫ X^k X^l dy`` of a data-span factor, ``(L, L)``."""
    return f"{group}/gram"


STREAM = f"{CONTINUUM}/stream"
STREAM_S = f"{STREAM}/s"
"""The stream ``s(t, τ, x)`` of every sample, ``(nt, L, depth_cells + 1, n_x)``."""
STREAM_P = f"{STREAM}/p"
"""The adjoint ``p(t, τ, x)`` of every sample on the grid of :data:`STREAM_S`."""
STREAM_TAU = f"{STREAM}/tau"
"""The τ-cell ends, ``(depth_cells + 1,)``."""
STREAM_X = f"{STREAM}/x"
"""The stream space's nodes in increasing order, ``(n_x,)``."""

FLUCTUATIONS = f"{CONTINUUM}/fluctuations"


def fluctuation(name: str) -> str:
    """One array of the SGD law (``[continuum] fluctuations``): the state
    ``propagator_mean`` ``(2L, L)``, ``propagator_second`` ``(L, L, 2L, 2L)`` or the path's
    ``propagator`` ``(2L, L)``; the linear-noise law's per-layer ``temperature_potential``,
    ``temperature_kinetic`` ``(depth,)`` and ``rank`` (int64); static: ``gram`` ``(L, L)``,
    ``initial_residuals``."""
    return f"{FLUCTUATIONS}/{name}"


def equilibrium(name: str) -> str:
    """One array of the Lyapunov equilibrium of the SGD law (static): ``w_var_at_lattice``,
    ``b_var_at_lattice``, ``minimum_residuals``, ``relaxation_times``, ``temperatures``
    ``(N_out, modes)``, ``layer_temperature``."""
    return f"{FLUCTUATIONS}/equilibrium/{name}"


# ----------------------------------------------------------------- figures, integrity


def diagnostic(name: str) -> str:
    """A scalar per output step, ``(nt,)``: ``cost_discrete``, ``cost_continuum``, ``energy``,
    the held-out figures ``accuracy_train``, ``accuracy_test``, ``cost_test`` and the
    continuum's ``continuum_{figure}``."""
    return f"{DIAGNOSTICS}/{name}"


def comparison(name: str) -> str:
    """A distance of the discrete fields from the continuum: ``l2_error_w``, ``l2_error_b``
    ``(nt,)`` in ``fields.h5``; ``l2_error_mean``, ``l2_error_var`` in ``ensemble.h5``."""
    return f"{COMPARISON}/{name}"


CHECKSUMS = f"{INTEGRITY}/crc32"
"""The CRC-32 of every output step (its completion marker, :mod:`continuum.io.integrity`),
``(nt,)`` uint32; the attribute :data:`STATIC_CHECKSUM` of :data:`INTEGRITY` covers the
static datasets."""
STATIC_CHECKSUM = "crc32_static"

# ----------------------------------------------------------------- ensemble.h5

ENSEMBLE_TIMES = f"{ENSEMBLE}/times"
ENSEMBLE_SEEDS = f"{ENSEMBLE}/seeds"
COVARIANCE = f"{ENSEMBLE}/covariance"
COVARIANCE_VALUES = f"{COVARIANCE}/values"
COVARIANCE_VECTORS = f"{COVARIANCE}/vectors"


def ensemble_statistic(m: int | str, field: str, statistic: str) -> str:
    """``{w,b}_{mean,std}`` of weight layer ``m`` over the members, ``(nt, N_{m+1}, N_m)`` and
    ``(nt, N_{m+1})``."""
    return f"{ENSEMBLE}/layer{m}/{field}_{statistic}"


# ----------------------------------------------------------------- the reference tables


@dataclass(frozen=True)
class Entry:
    """One documented path: its template, its shape (after the step axis for a series) and
    what it holds.  In a template ``{a,b}`` stands for each alternative, ``{m}``, ``{layer}``
    and ``{name}`` for any index or name."""

    template: str
    shape: str
    what: str


_PARTS = "{coefficients,bias_coefficients,velocity,bias_velocity}"

FIELDS_H5: tuple[Entry, ...] = (
    Entry(DISCRETE_TIMES, "(nt,)", "the training time of every output step"),
    Entry(coordinates("{m}"), "(N_m, d)", "neuron coordinates; attrs layout, placement, domain"),
    Entry(measure("{m}"), "(N_m,)", "cell measures Δx_i"),
    Entry(axis("{m}"), "(n,)", "the 1-D axis of the layer (of each coordinate of a grid)"),
    Entry(
        discrete_field("{layer}", "{W,b,w,bias}"),
        "(nt, N_{m+1}, N_m), (nt, N_{m+1})",
        "raw parameters W, b; field-normalised w, bias",
    ),
    Entry(SCHEDULE, "(steps, batch) int64", "SGD sample indices; attrs sampling, batch"),
    Entry(
        f"{DISCRETE}/state/{{theta,velocity,step}}",
        "(nt, P), (nt, P), (nt,) int64",
        "the exact training state, what --resume restarts from",
    ),
    Entry(CONTINUUM_TIMES, "(nt,)", "the continuum model's time"),
    Entry(
        lattice_field("{layer}", "{w,b}"),
        "(nt, N_{m+1}, N_m), (nt, N_{m+1})",
        "the continuum fields at the lattice",
    ),
    Entry(
        lattice_variance("{layer}", "{w,b}"),
        "(nt, N_{m+1}, N_m), (nt, N_{m+1})",
        "the variance of the fields under SGD",
    ),
    Entry(
        f"{coefficient_group('{layer}')}/{_PARTS}",
        "(nt, n_out, n_in), (nt, n_out)",
        "FE coefficients of a layer's fields (and velocities)",
    ),
    Entry(
        scheme_state("next_step"),
        "(nt,)",
        "the step an adaptive time scheme tries first after this output step (--resume)",
    ),
    Entry(
        mesh_state("{coefficients,bias_coefficients,velocity,acceleration}"),
        "(nt, n_dofs)",
        "the state of a solver owning its state (perceptron, local theories)",
    ),
    Entry(
        mesh_state("previous_rows"),
        "(nt, n_dofs, n_in (+1))",
        "the perceptron's BDF2 rows [W | β] one step back (--resume)",
    ),
    Entry(
        f"{coefficient_group('blocks')}/{_PARTS}",
        "(nt, n_τ, n_x, n_x), (nt, n_τ, n_x)",
        "the residual blocks' w(τ, x, y), b(τ, x)",
    ),
    Entry(
        f"{space('{m}')}/{{dof_coordinates,degree,gram}}",
        "(n, d), (), (L, L)",
        "the factor space of neuron layer m",
    ),
    Entry(f"{DEPTH_SPACE}/{{dof_coordinates,degree}}", "(n_τ, 1), ()", "the depth factor V_τ"),
    Entry(f"{STREAM}/{{s,p}}", "(nt, L, depth_cells + 1, n_x)", "stream s(t, τ, x), adjoint p"),
    Entry(f"{STREAM}/{{tau,x}}", "(depth_cells + 1,), (n_x,)", "the grid of the stream"),
    Entry(
        fluctuation(
            "{propagator_mean,propagator_second,propagator,gram,initial_residuals,"
            "temperature_potential,temperature_kinetic,rank}"
        ),
        "see fluctuation()",
        "the law of SGD",
    ),
    Entry(
        equilibrium(
            "{w_var_at_lattice,b_var_at_lattice,minimum_residuals,relaxation_times,"
            "temperatures,layer_temperature}"
        ),
        "see equilibrium()",
        "the Lyapunov equilibrium of the law",
    ),
    Entry(diagnostic("{name}"), "(nt,)", "costs, energy, held-out figures"),
    Entry(comparison("{l2_error_w,l2_error_b}"), "(nt,)", "lattice L2 distances"),
    Entry(CHECKSUMS, "(nt,) uint32", "per-step CRC-32; attr crc32_static of /integrity"),
)
"""Every dataset path of ``fields.h5``."""

ENSEMBLE_H5: tuple[Entry, ...] = (
    Entry(ENSEMBLE_TIMES, "(nt,)", "the output times"),
    Entry(ENSEMBLE_SEEDS, "(S,) int64", "the members' seeds"),
    Entry(
        ensemble_statistic("{m}", "{w,b}", "{mean,std}"),
        "(nt, N_{m+1}, N_m), (nt, N_{m+1})",
        "mean and standard deviation over the members",
    ),
    Entry(
        f"{COVARIANCE}/{{values,vectors}}",
        "(nt, k), (nt, P, k)",
        "the covariance sketch C ≈ vectors diag(values) vectorsᵀ; attr layout",
    ),
    Entry(lattice_field("{layer}", "w"), "(nt, N_{m+1}, N_m)", "the continuum's mean field"),
    Entry(lattice_variance("{layer}", "w"), "(nt, N_{m+1}, N_m)", "the continuum's variance"),
    Entry(comparison("{l2_error_mean,l2_error_var}"), "(nt,)", "ensemble against continuum"),
)
"""Every dataset path of ``ensemble.h5`` (attributes: ``synfield_version``, ``config``,
``ranks``, ``seeds``, ``over``, ``created``)."""


def matches(template: str, path: str) -> bool:
    """Whether ``path`` is one of the paths ``template`` stands for."""
    return re.fullmatch(_pattern(template), path) is not None


def _pattern(template: str) -> str:
    out = ""
    for piece in re.split(r"(\{[^}]*\})", template):
        if piece.startswith("{") and "," in piece:
            out += "(?:" + "|".join(re.escape(a) for a in piece[1:-1].split(",")) + ")"
        elif piece.startswith("{"):
            out += r"[A-Za-z0-9_]+"
        else:
            out += re.escape(piece)
    return out
