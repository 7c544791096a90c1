"""Accuracy per cost: wall time to reach a given error, discrete networks against the FEM.

For three problems — the linear perceptron (``examples/perceptron.toml``), the 3-layer tanh
network (``examples/deep-tanh.toml``) and the image-like input layer
(``examples/image-layer.toml``) — every route to the infinite-width fields at the final time is
timed and its error measured against one reference:

* ``discrete``   a network of width ``N`` (grid layers ``N²``) built and trained with numpy
  (``discrete.experiment.build`` + RK4 ``discrete.training.integrate``); error in the lattice L2
  norm over its own lattice, weights and biases of every layer::

      e = ( Σ_m Σ_ij Δx_i Δy_j (w_ij − w_ref(x_i, y_j))² + Σ_m Σ_i Δx_i (b_i − b_ref(x_i))² )^½

* ``richardson`` networks of widths ``N`` and ``2N``, extrapolated at the coarse lattice points,
  ``w_R = (4 I w_2N − w_N)/3`` (the cell placement's error expands in even powers of ``1/N``);
  the fine lattice does not contain the coarse points (``(i+½)/N`` falls between two fine
  midpoints), so ``I`` is 4-point cubic Lagrange interpolation along every coordinate axis
  (``O(N⁻⁴)``, one-sided stencils at the ends); time = time(N) + time(2N);
* ``FEM P1/P2``  the Galerkin tensor-product continuum
  (``continuum.models.limit.continuum_model`` with ``integrator = "matched"``: the same RK4 and
  ``dt`` as the networks) on ``cells`` cells per coordinate direction, built and advanced to the
  final time; error in the same norm on a fixed evaluation lattice of width ``--eval-width`` (not
  aligned with the meshes);
* ``FEM span P1/P2``  the same with the input layer in the span of the data
  (``[continuum] input_layer = "data-span"``, :mod:`continuum.fields.dataspan`);
* perceptron and image layer, ``FEM span P1/P2 exp``: the data span with the exact flow in
  time (``[continuum] integrator = "exponential"``, :mod:`continuum.schemes.exponential`): one layer
  with a linear output has residuals ``u(t) = u(0) e^{−Kt}``, so the solve is its set-up plus
  one leap to the final time, and its error is the spatial one alone;
* deep-tanh, ``FEM span P2 adapt``: the data span with the gradient flow integrated to a
  tolerance (``[continuum] integrator = "adaptive"``, :mod:`continuum.schemes.adaptive`: PETSc's
  Verner 8(7) pair with steps of its own, ``tolerance =`` :data:`ADAPTIVE_TOLERANCE`); its
  time error against the RK4 reference is printed;
* perceptron only, ``FEM-CN P2``: the implicit row-decoupled perceptron solver
  (``integrator = "theta"``, Crank–Nicolson at the config's ``dt``), shown for its cost; its
  error includes its O(dt²) time error;
* ``FEM p c=C`` (and ``FEM span p c=C``, ``… exp``, ``… adapt``): p-refinement on a fixed mesh
  of ``C`` cells, Lagrange degrees ``p = 1 … 10`` (:data:`ROUTE_DEGREES`; digits' ``FEM p c=4
  nodal jax`` to 24) with Gauss–Lobatto–Legendre nodes (the row's
  size is ``p``);
* ``FEM p c=C nodal`` (and ``… nodal jax``): nodal quadrature (``[continuum] quadrature =
  "nodal"``), in numpy or compiled (``scheme = "jax"``); each such run gives two rows, the
  error on the evaluation lattice and, ``… at nodes``, the error over its own nodes with the GLL
  measure (:meth:`continuum.models.limit.GalerkinModel.node_lattice`): the norm of the
  networks' rows, taken over their own neurons.  The nodal coefficients are the fields at the
  nodes, driven by the GLL rule alone, so they converge at twice the rate in ``p`` of the
  interpolant between them (docs/physics.md "The fields at the nodes"); the targets are
  checked for both families;
* deep-tanh-L256, ``FEM p c=C nodal jax adapt tol=1e-6``: the flow to a tolerance compiled with
  JAX (``scheme = "jax-adaptive"``, :mod:`continuum.schemes.jax_adaptive`: DOP853 with steps of
  its own in one ``while_loop``) at ``tolerance = 1e-6``; its time error against the RK4
  reference is printed (the reference's own, about 2.4e-9, is the floor of every route that is
  exact in time);
* ``jax`` and ``jax richardson``: the same networks and RK4 flow written in JAX
  (:mod:`jax_flow`: jitted, float64, gradient by ``jax.grad``, all steps in one
  ``fori_loop``), plain and Richardson-extrapolated; compile time excluded (printed), the
  final coefficients checked against the numpy network's.

Wall times are the best of ``--repeats`` runs, or of more while they have taken less than
``--window`` seconds (default 1; best × runs), or of fewer once they have taken a second (runs
longer than 0.5 s run once: :func:`best_time`), so that every route is timed over as long a
stretch of the machine's time, however short its runs; on one core for every route
(:mod:`one_core`), from the built set-up (``discrete.experiment.build``: the data set, the
config and a network's initial weights, untimed for every route) to the final fields: a
network's flow; the FEM's model (meshes, spaces, initial fields, the arrays of the compiled
flow) and its flow.  The rows that the ratios at 1e-6 and 1e-9 are read from (runs under
0.5 s) are then timed again, in turn, ``--rounds`` times (default 5), and each keeps its best
(:func:`side_by_side`): every route of a ratio sees the same minutes of the machine.  FFCx/JIT
caches are warm (one untimed FEM build first) and, for every FEM model, its quadrature check
runs once untimed (one step; the timed runs use the recorded rule, as the JAX routes are timed
after compiling); measuring the error is not timed.

References ("infinite width"):

* perceptron and image-layer are one linear layer (identity output): the continuum flow has a
  closed form (residuals ``r(t) = r(0) e^{−Kt}``, ``K = (η_w G + η_b 11ᵀ)/L`` with the Gram
  matrix ``G`` of the inputs; see :func:`continuum.fields.perceptron.exact_solution`),
  evaluated here with composite Gauss–Legendre quadrature in ``y`` (1-D or tensor 2-D). It is exact
  in time, so the RK4 time error of the routes (estimated by halving ``dt`` on the finest FEM) is
  printed;
* deep-tanh: the FEM at degree 10 with ``--reference-cells`` cells (default 16) at the same
  RK4 ``dt``; its own error is below the distance ``‖u_8 − u_10‖`` of degrees 8 and 10 on that
  mesh, which is printed.

The continuum gradient's FLOP rate at the largest deep-tanh FEM size (and at 1024 P2 cells) is
printed beside the machine's dgemm rate measured in the same run: the gradient's dense work is
``Σ_m 6 n_{m+1} n_m L`` (``W η``, ``Wᵀ d`` and the rank-L product ``R Sᵀ`` per layer).

For each target error the table gives, per route, the first measured size that reaches it and
its time, and in brackets the time interpolated in log-log between the bracketing sizes.
Checks: on the image-layer problem the FEM (best of its routes) reaches 1e-4 at least 10× faster
than the cheapest discrete route (plain or Richardson); on every problem the FEM is never
slower than the plain discrete network at equal error (compared at every target both reach).
Where some FEM routes integrate in time otherwise than the networks (``exp``, ``adapt``,
``CN``), the checks are repeated for the routes that step with the networks' own RK4 and
``dt``.

User-scale problems (``--problems user-scale``, :func:`user_scale_problems`): the digits
classifier and a 4-layer tanh network on 256 samples, where the plain networks need seconds
at 1e-6 (reference: the FEM at degree 10), and the residual network, refined in width and
depth together (``M = N/2``, Richardson of first order, the blocks interpolated in τ;
reference: its depth continuum at degree 2 on 96 cells in x and τ); beside the fields' error
each row shows the error of the cost at ``t_end``, ``|C − C_ref|`` (Richardson:
``(2^k C_2N − C_N)/(2^k − 1)``); the JAX routes include the softmax cross-entropy of the
digits and the residual blocks; and the continuum gradient's FLOP
and byte rates are printed at the problem's ``gradient_sizes`` (:mod:`gradient_rate`).
The FEM models of one process share the quadrature check's record
(:data:`continuum.fem.quadrature.VERIFIED_RULES`): the first build of a model runs the check, its
repeats do not (the saving is measured by ``benchmarks/quadrature_check.py``).

    python benchmarks/accuracy_per_cost.py [--problems perceptron deep-tanh image-layer]
    python benchmarks/accuracy_per_cost.py --problems user-scale
    python benchmarks/accuracy_per_cost.py --smoke --problems deep-tanh-L256   # seconds
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# One core for every route, numpy's BLAS and XLA's CPU runtime alike, so that no route gains
# or loses by threading: importing one_core (benchmarks/) pins the process, before numpy and
# jax load.
import one_core

# isort: split
import numpy as np
from mpi4py import MPI  # first: it loads the MPI library that DOLFINx links against

# isort: split
import scipy.linalg
from gradient_rate import describe, gradient_rate
from jax_flow import jax_flow  # benchmarks/, the script's directory

from continuum.app.convergence import final_state
from continuum.app.convergence import with_width as with_line_width
from continuum.app.run import lattice_l2
from continuum.fem.spaces import FactorSpace
from continuum.fields.perceptron import PerceptronProblem, exact_solution
from continuum.fields.residual import ResidualModel
from continuum.models.limit import continuum_model
from continuum.models.registry import SCHEMES
from continuum.settings import DEGREES, Config, load_config
from discrete.conventions import Convention
from discrete.experiment import build
from meshes.domains import interval

Array = np.ndarray
ROOT = Path(__file__).resolve().parent.parent
COMM = MPI.COMM_SELF
TARGETS = (1e-3, 1e-4, 1e-6, 1e-9)
NETWORK_ROUTES = ("discrete", "richardson", "jax", "jax richardson")
REFERENCE_DEGREE = 10
ROUTE_DEGREES = DEGREES[:10]
"""The degrees of a ``p`` route, ``1 … 10`` (one route goes on to :data:`DEGREES`' last)."""
AT_NODES = " at nodes"
"""Suffix of the rows of a nodal FEM route measured over its own nodes with the GLL measure
(:meth:`~continuum.models.limit.GalerkinModel.node_lattice`), as a network is over its own
neurons."""
"""Degree of the deep-tanh reference continuum (on ``--reference-cells`` cells)."""
BLOCKS_PER_WIDTH = 0.5
"""A residual network of width ``N`` has ``M = N/2`` blocks: width and depth are refined
together (its error is ``O(1/M) + O(1/N²)``, docs/convergence.md)."""
ADAPTIVE_TOLERANCE = 1e-8
"""``[continuum] tolerance`` of the adaptive routes: 100× below the tightest target; the time
error it leaves is measured and printed."""


# ----------------------------------------------------------------------------- timing


WINDOW = 0.0
"""The least time (seconds, as best × calls) that :func:`best_time` spends on a route: this
VM's speed drifts over fractions of a second (benchmarks/README.md, run 18), so a route of a
few milliseconds timed over five calls sees one moment where a route of 0.2 s sees several.
This script's ``--window`` sets it (default 1 s) for every route alike; 0: ``repeats`` calls."""


def best_time(run: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Best wall time of ``run()`` over ``repeats`` calls, more while they have taken less
    than :data:`WINDOW`, fewer once they have taken a second or the window (best × calls); one
    call when it takes over 0.5 s."""
    best, result = np.inf, None
    for calls in itertools.count(1):
        start = time.perf_counter()
        result = run()
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        taken = best * calls
        enough = calls >= repeats and taken >= WINDOW
        if elapsed > 0.5 or (calls >= 2 and taken > max(1.0, WINDOW)) or enough:
            break
    return best, result


# ----------------------------------------------------------------------------- fields, norms


@dataclass
class Fields:
    """Weights ``w[m]`` (N_{m+1}, N_m) and biases ``b[m]`` at the lattice of ``convention``;
    ``residual``: the weight layers between the first and the last are the blocks of a residual
    network at ``τ_k = (k + ½)/M``, each a cell ``Δτ = 1/M`` of the depth."""

    convention: Convention
    w: list[Array]
    b: list[Array]
    residual: bool = False

    def depth_measure(self, m: int) -> float:
        blocks = len(self.w) - 2
        return 1.0 / blocks if self.residual and 0 < m <= blocks else 1.0


def error(fields: Fields, ref: Fields) -> float:
    """Lattice L2 norm of the difference over all layers' weights and biases (a residual
    block's field over ``(τ, x, y)``: its term weighted by ``Δτ``)."""
    conv = fields.convention
    err2 = 0.0
    for m in range(len(fields.w)):
        dx, dy = conv.layers[m + 1].measure, conv.layers[m].measure
        layer2 = lattice_l2(fields.w[m] - ref.w[m], dx, dy) ** 2
        layer2 += float(np.sum(dx * (fields.b[m] - ref.b[m]) ** 2))
        err2 += fields.depth_measure(m) * layer2
    return float(np.sqrt(err2))


def with_width(config: Config, N: int) -> Config:
    """The config at width ``N``; a residual network also at ``N·BLOCKS_PER_WIDTH`` blocks."""
    sized = with_line_width(config, N)
    if config.network.architecture == "residual":
        sized = sized.replace(network={"depth": max(1, round(N * BLOCKS_PER_WIDTH))})
    return sized


def discrete_fields(setup, theta: Array) -> Fields:
    w, b = setup.convention.to_fields(setup.network, theta)
    residual = setup.config.network.architecture == "residual"
    return Fields(setup.convention, [np.array(a) for a in w], [np.array(a) for a in b], residual)


def midpoint_interpolation(n: int) -> Array:
    """``P`` (n × 2n): cubic Lagrange interpolation from the 2n-cell midpoints to the n-cell ones.

    Coarse point ``i`` lies halfway between fine points ``2i`` and ``2i+1``: weights
    ``(−1, 9, 9, −1)/16`` inside, ``(5, 15, −5, 1)/16`` (and mirrored) at the ends.
    """
    P = np.zeros((n, 2 * n))
    for i in range(n):
        j = 2 * i
        if j - 1 >= 0 and j + 2 < 2 * n:
            P[i, j - 1 : j + 3] = np.array([-1.0, 9.0, 9.0, -1.0]) / 16
        elif j - 1 < 0:
            P[i, 0:4] = np.array([5.0, 15.0, -5.0, 1.0]) / 16
        else:
            P[i, 2 * n - 4 : 2 * n] = np.array([1.0, -5.0, 15.0, 5.0]) / 16
    return P


def restrict_axis(values: Array, axis: int, side: int, layout: str) -> Array:
    """Interpolate one layer axis of ``values`` from a lattice of side ``2·side`` to ``side``."""
    P = midpoint_interpolation(side)
    if layout == "line":
        return np.moveaxis(np.tensordot(P, values, axes=([1], [axis])), 0, axis)
    shape = values.shape
    grid = values.reshape((*shape[:axis], 2 * side, 2 * side, *shape[axis + 1 :]))
    grid = np.moveaxis(np.tensordot(P, grid, axes=([1], [axis])), 0, axis)
    grid = np.moveaxis(np.tensordot(P, grid, axes=([1], [axis + 1])), 0, axis + 1)
    return grid.reshape((*shape[:axis], side * side, *shape[axis + 1 :]))


def refined(layer) -> bool:
    """Whether a neuron layer's lattice is refined with the width (not one neuron, not an
    index layer, whose points are the same at every width)."""
    return layer.size > 1 and layer.layout != "index"


def richardson(coarse: Fields, fine: Fields, order: int = 2) -> Fields:
    """``(2^k I f_2N − f_N)/(2^k − 1)`` at the coarse lattice (all layers, weights and biases),
    ``k = order``: the leading error ``O(N^−k)`` removed.  A residual network's fine blocks
    (``2M`` of them) are interpolated in ``τ`` to the coarse blocks' depths as well."""
    conv = coarse.convention
    factor = 2.0**order
    fine_w, fine_b = fine.w, fine.b
    if len(fine_w) != len(coarse.w):  # residual blocks refined with the width
        blocks = len(coarse.w) - 2
        in_depth = [restrict_axis(np.stack(a[1:-1]), 0, blocks, "line") for a in (fine_w, fine_b)]
        fine_w = [fine_w[0], *in_depth[0], fine_w[-1]]
        fine_b = [fine_b[0], *in_depth[1], fine_b[-1]]
    w, b = [], []
    for m in range(len(coarse.w)):
        out, inp = conv.layers[m + 1], conv.layers[m]
        wf, bf = fine_w[m], fine_b[m]
        if refined(out):
            wf = restrict_axis(wf, 0, out.shape[0], out.layout)
            bf = restrict_axis(bf, 0, out.shape[0], out.layout)
        if refined(inp):
            wf = restrict_axis(wf, 1, inp.shape[0], inp.layout)
        w.append((factor * wf - coarse.w[m]) / (factor - 1.0))
        b.append((factor * bf - coarse.b[m]) / (factor - 1.0))
    return Fields(conv, w, b, coarse.residual)


# ----------------------------------------------------------------------------- references


def _names(layout: str, prefix: str) -> list[str]:
    return [prefix] if layout == "line" else [f"{prefix}1", f"{prefix}2"]


def gauss_panels(panels: int, points: int) -> tuple[Array, Array]:
    nodes, weights = np.polynomial.legendre.leggauss(points)
    edges = np.arange(panels)[:, None] / panels
    points_ = (edges + (nodes[None, :] + 1) / 2 / panels).ravel()
    return points_, np.tile(weights / 2 / panels, panels)


class ExactLinearLayer:
    """Closed-form continuum flow of one linear layer (identity output), inputs on 1-D or 2-D.

    ``r^l(x, t) = ∫ w X^l dy + b − Y^l`` obeys ``ṙ = −r K``, ``K = (η_w G + η_b 11ᵀ)/L``; with
    ``S(t) = ∫_0^t e^{−Ks} ds`` (from a block exponential, valid for singular ``K``)::

        w = w_0 − (η_w/L) Σ_l (r(0) S)_l(x) X^l(y),   b = b_0 − (η_b/L) Σ_l (r(0) S)_l(x).
    """

    def __init__(self, config: Config, t: float, panels: int = 16, points: int = 12):
        setup = build(with_width(config, 8))
        net = setup.network
        if net.depth != 1 or net.output != "identity":
            raise ValueError("the closed form is that of one layer with identity output")
        self.config = config
        self.inp, self.out = setup.convention.layers[0].layout, setup.convention.layers[1].layout
        if self.out != "line":
            raise ValueError("output layer must be a line")
        self.bias = net.bias
        self.L = config.data.samples
        (self.eta_w, self.eta_b) = setup.dictionary.continuum_rates()[0]
        y1, w1 = gauss_panels(panels, points)
        if self.inp == "line":
            self.y_q, self.w_q = y1[:, None], w1
        else:
            # grid point i = r·n + c sits at (y1, y2) = (x_c, x_r)
            self.y_q = np.column_stack([np.tile(y1, len(y1)), np.repeat(y1, len(y1))])
            self.w_q = np.tile(w1, len(w1)) * np.repeat(w1, len(w1))
        X_q = self.inputs(self.y_q)  # (nq, L)
        gram = X_q.T @ (self.w_q[:, None] * X_q)
        K = (self.eta_w * gram + (self.eta_b if self.bias else 0.0)) / self.L
        L = self.L
        block = np.zeros((2 * L, 2 * L))
        block[:L, :L], block[:L, L:] = -K, np.eye(L)
        self.S = scipy.linalg.expm(t * block)[:L, L:]
        self.X_q = X_q

    def _y(self, y: Array) -> dict[str, Array]:
        return {n: y[..., k] for k, n in enumerate(_names(self.inp, "y"))}

    def inputs(self, y: Array) -> Array:
        """``X^l(y)`` of points ``y`` (n, d): shape (n, L)."""
        values = {n: v[:, None] for n, v in self._y(y).items()}
        out = self.config.data.input(l=np.arange(self.L)[None, :], **values)
        return np.broadcast_to(out, (len(y), self.L))

    def w0(self, x: Array, y: Array) -> Array:
        values = {n: v[None, :] for n, v in self._y(y).items()}
        return np.broadcast_to(
            self.config.init.weight(x=x[:, None], m=0, **values), (len(x), len(y))
        )

    def b0(self, x: Array) -> Array:
        return np.broadcast_to(self.config.init.bias(x=x, m=0), x.shape)

    def fields(self, conv: Convention) -> Fields:
        x, y = conv.layers[1].points[:, 0], conv.layers[0].points
        outputs = self.w0(x, self.y_q) @ (self.w_q[:, None] * self.X_q) + self.b0(x)[:, None]
        targets = np.broadcast_to(
            self.config.data.target(x=x[:, None], l=np.arange(self.L)[None, :]), outputs.shape
        )
        integral = (outputs - targets) @ self.S  # ∫_0^t r ds, (N_out, L)
        w = self.w0(x, y) - self.eta_w / self.L * integral @ self.inputs(y).T
        b = self.b0(x) - (self.eta_b / self.L * integral.sum(axis=1) if self.bias else 0.0)
        return Fields(conv, [np.array(w)], [np.array(b)])


def library_exact_difference(cfg: Config, t: float, ref: ExactLinearLayer, conv) -> float:
    """Max difference between :class:`ExactLinearLayer` and the library's closed form."""
    c = cfg
    problem = PerceptronProblem(
        inputs=lambda y, l: c.data.input(y=y, l=l),
        targets=lambda x, l: c.data.target(x=x, l=l),
        samples=c.data.samples,
        w0=lambda x, y: c.init.weight(x=x, y=y, m=0),
        b0=lambda x: c.init.bias(x=x, m=0),
        lr=c.training.lr,
        bias=build(with_width(c, 8)).network.bias,
    )
    w, b = exact_solution(problem, t)
    x, y = conv.layers[1].points[:, 0], conv.layers[0].points[:, 0]
    mine = ref.fields(conv)
    return float(
        max(np.abs(w(x[:, None], y[None, :]) - mine.w[0]).max(), np.abs(b(x) - mine.b[0]).max())
    )


class ModelReference:
    """A solved continuum model used as the reference (fields via its own evaluation)."""

    def __init__(self, model):
        self.model = model

    def fields(self, conv: Convention) -> Fields:
        w, b = self.model.evaluate_lattice(conv)
        residual = isinstance(self.model, ResidualModel)
        return Fields(conv, [np.array(a) for a in w], [np.array(a) for a in b], residual)


# ----------------------------------------------------------------------------- routes


def with_continuum(config: Config, **changes) -> Config:
    return dataclasses.replace(config, continuum=dataclasses.replace(config.continuum, **changes))


def with_dt(config: Config, dt: float) -> Config:
    steps = round(config.training.steps * config.training.dt / dt)
    return dataclasses.replace(
        config, training=dataclasses.replace(config.training, dt=dt, steps=steps)
    )


def fem_setup(
    config: Config,
    degree: int,
    cells: int,
    integrator: str = "matched",
    input_layer: str = "tensor",
    quadrature: str = "gauss",
    tolerance: float = ADAPTIVE_TOLERANCE,
):
    """The discrete side of ``config`` with the continuum options of an FEM route, built at
    width 8: the data set and the config the continuum model is built from."""
    adaptive = {"tolerance": tolerance} if SCHEMES[integrator].dt == "adaptive" else {}
    cfg = with_continuum(
        config,
        degree=degree,
        cells=cells,
        scheme=integrator,
        input_layer=input_layer,
        quadrature=quadrature,
        **adaptive,
    )
    return build(with_width(cfg, 8))


def fem_solve(setup):
    """The continuum model of ``setup`` advanced to the end: what an FEM route's time counts
    (the model's meshes, spaces, initial fields and its flow), as a network route's counts its
    flow from the built set-up."""
    model = continuum_model(setup, COMM)
    model.advance_to(setup.steps * setup.dt)
    return model


def solve_fem(config: Config, *options, **keywords):
    """Continuum model of ``config`` (``options`` and ``keywords`` those of
    :func:`fem_setup`), advanced to the end."""
    return fem_solve(fem_setup(config, *options, **keywords))


def numpy_network(config: Config, N: int, repeats: int):
    """``(seconds, setup, θ(t_end), the timed run)`` of synfield's network of width ``N``: the
    best time of its flow from the built set-up (the build untimed, as for the JAX networks and
    the FEM)."""
    setup = build(with_width(config, N))

    def again():
        return final_state(setup)

    seconds, state = best_time(again, repeats)
    return seconds, setup, state.theta, again


def route_tolerance(route: str) -> tuple[str, float]:
    """An FEM route's name without its ``at nodes`` and ``tol=`` tokens, and the ``[continuum]
    tolerance`` of an adaptive route: its ``tol=`` token, else :data:`ADAPTIVE_TOLERANCE`."""
    name, _, token = route.removesuffix(AT_NODES).partition(" tol=")
    return name, float(token) if token else ADAPTIVE_TOLERANCE


def route_integrator(route: str) -> str:
    """The ``[continuum] scheme`` of an FEM route."""
    route = route_tolerance(route)[0]
    if route.endswith(" exp"):
        return "exponential"
    if route.endswith(" jax adapt"):
        return "jax-adaptive"
    if route.endswith(" adapt"):
        return "adaptive"
    if route.endswith(" jax"):
        return "jax"
    return "theta" if "CN" in route else "matched"


def route_options(route: str, size: int) -> tuple[int, int, str, str, str, float]:
    """``solve_fem`` arguments ``(degree, cells, integrator, input_layer, quadrature,
    tolerance)`` of an FEM route of size ``size``: ``"FEM P2"``, ``"FEM span P1"``, ``"FEM span
    P2 exp"``, ``"FEM span P2 adapt"``, ``"FEM-CN P2"``, ``"FEM P3"`` (size = cells), or ``"FEM
    p c=8"``, ``"FEM span p c=4 exp"``, ``"FEM p c=16 nodal"``, ``"FEM p c=16 nodal jax"``,
    ``"FEM p c=1 nodal jax adapt tol=1e-6"`` (fixed cells, size = degree; ``nodal``:
    ``[continuum] quadrature = "nodal"``; ``jax``: the RK4 flow compiled with JAX, ``scheme =
    "jax"``; ``jax adapt``: the flow to a tolerance compiled, ``scheme = "jax-adaptive"``;
    ``tol=``: the adaptive routes' tolerance, default :data:`ADAPTIVE_TOLERANCE`)."""
    route, tolerance = route_tolerance(route)
    if " p c=" in route:
        degree, cells = size, int(route.split("c=")[1].split()[0])
    else:
        degree, cells = int(route.split(" P")[1].split()[0]), size
    input_layer = "data-span" if "span" in route else "tensor"
    quadrature = "nodal" if " nodal" in route else "gauss"
    return degree, cells, route_integrator(route), input_layer, quadrature, tolerance


def size_label(route: str, size: int) -> str:
    if route in NETWORK_ROUTES:
        return f"N={size}"
    return f"p={size}" if " p c=" in route else f"c={size}"


def fem_dofs(config: Config, degree: int, cells: int, input_layer: str) -> int:
    """Number of field coefficients (all weight and bias fields) of the FEM at ``cells``."""
    n1 = degree * cells + 1
    sizes = [
        n if lay == "index" else 1 if n == 1 else (n1 * n1 if lay == "grid" else n1)
        for n, lay in zip(config.network.widths, config.coordinates.layout, strict=True)
    ]
    if input_layer == "data-span":
        sizes[0] = config.data.samples
    total = sum(sizes[m + 1] * sizes[m] for m in range(len(sizes) - 1))
    if config.network.bias:
        total += sum(sizes[1:])
    return total


def _params(config: Config, N: int) -> int:
    network = with_width(config, N).network
    widths = list(network.widths)
    if network.architecture == "residual":  # input, M + 1 copies of the stream, readout
        widths = [widths[0]] + [widths[1]] * (network.depth + 1) + [widths[2]]
    total = sum(widths[m + 1] * widths[m] for m in range(len(widths) - 1))
    return total + (sum(widths[1:]) if config.network.bias else 0)


def fem_unknowns(config: Config, model, degree: int, cells: int, input_layer: str) -> int:
    """Field coefficients of an FEM model (a depth continuum counts its own)."""
    if isinstance(model, ResidualModel):
        return int(model.galerkin.size)
    return fem_dofs(config, degree, cells, input_layer)


@dataclass
class Row:
    route: str
    size: int  # N (networks) or cells (FEM)
    unknowns: int
    seconds: float
    error: float
    note: str = ""
    cost_error: float | None = None  # |C(t_end) − C_ref(t_end)| (references with a cost)
    again: Callable[[], object] | None = field(default=None, repr=False, compare=False)
    """The timed run, to time it again (:func:`side_by_side`)."""


@dataclass
class Problem:
    name: str
    config: Config
    widths: list[int]
    cells: dict[str, list[int]]
    reference: str  # "exact" or "fem"
    eval_width: int
    jax_widths: list[int] = field(default_factory=list)
    reference_cells: int | None = None  # of an FEM reference (None: --reference-cells)
    reference_degree: int = REFERENCE_DEGREE
    reference_check: tuple[int, int] | None = None  # (degree, cells) of the second reference
    richardson_order: int = 2  # the leading order in 1/N that the extrapolation removes
    gradient_sizes: list[tuple[int, int]] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    floor: str = ""
    ref_cost: float | None = None


def adaptive_time_error(cfg: Config, route: str, eval_conv: Convention) -> str:
    """An adaptive route's time error (P2 on 16 cells, or degree 8 for a p route): its distance
    to RK4 at ``dt/2``, beside RK4's own error there (``|u_dt − u_dt/2|/15``)."""
    size = 8 if " p c=" in route else 16
    degree, cells, integrator, input_layer, quadrature, tolerance = route_options(route, size)
    fields = {
        name: ModelReference(
            solve_fem(c, degree, cells, i, input_layer, quadrature, tolerance)
        ).fields(eval_conv)
        for name, c, i in [
            ("adaptive", cfg, integrator),
            ("rk4", cfg, "matched"),
            ("rk4/2", with_dt(cfg, cfg.training.dt / 2), "matched"),
        ]
    }
    return (
        f"time error of {route} {size_label(route, size)} at tolerance "
        f"{tolerance:g} (against RK4 at dt/2): "
        f"{error(fields['adaptive'], fields['rk4/2']):.2e}; RK4's own at dt/2: "
        f"{error(fields['rk4'], fields['rk4/2']) / 15:.2e}"
    )


def library_floor(rows: list[Row], target: float, repeats: int) -> str:
    """What the fastest FEM run reaching ``target`` spends in DOLFINx alone: its interval mesh,
    and the mesh with the Lagrange space of its degree (best of ``repeats``, side by side)."""
    reached = [r for r in rows if r.route.startswith("FEM") and r.error <= target]
    if not reached:
        return ""
    fastest = min(reached, key=lambda r: r.seconds)
    degree, cells = route_options(fastest.route, fastest.size)[:2]
    mesh_s, _ = best_time(lambda: interval(COMM, cells), repeats)
    space_s, _ = best_time(lambda: FactorSpace(interval(COMM, cells), degree), repeats)
    label = size_label(fastest.route, fastest.size)
    return (
        f"set-up floor of the fastest FEM run at {target:g} ({fastest.route} {label}, "
        f"{fastest.seconds * 1e3:.2f} ms): DOLFINx interval mesh {mesh_s * 1e3:.2f} ms, mesh "
        f"and P{degree} factor space {space_s * 1e3:.2f} ms"
    )


def run_problem(p: Problem, args) -> None:
    cfg = p.config
    t_end = cfg.training.steps * cfg.training.dt
    print(f"\n=== {p.name}: {cfg.experiment.description}")
    print(
        f"    widths {list(cfg.network.widths)} -> N, RK4 dt = {cfg.training.dt:g}, "
        f"t_end = {t_end:g}, {cfg.training.steps} steps"
    )
    # warm the JIT caches of every FEM flavour used (untimed)
    for route in p.cells:
        solve_fem(with_dt(cfg, t_end), *route_options(route, 4))
    numpy_network(cfg, 8, 1)
    eval_conv = build(with_width(cfg, p.eval_width)).convention

    # reference
    start = time.perf_counter()
    if p.reference == "exact":
        ref = ExactLinearLayer(cfg, t_end)
        p.notes.append(
            "reference: closed-form continuum flow (exact in time; composite Gauss-Legendre, "
            "16 panels x 12 points per y axis); check: the FEM P2 errors below converge to it "
            "at order ~3"
        )
        if cfg.coordinates.layout[0] == "line":
            p.notes.append(
                "check: closed form here vs continuum.fields.perceptron.exact_solution: max diff "
                f"{library_exact_difference(cfg, t_end, ref, eval_conv):.1e}"
            )
        c = 16
        coarse_dt = ModelReference(solve_fem(cfg, 2, c))
        halved = ModelReference(solve_fem(with_dt(cfg, cfg.training.dt / 2), 2, c))
        dt_err = error(coarse_dt.fields(eval_conv), halved.fields(eval_conv)) * 16 / 15
        p.notes.append(
            f"RK4 time error shared by every route at dt = {cfg.training.dt:g} (FEM P2 {c} "
            f"cells, dt vs dt/2, x16/15): {dt_err:.2e}  (the closed form has none)"
        )
    else:
        c, degree = p.reference_cells or args.reference_cells, p.reference_degree
        check_degree, check_cells = p.reference_check or (degree - 2, c)
        ref = ModelReference(solve_fem(cfg, degree, c))
        other = solve_fem(cfg, check_degree, check_cells)
        self_err = error(ModelReference(other).fields(eval_conv), ref.fields(eval_conv))
        p.notes.append(
            f"reference: FEM degree {degree} (GLL) with {c} cells at the same RK4 dt; its own "
            f"error is below the distance to degree {check_degree} on {check_cells} cells, "
            f"{self_err:.2e} on the eval lattice (cost {abs(other.cost() - ref.model.cost()):.1e})"
        )
    for route in (r for r in p.cells if route_integrator(r) in ("adaptive", "jax-adaptive")):
        p.notes.append(adaptive_time_error(cfg, route, eval_conv))
    p.notes.append(f"reference built in {time.perf_counter() - start:.1f} s (untimed)")
    ref_eval = ref.fields(eval_conv)

    # (a) discrete networks, (b) Richardson
    c_ref = ref.model.cost() if isinstance(ref, ModelReference) else None
    p.ref_cost = c_ref

    def numpy_run(N: int):
        return numpy_network(cfg, N, args.repeats)

    network_routes(p, "discrete", p.widths, numpy_run, ref, c_ref)
    if p.jax_widths:
        jax_routes(p, ref, c_ref, args.repeats)

    # (c) FEM: the quadrature check of every model runs once untimed (one step, its rule
    # recorded: docs/convergence.md "High order"), as the JAX routes compile untimed
    check_seconds, compile_seconds = 0.0, []
    for route, cells_list in p.cells.items():
        for c in cells_list:
            options = route_options(route, c)
            setup = fem_setup(cfg, *options)  # the data and config, untimed as the networks'
            start = time.perf_counter()
            if options[2].startswith("jax"):  # compiled for the run's dt: the whole run, untimed
                compile_seconds.append(fem_solve(setup).rule.compile_seconds)
            else:
                solve_fem(with_dt(cfg, t_end), *options)
            check_seconds += time.perf_counter() - start
            again = functools.partial(fem_solve, setup)
            seconds, model = best_time(again, args.repeats)
            degree, cells, _, input_layer, quadrature, _ = options
            unknowns = fem_unknowns(cfg, model, degree, cells, input_layer)
            measured = [(route, ModelReference(model).fields(eval_conv), ref_eval)]
            if quadrature == "nodal" and input_layer == "tensor":
                nodes = model.node_lattice()
                own = ModelReference(model).fields(nodes)
                measured.append((route + AT_NODES, own, ref.fields(nodes)))
            for name, fields, ref_fields in measured:
                row = Row(name, c, unknowns, seconds, error(fields, ref_fields), again=again)
                row.cost_error = None if p.ref_cost is None else abs(model.cost() - p.ref_cost)
                p.rows.append(row)
                label = size_label(name, c)
                print(f"    {name} {label:<6} {seconds:9.4f} s  error {row.error:.3e}", flush=True)
    p.notes.append(
        f"FEM: quadrature checks and one step of every model, untimed: {check_seconds:.1f} s"
    )
    if compile_seconds:
        p.notes.append(
            f"FEM jax routes: compile {min(compile_seconds):.2f}-{max(compile_seconds):.2f} s per "
            "model (untimed, as the JAX networks' compile)"
        )
    if p.name == "image-layer":
        p.floor = library_floor(p.rows, 1e-4, 50)
    if p.gradient_sizes:
        p.notes += gradient_rates(p, args.repeats)


def network_routes(p: Problem, route: str, widths: list[int], run, ref, c_ref) -> None:
    """Rows of the networks ``run(N) -> (seconds, setup, θ(t_end), the timed run)`` of every
    width, plain (``route``) and Richardson-extrapolated over ``N`` and ``2N`` (fields and
    cost)."""
    cfg = p.config
    trained: dict[int, tuple[float, Fields, float]] = {}
    runs = {}
    for N in widths:
        seconds, setup, theta, runs[N] = run(N)
        f = discrete_fields(setup, theta)
        trained[N] = (seconds, f, setup.cost.value(theta))
        row = Row(route, N, _params(cfg, N), seconds, error(f, ref.fields(f.convention)))
        row.again = runs[N]
        row.cost_error = None if c_ref is None else abs(trained[N][2] - c_ref)
        p.rows.append(row)
        print(f"    {route} N={N:<5} {seconds:9.4f} s  error {row.error:.3e}", flush=True)
    extrapolated = "richardson" if route == "discrete" else f"{route} richardson"
    for N in widths:
        if 2 * N in trained:
            (t1, f1, c1), (t2, f2, c2) = trained[N], trained[2 * N]
            k = 2.0**p.richardson_order
            r = richardson(f1, f2, p.richardson_order)
            params = _params(cfg, N) + _params(cfg, 2 * N)
            row = Row(extrapolated, N, params, t1 + t2, error(r, ref.fields(r.convention)))
            row.again = lambda a=runs[N], b=runs[2 * N]: (a(), b())
            row.note = f"N and 2N = {2 * N}, order {p.richardson_order}"
            row.cost_error = None if c_ref is None else abs((k * c2 - c1) / (k - 1) - c_ref)
            p.rows.append(row)
            print(f"    {extrapolated} N={N:<4} {t1 + t2:9.4f} s  error {row.error:.3e}")


def jax_routes(p: Problem, ref, c_ref, repeats: int) -> None:
    """The JAX networks (compiled untimed first) and their Richardson extrapolation."""
    compile_seconds, worst = [], 0.0

    def jax_run(N: int):
        nonlocal worst
        setup = build(with_width(p.config, N))
        run = jax_flow(setup)
        start = time.perf_counter()
        run()
        compile_seconds.append(time.perf_counter() - start)
        seconds, theta = best_time(run, repeats)
        if N <= 64:
            numpy_theta = final_state(setup).theta
            worst = max(worst, float(np.abs(theta - numpy_theta).max() / np.abs(numpy_theta).max()))
        return seconds, setup, theta, run

    network_routes(p, "jax", p.jax_widths, jax_run, ref, c_ref)
    p.notes.append(
        f"jax: compile + first run {min(compile_seconds):.1f}-{max(compile_seconds):.1f} s per "
        f"width (untimed); final coefficients vs the numpy network (N <= 64): max relative "
        f"difference {worst:.1e}"
    )


def gradient_rates(p: Problem, repeats: int) -> list[str]:
    """The continuum gradient's FLOP and byte rates (:mod:`gradient_rate`) at the problem's
    ``gradient_sizes`` (degree, cells), beside dgemm and the copy bandwidth measured with it."""
    cfg = with_dt(p.config, p.config.training.steps * p.config.training.dt)  # one step
    lines, rule = [], "gauss"
    for degree, cells in p.gradient_sizes:
        model = solve_fem(cfg, degree, cells, quadrature=rule)
        rates = gradient_rate(model.galerkin, model.state.theta, repeats)
        lines.append(describe(f"P{degree} {cells} cells, {rule}", model.galerkin, rates))
    return lines


# ----------------------------------------------------------------------------- reporting


def bracket(rows: list[Row], target: float) -> list[Row]:
    """The first row (by size) reaching ``target``, after the one before it (if any): the rows
    :func:`time_to_target` reads its time from."""
    rows = sorted(rows, key=lambda r: r.size)
    for k, r in enumerate(rows):
        if r.error <= target:
            return rows[max(k - 1, 0) : k + 1]
    return []


def time_to_target(rows: list[Row], target: float) -> tuple[Row | None, float | None]:
    """First row (by size) reaching ``target`` and the log-log interpolated time to it."""
    found = bracket(rows, target)
    if len(found) < 2:
        return (found[0], None) if found else (None, None)
    a, r = found
    if a.error <= r.error or a.seconds <= 0:
        return r, r.seconds
    s = np.log(a.error / target) / np.log(a.error / r.error)
    return r, float(np.exp(np.log(a.seconds) + s * np.log(r.seconds / a.seconds)))


def times_to_target(rows: list[Row]) -> dict[tuple[str, float], tuple[Row, float | None]]:
    """:func:`time_to_target` of every route of ``rows`` and every target it reaches."""
    table = {}
    for route in dict.fromkeys(r.route for r in rows):
        for t in TARGETS:
            r, interp = time_to_target([x for x in rows if x.route == route], t)
            if r is not None:
                table[(route, t)] = (r, interp)
    return table


CONTENDERS = 2.0
"""How much slower than a family's fastest an FEM route may be, timed once, to be timed again
by :func:`side_by_side` (a route timed in a slow stretch may be the fastest)."""


def side_by_side(
    p: Problem,
    repeats: int,
    rounds: int,
    targets: tuple[float, ...] = (1e-6, 1e-9),
    label: Callable[[str, int], str] | None = None,
) -> None:
    """Time again, in turn and ``rounds`` times over, the rows that the ratios at ``targets``
    are read from (those of every network route, and of each FEM family's routes within
    :data:`CONTENDERS` of its fastest; runs under 0.5 s), and keep each row's best: the
    machine's speed drifts over seconds to minutes (benchmarks/README.md, run 18), and a route
    timed in a slow stretch would be compared with one timed in a quick one (``label``: a row's
    size in the printout, default :func:`size_label`)."""
    label = label or size_label
    table = times_to_target(p.rows)

    def seconds(route: str, t: float) -> float:
        row, interp = table[(route, t)]
        return row.seconds if interp is None else interp

    groups: dict[int, list[Row]] = {}  # by the run: an FEM run gives rows in two norms
    for t in targets:
        routes = [r for r in NETWORK_ROUTES if (r, t) in table]
        for fem in fem_families(p).values():
            reached = [r for r in fem if (r, t) in table]
            if reached:
                fastest = min(seconds(r, t) for r in reached)
                routes += [r for r in reached if seconds(r, t) <= CONTENDERS * fastest]
        for route in routes:
            for row in bracket([x for x in p.rows if x.route == route], t):
                if row.again is not None and row.seconds < 0.5:
                    groups.setdefault(id(row.again), []).append(row)
    runs = list(groups.values())
    before = [g[0].seconds for g in runs]
    for k in range(rounds):
        for group in runs if k % 2 == 0 else runs[::-1]:
            assert group[0].again is not None
            best, _ = best_time(group[0].again, repeats)
            for row in group:
                row.seconds = min(row.seconds, best)
    p.notes.append(
        f"side by side: {len(runs)} runs the ratios at {', '.join(f'{t:g}' for t in targets)} "
        "are read from, timed again in "
        f"turn {rounds} times (best kept): "
        + ", ".join(
            f"{g[0].route} {label(g[0].route, g[0].size)} {1e3 * b:.2f} -> "
            f"{1e3 * g[0].seconds:.2f} ms"
            for g, b in zip(runs, before, strict=True)
        )
    )


def interpolate_time(rows: list[Row], target: float) -> float | None:
    """Time at error ``target`` interpolated in log-log between bracketing rows (None outside)."""
    for a, b in itertools.pairwise(rows):
        if b.error <= target <= a.error and a.error > b.error:
            s = np.log(a.error / target) / np.log(a.error / b.error)
            return float(np.exp(np.log(a.seconds) + s * np.log(b.seconds / a.seconds)))
    return None


def report(p: Problem) -> dict:
    print(f"\n--- {p.name} ---")
    for note in p.notes:
        print(f"  {note}")
    print(
        f"  FEM errors on the lattice of width {p.eval_width}; times: best of repeats over "
        f"at least {WINDOW:g} s of runs, config -> final fields"
    )
    header = (
        f"  {'route':<18} {'size':>6} {'unknowns':>10} {'wall s':>10} {'error':>10} "
        f"{'cost error':>10}  note"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for r in p.rows:
        size = size_label(r.route, r.size)
        cost = "-" if r.cost_error is None else f"{r.cost_error:.3e}"
        print(
            f"  {r.route:<18} {size:>6} {r.unknowns:>10} {r.seconds:>10.4f} {r.error:>10.3e}"
            f" {cost:>10}  {r.note}"
        )
    routes = list(dict.fromkeys(r.route for r in p.rows))
    orders = []
    for route in routes:
        rows = sorted((r for r in p.rows if r.route == route), key=lambda r: r.size)[-4:]
        if len(rows) >= 2:
            slope = np.polyfit(np.log([r.size for r in rows]), np.log([r.error for r in rows]), 1)
            orders.append(f"{route} {-slope[0]:.2f}")
    print("  observed order in 1/size over the 4 largest sizes: " + ", ".join(orders))
    return print_time_to_target(p.rows, size_label, 30)


def print_time_to_target(
    rows: list[Row], label: Callable[[str, int], str], width: int = 18
) -> dict[tuple[str, float], float]:
    """Print, per route of ``rows`` (a column ``width`` wide) and target error, the first size
    reaching it with its wall time and the log-log interpolated time; return the time per
    ``(route, target)`` (the interpolated one where there is one)."""
    print("\n  time to target: first size reaching it, its wall time [log-log interpolated]")
    print("  " + f"{'route':<{width}}" + "".join(f"{f'e <= {t:g}':>30}" for t in TARGETS))
    best: dict[tuple[str, float], float] = {}
    table = times_to_target(rows)
    for route in dict.fromkeys(r.route for r in rows):
        cells = []
        for t in TARGETS:
            if (route, t) not in table:
                cells.append("not reached")
                continue
            r, interp = table[(route, t)]
            extra = f" [{interp:.4f}]" if interp is not None else ""
            cells.append(f"{label(route, r.size)} {r.seconds:.4f}s{extra}")
            best[(route, t)] = interp if interp is not None else r.seconds
        print("  " + f"{route:<{width}}" + "".join(f"{c:>30}" for c in cells))
    return best


def fem_families(p: Problem) -> dict[str, list[str]]:
    """The FEM routes as a whole, and those that step with the networks' own RK4 and dt (in
    numpy, ``matched``, or compiled, ``jax``), with errors on the evaluation lattice; and the
    nodal routes with errors over their own nodes (:data:`AT_NODES`), the norm of the
    networks' rows."""
    fem = sorted({x.route for x in p.rows if x.route.startswith("FEM")})
    routes = [r for r in fem if not r.endswith(AT_NODES)]
    families = {"FEM": routes}
    matched = [r for r in routes if route_integrator(r) in ("matched", "jax")]
    if matched != routes:
        families["FEM (RK4, as the networks)"] = matched
    at_nodes = [r for r in fem if r.endswith(AT_NODES)]
    if at_nodes:
        families["FEM at its nodes"] = at_nodes
    return families


def checks(p: Problem, best: dict) -> list[str]:
    lines = []
    disc_rows = sorted((r for r in p.rows if r.route == "discrete"), key=lambda r: r.size)
    for family, routes in fem_families(p).items():

        def fem_best(t, routes=routes):
            times = [best[(r, t)] for r in routes if (r, t) in best]
            return min(times) if times else None

        ratios = []
        for r in p.rows:
            if r.route in routes:
                t_disc = interpolate_time(disc_rows, r.error)
                if t_disc is not None:
                    ratios.append((r.seconds / t_disc, r))
        if ratios:
            faster = [x for x in ratios if x[0] <= 1.0]
            lo, hi = min(ratios, key=lambda x: x[0]), max(ratios, key=lambda x: x[0])
            lines.append(
                f"{p.name}, {family}: every run against the plain discrete time at its error "
                f"(log-log interpolated): {family}/discrete from {lo[0]:.2f} ({lo[1].route} "
                f"{size_label(lo[1].route, lo[1].size)}, e={lo[1].error:.1e}) to {hi[0]:.2f} "
                f"({hi[1].route} {size_label(hi[1].route, hi[1].size)}, e={hi[1].error:.1e}); "
                f"faster in {len(faster)} of {len(ratios)}"
            )
        if p.name == "image-layer":
            t_fem = fem_best(1e-4)
            disc = [best[(r, 1e-4)] for r in ("discrete", "richardson") if (r, 1e-4) in best]
            if t_fem is None or not disc:
                lines.append(
                    f"image-layer: {family} >= 10x faster than cheapest discrete at 1e-4: "
                    "UNDECIDED (a route did not reach 1e-4)"
                )
            else:
                ratio = min(disc) / t_fem
                lines.append(
                    f"image-layer: cheapest discrete / {family} time at 1e-4 = {min(disc):.4f} / "
                    f"{t_fem:.4f} = {ratio:.2f}x  (target >= 10x): "
                    f"{'MET' if ratio >= 10 else 'MISSED'}"
                )
                if family == "FEM" and p.floor:
                    lines.append(
                        f"image-layer: {p.floor}; 10x needs the whole run under "
                        f"{min(disc) / 10 * 1e3:.2f} ms"
                    )
        for t, factor in ((1e-6, 30.0), (1e-9, 100.0)):
            t_fem = fem_best(t)
            networks = {r: best[(r, t)] for r in NETWORK_ROUTES if (r, t) in best}
            if t_fem is None:
                continue
            if not networks:
                lines.append(
                    f"{p.name}: at {t:g} {family} {t_fem:.4f} s; no network route reaches it "
                    f"(target >= {factor:g}x faster or unreachable): MET"
                )
                continue
            fastest = min(networks, key=networks.get)
            ratio = networks[fastest] / t_fem
            lines.append(
                f"{p.name}: at {t:g} fastest network route ({fastest}) {networks[fastest]:.4f} s "
                f"/ {family} {t_fem:.4f} s = {ratio:.1f}x (target >= {factor:g}x): "
                f"{'MET' if ratio >= factor else 'MISSED'}"
            )
        for t in TARGETS:
            t_fem, t_disc = fem_best(t), best.get(("discrete", t))
            if t_fem is None or t_disc is None:
                continue
            lines.append(
                f"{p.name}: at {t:g} {family} {t_fem:.4f} s vs plain discrete {t_disc:.4f} s "
                f"({family}/discrete = {t_fem / t_disc:.2f}): never slower -> "
                f"{'MET' if t_fem <= t_disc else 'MISSED'}"
            )
            t_jax = best.get(("jax", t))
            if t_jax is not None and t_jax < t_disc:
                lines.append(
                    f"{p.name}: at {t:g} {family} {t_fem:.4f} s vs plain JAX {t_jax:.4f} s "
                    f"({family}/jax = {t_fem / t_jax:.2f}): never slower -> "
                    f"{'MET' if t_fem <= t_jax else 'MISSED'}"
                )
    return lines


def problems(args) -> list[Problem]:
    perceptron = load_config(ROOT / "examples/perceptron.toml")
    perceptron = with_continuum(perceptron, scheme="matched")
    deep = load_config(ROOT / "examples/deep-tanh.toml")
    image = load_config(ROOT / "examples/image-layer.toml")
    out = {
        "perceptron": Problem(
            "perceptron",
            perceptron,
            [8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512],
            {
                "FEM P1": [4, 8, 16, 32, 64, 128, 256],
                "FEM P2": [4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192],
                "FEM span P1": [4, 8, 16, 32, 64, 128, 256],
                "FEM span P2": [4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192],
                "FEM span P1 exp": [4, 8, 16, 32, 64, 128, 256],
                "FEM span P2 exp": [4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192],
                "FEM-CN P2": [8, 16, 32, 64, 128],
                "FEM p c=4": list(ROUTE_DEGREES),
                "FEM p c=8": list(ROUTE_DEGREES),
                "FEM span p c=4 exp": list(ROUTE_DEGREES),
                "FEM span p c=8 exp": list(ROUTE_DEGREES),
            },
            "exact",
            97,
        ),
        "deep-tanh": Problem(
            "deep-tanh",
            deep,
            [8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384],
            {
                "FEM P1": [4, 8, 16, 32, 64, 128],
                "FEM P2": [4, 6, 8, 12, 16, 24, 32, 48, 64, 96],
                "FEM span P2": [4, 6, 8, 12, 16, 24, 32, 48, 64, 96],
                "FEM span P2 adapt": [4, 6, 8, 12, 16, 24, 32, 48, 64, 96],
                "FEM p c=4": list(ROUTE_DEGREES),
                "FEM p c=8": list(ROUTE_DEGREES),
                "FEM span p c=4": list(ROUTE_DEGREES),
                "FEM span p c=8 adapt": list(ROUTE_DEGREES),
            },
            "fem",
            97,
            [8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256],
            gradient_sizes=[(8, 8), (2, 1024)],
        ),
        "image-layer": Problem(
            "image-layer",
            image,
            [4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256],
            {
                "FEM P1": [4, 8, 16, 32, 48, 64],
                "FEM P2": [2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96],
                "FEM span P1": [4, 8, 16, 32, 64, 128, 256],
                "FEM span P2": [2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128],
                "FEM span P1 exp": [4, 8, 16, 32, 64, 128, 256],
                "FEM span P2 exp": [2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128],
                "FEM span p c=2 exp": list(ROUTE_DEGREES),
                "FEM span p c=4 exp": list(ROUTE_DEGREES),
                "FEM span p c=8 exp": list(ROUTE_DEGREES),
            },
            "exact",
            29,
        ),
    }
    out.update(user_scale_problems())
    names = [n for name in args.problems for n in (USER_SCALE if name == "user-scale" else [name])]
    return [out[name] for name in names]


def smoke(p: Problem) -> Problem:
    """``p`` at tiny sizes: two training steps, three widths (two for JAX), the two smallest
    sizes of every FEM route, a reference on 5 cells and one small gradient rate."""
    return dataclasses.replace(
        p,
        config=p.config.replace(training={"steps": 2}),
        widths=p.widths[:3],
        jax_widths=p.jax_widths[:2],
        cells={route: sizes[:2] for route, sizes in p.cells.items()},
        reference_cells=5,
        reference_check=(p.reference_degree, 3),
        gradient_sizes=[(2, 4)] if p.gradient_sizes else [],
    )


USER_SCALE = ("digits", "deep-tanh-L256", "resnet")
"""The problems at the scale users train at: the plain networks need seconds at 1e-6 (the
Richardson routes reach it in a fraction of a second, benchmarks/README.md)."""


def user_scale_problems() -> dict[str, Problem]:
    """The digits classifier and a deep tanh network with many samples (``--problems
    user-scale``).

    * ``digits``: ``examples/digits.toml`` (64 → N → N → 10, index input and output layers,
      300 training rows, cross-entropy, η = 20, RK4 dt = 0.01), trained to ``t = 0.4`` (40
      steps): the early flow, where the widths converge at order 2 (docs/convergence.md);
      later, the RK4 step is at the edge of stability of the sharpened fields and no route is
      asymptotic;
    * ``deep-tanh-L256``: ``examples/deep-tanh.toml`` with four tanh layers
      (N → N → N → N → N) and ``L = 256`` smooth samples ``X^l(y) = sin(π(1 + l/128)y + l) +
      ½``, ``Y^l(x) = ½ cos(π(1 + l/256)x + l)``, to ``t = 1`` (50 RK4 steps);
    * ``resnet``: ``examples/resnet.toml`` (tanh residual network, stream of width N through
      M = N/2 blocks, 3 samples) to ``t = 1`` (50 RK4 steps); its error is ``O(1/M)`` from the
      blocks (explicit Euler in τ) and ``O(1/N²)`` from the width, so with N and M doubled
      together the leading term is first order and Richardson removes it (``2 f_2N − f_N``).
      The depth continuum at degree 2 and 3 in x and τ with ``depth_cells = cells`` (one
      degree for both: under RK4 in τ a τ degree ≥ 4 converges to another flow,
      docs/convergence.md; ``benchmarks/residual_degree.py`` sets the x degree, the τ degree,
      the depth rule, the quadrature and the scheme apart); reference degree 2 on 96 cells in
      x and τ.
    """
    digits = load_config(ROOT / "examples/digits.toml").replace(training={"t_end": 0.4})
    resnet = with_continuum(load_config(ROOT / "examples/resnet.toml"), depth_cells=None)
    deep = load_config(ROOT / "examples/deep-tanh.toml").replace(
        network={"widths": [32] * 5, "connectivity": "dense"},
        coordinates={"layout": "line"},
        data={
            "samples": 256,
            "input": "sin(pi*(1 + l/128)*y + l) + 0.5",
            "target": "0.5*cos(pi*(1 + l/256)*x + l)",
        },
    )
    widths = [16, 32, 64, 128, 256, 512]
    return {
        "digits": Problem(
            "digits",
            digits,
            widths,
            {
                "FEM P2": [8, 16, 32, 64],
                "FEM p c=16": list(ROUTE_DEGREES),
                "FEM p c=32": list(ROUTE_DEGREES),
                "FEM p c=64": list(ROUTE_DEGREES),
                "FEM p c=8 nodal": list(ROUTE_DEGREES),
                "FEM p c=16 nodal": list(ROUTE_DEGREES),
                "FEM p c=32 nodal": list(ROUTE_DEGREES),
                "FEM p c=4 nodal jax": list(DEGREES),
                "FEM p c=8 nodal jax": list(ROUTE_DEGREES),
                "FEM p c=16 nodal jax": list(ROUTE_DEGREES),
                "FEM p c=32 nodal jax": list(ROUTE_DEGREES),
            },
            "fem",
            97,
            [*widths, 1024, 2048],  # JAX to Richardson 1e-9 (N = 1024 + 2048)
            reference_cells=128,
            reference_check=(REFERENCE_DEGREE, 96),
            gradient_sizes=[(8, 64), (2, 64)],
        ),
        "deep-tanh-L256": Problem(
            "deep-tanh-L256",
            deep,
            widths,
            {
                "FEM P2": [4, 8, 16, 32, 64],
                "FEM p c=4": list(ROUTE_DEGREES),
                "FEM p c=4 adapt": list(ROUTE_DEGREES),
                "FEM p c=4 nodal": list(ROUTE_DEGREES),
                "FEM p c=4 nodal jax": list(ROUTE_DEGREES),
                "FEM p c=2 nodal jax": list(ROUTE_DEGREES),
                "FEM p c=1 nodal jax": list(ROUTE_DEGREES),
                "FEM p c=2 nodal jax adapt tol=1e-6": list(ROUTE_DEGREES),
                "FEM p c=1 nodal jax adapt tol=1e-6": list(ROUTE_DEGREES),
            },
            "fem",
            97,
            widths,
            reference_cells=8,
            gradient_sizes=[(8, 4), (2, 64), (2, 256)],
        ),
        "resnet": Problem(
            "resnet",
            resnet,
            widths[:5],
            {"FEM P2": [2, 4, 8, 16, 32], "FEM P3": [2, 4, 8, 16]},
            "fem",
            97,
            widths[:5],
            reference_cells=96,
            reference_degree=2,
            reference_check=(2, 64),
            richardson_order=1,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--problems",
        nargs="+",
        default=["perceptron", "deep-tanh", "image-layer"],
        choices=["perceptron", "deep-tanh", "image-layer", *USER_SCALE, "user-scale"],
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--window",
        type=float,
        default=1.0,
        help="seconds of calls every route is timed over, at least (best × calls; WINDOW)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="times the rows of the 1e-6 and 1e-9 ratios are timed again, in turn (side_by_side)",
    )
    parser.add_argument("--reference-cells", type=int, default=16)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes and two training steps: checks that every route runs (seconds)",
    )
    args = parser.parse_args()
    if args.smoke:
        args.repeats, args.window, args.rounds = 1, 0.0, 1
    global WINDOW
    WINDOW = args.window
    print(
        f"accuracy per cost — {platform.node()} {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, one rank on "
        f"cores {sorted(one_core.CORES)}"
    )
    start = time.perf_counter()
    summary = []
    for p in problems(args):
        if args.smoke:
            p = smoke(p)
        run_problem(p, args)
        side_by_side(p, args.repeats, args.rounds)
        best = report(p)
        summary += checks(p, best)
    print("\n=== targets")
    for line in summary:
        print(f"  {line}")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
