"""The depth continuum of a residual network: fields on ``[0,1]_τ × Ω`` (docs/physics.md "Depth as a
coordinate").

Fields (docs/physics.md, "Depth as a coordinate"): the input layer ``w^in(x, y)``,
``b^in(x)`` in ``V_x ⊗ V_in``; the blocks' ``w(τ, x, y)`` in ``V_τ ⊗ V_x ⊗ V_x`` and
``b(τ, x)`` in ``V_τ ⊗ V_x`` (``V_τ`` Lagrange of degree ``[continuum] depth_degree``, by
default ``degree``, on ``depth_cells`` cells of ``[0, 1]``); the readout ``w^out(z, y)``,
``b^out(z)`` in ``V_out ⊗ V_x``.  For every sample the stream solves the depth ODE

    ∂_τ s(τ, x) = ∫ w(τ, x, y) σ(s(τ, y)) dy + b(τ, x),    s(0) = ∫ w^in X dy + b^in,
    Z = ∫ w^out s(1) dy + b^out,    C = (1/L) Σ_l ½ ∫ (σ_out(Z^l) − Y^l)² dz.

With ``w(τ) ∈ V_x ⊗ V_x`` the right-hand side lies in ``V_x``, so ``s(τ)`` stays in ``V_x``:
its coefficients obey ``ṡ = W(τ) η(s) + b(τ)`` with moments ``η_a(s) = ∫ ψ_a σ(s_h) dy``
(FEM quadrature).  The ODE is integrated by the explicit Runge–Kutta tableau ``(A, b, c)`` of
``[continuum] depth_rule`` (:mod:`continuum.fields.depth_rule`: classical RK4 by default, or
the order-8 Dormand–Prince tableau), one step per τ-cell; stage ``i`` of the step from
``τ_n`` sits at ``τ_n + c_i h``, where ``W(τ)`` is read off the τ basis (RK4: the cell's ends
and midpoint, for τ degree 2 the nodes themselves).  The forward map's error is
``O(h_τ^{q+1})`` from the τ interpolation of the fields (``q`` the τ degree) and ``O(h_τ^r)``
from the rule of order ``r``: design order ``min(q + 1, r)`` in ``depth_cells`` for a fixed
field (3 for degree 2; measured in tests/test_residual_continuum.py).  The training flow sees
``W(τ)`` only at the stage points, so its Riesz gradient ``M_τ⁻¹ Sᵀ g`` is consistent with
the L2 gradient of the networks' limit only where the stage rule ``(c, b)``, exact to degree
``r − 1``, integrates the τ basis against smooth densities: with RK4 at τ degrees 1–3 (to
``O(h_τ²)`` at 1 and 2), with dop853 at 1–7; above, the flow converges to another limit, and
the configuration refuses those degrees (``continuum.settings.RESIDUAL_DEGREES``,
tests/test_residual_degree.py).  The x degree is free: ``V_x`` enters through Galerkin
products and loads, never through point values, and at a fixed τ discretisation the x error
falls exponentially in it (tests/test_residual_degree.py).

Sub-steps.  With ``[continuum] depth_steps = k`` the rule takes ``k`` steps ``δ = h_τ/k`` per
τ-cell, so the stage points are the distinct ``τ = (n + c_i) δ`` (RK4: ``τ_j = j δ/2``, ``j = 0
… 2k·cells``) and the flow's stage rule is the composite ``(c, b)`` on ``δ`` (RK4: Simpson):
the Riesz map ``S M_τ⁻¹ Sᵀ`` of the stage gradients misses the L2 projection by
``O(h_τ^{r − min(q, r)} k^{−r})`` (docs/convergence.md "Residual networks"), so with RK4
``k = 4`` at τ degree 2 leaves the projection's ``O(h_τ³)`` instead of ``O(h_τ²)``, and makes
τ degree 3 (first order, ``k⁻⁴``) accurate; with dop853 ``k = 2`` at τ degree 4 leaves the
projection's ``O(h_τ⁵)``.  The stream, its adjoint and its tangent are reported at the
τ-cell ends.  In what follows ``h`` is the step ``δ`` and "cells" the steps.

The gradient is the exact gradient of this discretised forward map, by the discrete adjoint
of the explicit step ``u_i = s + h Σ_{j<i} a_ij f_j``, ``s' = s + h Σ_i b_i f_i`` (with
``J_i = ∂f/∂s`` at stage ``i`` and ``λ' = ∂C/∂s`` after the step), the stages taken last to
first::

    g_i = h b_i λ' + h Σ_{j>i} a_ji J_jᵀ g_j,      λ = λ' + Σ_i J_iᵀ g_i,
    ∂C/∂W(τ_i) += g_i η(u_i)ᵀ,   ∂C/∂b(τ_i) += g_i 1

(RK4: ``g₄ = h/6 λ'``, ``g₃ = h/3 λ' + h J₄ᵀ g₄``, ``g₂ = h/3 λ' + h/2 J₃ᵀ g₃``, ``g₁ = h/6
λ' + h/2 J₂ᵀ g₂``),

where ``Jᵀ g = Tᵀ(ω σ'(T u) ⊙ T Wᵀ g)`` (``T`` the tabulation, ``ω`` the quadrature weights).
The stage gradients go back to the τ coefficients through the τ basis ``S`` (``S_{jk} =
φ_k(τ_j)`` at the stage points ``τ_j = j h/2``), and the Riesz map ``(M_τ ⊗ M_x ⊗ M_x)⁻¹`` (and
its two-factor versions for the end layers) turns ``∂C/∂θ`` into the representative of
``δC/δφ`` whose flow ``∂_t φ = −η δC/δφ`` the training rules integrate (the object has the
``value``/``gradient`` interface of :class:`discrete.cost.Cost`).  Both are applied to the
factors of the stage gradients (docs/physics.md, "The factored force in depth"):

    δC/δw ↦ Σ_i R_{k j(i)} (M_x⁻¹ g_i)(M_x⁻¹ η(u_i))ᵀ,      R = M_τ⁻¹ Sᵀ,

with ``j(i)`` the stage point of stage ``i``: a sum of rank-``L`` terms, ``stages·cells`` of
them, over all stage points (``M_τ⁻¹`` is dense).

Factored force.  The RK4 of the flow (:class:`~continuum.schemes.factored_flow.FactoredFlow`) keeps
each force as these factors ``(A_i, B_i)``: a shifted stage applies the block field at stage
point ``j`` as ``W_j x + s Σ_i P_{j j(i)} A_i (B_iᵀ x)`` with ``P = S M_τ⁻¹ Sᵀ``, and the step
adds the four forces of the flow's RK4 in one pass,
``G_j = Σ_f c_f Σ_{i: j(i)=j} A_{f,i} B_{f,i}ᵀ``,
``W += R G``.  It saves three of the four τ Riesz maps (``O(cells² n_x²)`` each) and the
whole-vector work of the generic RK4, and pays ``O(cells² L² n_x)`` per force for the shifts:
it is used from :data:`FACTORED_DEPTH_WIDTH`.

MPI (docs/parallel-and-output.md): the factor spaces are replicated; the rows of every weight
field — ``x`` of ``w^in(x, y)`` and of ``w(τ, x, y)``, ``z`` of ``w^out(z, y)`` — are split
over the ranks (:class:`~continuum.fem.row_partition.RowPartition`), the biases and the stream
``s(τ, x)`` of every sample are replicated.  Every stage of the forward map gathers its
slope ``W_j η + b_j`` (``Allgatherv``), every stage of the adjoint sums ``W_jᵀ g`` over the
ranks (``Allreduce``): ``2·stages·cells + 3`` collectives of ``n_x × L`` (or ``n_out × L``)
per gradient.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np
import scipy.linalg.blas
from mpi4py import MPI

from continuum.fem.quadrature import converged_quadrature, with_quadrature
from continuum.fem.row_partition import RowPartition, sum_over_ranks
from continuum.fem.spaces import FactorSpace
from continuum.fields.depth_rule import ButcherTableau, depth_rule
from continuum.fields.galerkin import DataFunction
from continuum.io import layout
from continuum.models.coefficients import CoefficientModel, CoefficientPart, Evaluation
from continuum.models.limit import coordinate_spaces, data_function, fields_fingerprint
from continuum.models.model import ContinuumModel
from continuum.schemes.factored_flow import FactoredFlow
from discrete.conventions import Convention
from discrete.errors import reference_size
from discrete.experiment import DiscreteSetup
from discrete.residual import ResidualNetwork, layer_formula
from discrete.training import Rule, make_rule
from meshes import interval

Array = np.ndarray
InitialWeight = Callable[[int, Array, Array, Array], Array]
"""``weight(part, τ, x, y)``: an initial weight field at the depth nodes and the FE nodes."""
InitialBias = Callable[[int, Array, Array], Array]
"""``bias(part, τ, x)``: an initial bias field at the depth nodes and the FE nodes."""


@dataclass
class StreamSolution:
    """A forward solve: the stream at the step ends ``(steps + 1, n_x, L)``, every stage's
    moments ``η(u_i)`` and ``σ'(T u_i)`` (for the adjoint), the readout's moments
    ``η = M_x s(1)``, the output at quadrature points and the residual there."""

    s: Array
    etas: list[Array]
    slopes: list[Array]
    eta_out: Array
    z_out: Array
    residual: Array


@dataclass
class StreamMotion:
    """The stream ``s`` and its time derivative ``ṡ`` at the step ends (``steps + 1`` arrays
    ``(n_x, L)``), the stage states ``u_i``, their derivatives ``u̇_i`` and those of the stage
    slopes ``∂_t k_i`` (``stages`` per step, in order), and the derivative ``Ż`` of the
    readout's output coefficients."""

    s: list[Array]
    sdot: list[Array]
    stages: list[Array]
    stage_rates: list[Array]
    slope_rates: list[Array]
    zdot: Array | None


@dataclass
class DepthForce:
    """Weight gradients or forces kept as factors (module docstring, "Factored force"): for
    the input layer and the readout ``A Bᵀ``; for the blocks the columns ``A`` (rows ×
    stages·cells·L) and ``B`` (``n_x`` × stages·cells·L) of all stages, column block ``i``
    belonging to the stage point ``j(i)``, which the τ map ``R`` (``Sᵀ`` or ``M_τ⁻¹ Sᵀ``)
    spreads over the τ coefficients: ``F_k = Σ_i R_{k j(i)} A_i B_iᵀ``.  ``A`` holds this rank's
    rows, ``B`` all of its factor's; the bias parts are whole arrays (replicated)."""

    weights: list[tuple[Array, Array]]
    biases: list[Array]


DepthShift = tuple[float, DepthForce]
"""``(s, F)``: the coefficients ``θ + s F``, applied without forming ``F``."""

FACTORED_DEPTH_WIDTH = 16
"""The flow of a depth continuum steps its forces in factored form when the stream space has
``n_x ≥ FACTORED_DEPTH_WIDTH · max(L, 3)²`` DOFs for ``L`` samples (module docstring,
"Factored force"): the shifts cost ``O(cells² L² n_x)`` per force in small products, against
the whole-vector passes ``O(cells n_x²)`` and the (large, efficient) τ products
``O(cells² n_x²)`` they save.  Measured side by side in five runs
(``benchmarks/residual_flow.py``, P2, 4 and 16 τ-cells, on a loaded 2-core machine) the
generic step takes, for ``L ≤ 3``, 0.4–1.4× (once 2.4×) the factored one's time at ``n_x ≤ 65``,
0.9–2.3× at 129, 1.2–2.6× at 257 and 1.8–5.2× at 513; for ``L = 8`` 0.4–1.7× up to 129,
0.7–2.0× at 257 and 0.6–1.25× at 513."""

ROW_AXES = (0, 1, 0)
"""The axis of the distributed rows in the weight coefficients of the input layer
``(n_x, n_in)``, the blocks ``(n_τ, n_x, n_x)`` and the readout ``(n_out, n_x)``."""


class DepthFields:
    """Coefficients of a residual network's depth continuum and its cost (module docstring)."""

    def __init__(
        self,
        network: ResidualNetwork,
        spaces: tuple[FactorSpace, FactorSpace, FactorSpace],
        depth_space: FactorSpace,
        inputs: DataFunction,
        targets: DataFunction,
        samples: int,
        comm: MPI.Comm = MPI.COMM_SELF,
        substeps: int = 1,
        rule: ButcherTableau | None = None,
    ):
        self.network = network
        self.spaces = spaces
        self.inputs, self.stream, self.outputs = spaces
        self.depth = depth_space
        self.samples = samples
        self.comm = comm
        cells = depth_space.mesh.topology.index_map(1).size_local
        self.h = 1.0 / cells
        self.cells = cells
        # steps of δ = h/k, k = substeps per τ-cell (module docstring, "Sub-steps")
        self.rule = rule = rule or depth_rule("rk4")
        self.substeps = substeps
        self.steps = cells * substeps
        self.step = self.h / substeps
        self._couplings = [rule.couplings(i) for i in range(rule.stages)]
        self._feedbacks = [rule.feedbacks(i) for i in range(rule.stages)]
        # the stage points: the distinct τ = (n + c_i) δ, and the stage point j(i) of every
        # stage i (stage i of step n is i + n·stages; RK4: 2n, 2n + 1, 2n + 1, 2n + 2)
        offsets = (np.arange(self.steps)[:, None] + rule.c[None, :]).ravel()
        points, self.stage_points = np.unique(np.round(offsets, 12), return_inverse=True)
        self.stage_tau = points * self.step
        self._stage_matrix = depth_space.evaluation_matrix(self.stage_tau[:, None]).tocsr()
        self.stage_basis = self._stage_matrix.toarray()
        # the τ Riesz map of stage gradients, R = M_τ⁻¹ Sᵀ, and its image at the stages S R
        self._tau_riesz = depth_space.solve_mass(self.stage_basis.T)
        self._stage_coupling = self.stage_basis @ self._tau_riesz
        self._coupling_columns: dict[int, Array] = {}
        # the stages at each stage point j, ascending, padded with the index ``stages · steps``
        per_point = np.bincount(self.stage_points)
        self._stage_groups = np.full((len(points), per_point.max()), len(self.stage_points))
        filled = np.zeros(len(points), dtype=int)
        for i, j in enumerate(self.stage_points):
            self._stage_groups[j, filled[j]] = i
            filled[j] += 1
        all_samples = np.arange(samples)
        self.eta0 = self.inputs.load(inputs(self.inputs.quadrature_points, all_samples))
        self.Y_q = targets(self.outputs.quadrature_points, all_samples)
        nx, nt = self.stream.size, depth_space.size
        self.stream_rows = RowPartition.of(nx, comm)
        self.output_rows = RowPartition.of(self.outputs.size, comm)
        self.partitions = (self.stream_rows, self.stream_rows, self.output_rows)
        shapes = [
            ((nx, self.inputs.size), (nx,)),
            ((nt, nx, nx), (nt, nx)),
            ((self.outputs.size, nx), (self.outputs.size,)),
        ]
        self.shapes = shapes
        self.local_shapes = []
        for (w_shape, b_shape), rows, axis in zip(shapes, self.partitions, ROW_AXES, strict=True):
            local = list(w_shape)
            local[axis] = rows.size
            self.local_shapes.append((tuple(local), b_shape))
        self._slices: list[tuple[slice, slice]] = []
        start = 0
        for w_shape, b_shape in self.local_shapes:
            nw, nb = int(np.prod(w_shape)), int(np.prod(b_shape)) if network.bias else 0
            self._slices.append((slice(start, start + nw), slice(start + nw, start + nw + nb)))
            start += nw + nb
        self.size = start

    def factored_pays(self) -> bool:
        """Whether the factored RK4 of the flow is the cheaper (:data:`FACTORED_DEPTH_WIDTH`)."""
        return self.stream.size >= FACTORED_DEPTH_WIDTH * max(self.samples, 3) ** 2

    # ----------------------------------------------------------------- layout

    def slices(self, part: int) -> tuple[slice, slice]:
        """Where this rank's weight and bias coefficients of ``part`` lie in ``θ`` (shapes
        :attr:`local_shapes`)."""
        return self._slices[part]

    def W(self, theta: Array, part: int) -> Array:
        """This rank's rows of the weight coefficients of part 0 (input layer), 1 (blocks)
        or 2 (readout)."""
        return theta[self._slices[part][0]].reshape(self.local_shapes[part][0])

    def full_W(self, theta: Array, part: int) -> Array:
        """All rows of the weight coefficients of ``part`` (gathered: a collective call)."""
        return self.partitions[part].gather(self.W(theta, part), ROW_AXES[part])

    def b(self, theta: Array, part: int) -> Array:
        """The (replicated) bias coefficients of ``part`` (zeros without biases)."""
        if not self.network.bias:
            return np.zeros(self.shapes[part][1])
        return theta[self._slices[part][1]].reshape(self.shapes[part][1])

    def pack(self, w: list[Array], b: list[Array]) -> Array:
        """Local coefficients from the full weight arrays ``w[part]`` and biases ``b[part]``."""
        local = [p.take(a, axis) for a, p, axis in zip(w, self.partitions, ROW_AXES, strict=True)]
        return self._pack_local(local, b)

    def _pack_local(self, w: list[Array], b: list[Array]) -> Array:
        theta = np.zeros(self.size)
        for part in range(3):
            self.W(theta, part)[...] = w[part]
            if self.network.bias:
                self.b(theta, part)[...] = b[part]
        return theta

    def unpack(self, theta: Array) -> tuple[list[Array], list[Array]]:
        """Full weight arrays (gathered from every rank) and bias arrays."""
        return [self.full_W(theta, p) for p in range(3)], [
            self.b(theta, p).copy() for p in range(3)
        ]

    def per_group(self, rates: list[tuple[float, float]]) -> Array:
        """A coefficient vector equal to ``rates[part] = (weights, biases)`` on each part."""
        v = np.zeros(self.size)
        for (sw, sb), (rw, rb) in zip(self._slices, rates, strict=True):
            v[sw], v[sb] = rw, rb
        return v

    def interpolate(
        self,
        weight: InitialWeight,
        bias: InitialBias,
    ) -> Array:
        """Nodal interpolants of the initial fields (this rank's rows of the weights);
        ``weight(part, τ, x, y)`` and ``bias(part, τ, x)`` take the depth nodes (τ = 0 for the
        input layer, 1 for the readout)."""
        tau = self.depth.dof_coordinates[:, 0]
        xs, ys = self.stream.dof_coordinates, self.inputs.dof_coordinates
        zs = self.outputs.dof_coordinates
        rows, out_rows = self.stream_rows.rows, self.output_rows.rows
        w = [
            weight(0, np.zeros(1), xs[rows], ys)[0],
            weight(1, tau, xs[rows], xs),
            weight(2, np.ones(1), zs[out_rows], xs)[0],
        ]
        b = [bias(0, np.zeros(1), xs)[0], bias(1, tau, xs), bias(2, np.ones(1), zs)[0]]
        return self._pack_local(w, b)

    # ----------------------------------------------------------------- products

    def at_stages(self, a: Array) -> Array:
        """Block coefficients ``(n_τ, …)`` evaluated at the stage points ``(J, …)``
        (a sparse product: for τ degree 2 a permutation, for τ degree 1 the cells' averages)."""
        return (self._stage_matrix @ a.reshape(a.shape[0], -1)).reshape(-1, *a.shape[1:])

    def from_stages(self, g: Array) -> Array:
        """The transpose of :meth:`at_stages`: stage gradients to the τ coefficients."""
        return (self._stage_matrix.T @ g.reshape(g.shape[0], -1)).reshape(-1, *g.shape[1:])

    def _column_weights(self, j: int, s: float, width: int) -> Array:
        """``s (S R)_{j j(i)}`` for every column of a block force of ``width`` columns."""
        if width not in self._coupling_columns:
            per_stage = width // len(self.stage_points)
            columns = np.repeat(self._stage_coupling[:, self.stage_points], per_stage, axis=1)
            self._coupling_columns[width] = columns
        return s * self._coupling_columns[width][j]

    def _apply(self, theta: Array, part: int, x: Array, shift: DepthShift | None) -> Array:
        """All rows of ``(W + s A Bᵀ) x`` for the input layer or the readout (gathered)."""
        out = self.W(theta, part) @ x
        if shift is not None:
            s, force = shift
            a, b = force.weights[part]
            out += a @ (s * (b.T @ x))
        return self.partitions[part].gather(out)

    def _apply_transposed(
        self, theta: Array, part: int, y: Array, shift: DepthShift | None
    ) -> Array:
        """``(W + s A Bᵀ)ᵀ y`` of the readout for all rows ``y`` (summed over the ranks)."""
        rows = self.partitions[part].take(y)
        out = (rows.T @ self.W(theta, part)).T
        if shift is not None:
            s, force = shift
            a, b = force.weights[part]
            out += b @ (s * (a.T @ rows))
        return sum_over_ranks(self.comm, out)

    def _block_apply(self, Wst: Array, j: int, x: Array, shift: DepthShift | None) -> Array:
        """All rows of the block field at stage point ``j`` applied to ``x``:
        ``W_j x + s Σ_i (S R)_{j j(i)} A_i (B_iᵀ x)`` (gathered)."""
        out = Wst[j] @ x
        if shift is not None:
            s, force = shift
            a, b = force.weights[1]
            out += a @ (self._column_weights(j, s, a.shape[1])[:, None] * (b.T @ x))
        return self.stream_rows.gather(out)

    def _block_apply_transposed(
        self, Wst: Array, j: int, y: Array, shift: DepthShift | None
    ) -> Array:
        """The transpose of :meth:`_block_apply` for all rows ``y`` (summed over the ranks)."""
        rows = self.stream_rows.take(y)
        out = (rows.T @ Wst[j]).T
        if shift is not None:
            s, force = shift
            a, b = force.weights[1]
            out += b @ (self._column_weights(j, s, a.shape[1])[:, None] * (a.T @ rows))
        return sum_over_ranks(self.comm, out)

    def _bias(self, theta: Array, part: int, shift: DepthShift | None) -> Array:
        """``b + s f_b`` of ``part``."""
        if shift is None or not self.network.bias:
            return self.b(theta, part)
        s, force = shift
        return self.b(theta, part) + s * force.biases[part]

    # ----------------------------------------------------------------- forward and adjoint

    def _slope(
        self, Wst: Array, bst: Array, j: int, u: Array, shift: DepthShift | None
    ) -> tuple[Array, Array, Array]:
        """``f(u) = W_j η(u) + b_j``, with the moments ``η(u)`` and ``σ'(T u)``."""
        uq = self.stream.at_quadrature(u)
        eta = self.stream.load(self.network.activation.sigma(uq))
        k = self._block_apply(Wst, j, eta, shift) + bst[j][:, None]
        return k, eta, self.network.activation.dsigma(uq)

    def _stage_state(self, s: Array, ks: list[Array], i: int) -> Array:
        """The state of stage ``i``, ``u_i = s + δ Σ_{j<i} a_ij k_j``."""
        u = s
        for j, a in self._couplings[i]:
            u = u + (self.step * a) * ks[j]
        return u

    def _step_end(self, s: Array, ks: list[Array]) -> Array:
        """``s + δ Σ_i b_i k_i``."""
        return s + self.step * sum(b * k for b, k in zip(self.rule.b, ks, strict=True) if b)

    def forward(
        self, theta: Array, cols: Array | slice, shift: DepthShift | None = None
    ) -> StreamSolution:
        """The depth rule in τ, ``substeps`` steps per cell, for the samples ``cols`` (at ``θ``
        or ``θ + s F``); the stream is replicated on every rank."""
        net, m = self.network, self.rule.stages
        Wst = self.at_stages(self.W(theta, 1))
        bst = self.at_stages(self._bias(theta, 1, shift))
        s = self._apply(theta, 0, self.eta0[:, cols], shift)
        s += self._bias(theta, 0, shift)[:, None]
        path, etas, slopes = [s], [], []
        for n in range(self.steps):
            ks: list[Array] = []
            for i, j in enumerate(self.stage_points[m * n : m * n + m]):
                k, eta, dsigma = self._slope(Wst, bst, j, self._stage_state(s, ks, i), shift)
                ks.append(k)
                etas.append(eta)
                slopes.append(dsigma)
            s = self._step_end(s, ks)
            path.append(s)
        eta_out = self.stream.mass @ s
        z = self._apply(theta, 2, eta_out, shift) + self._bias(theta, 2, shift)[:, None]
        z_q = self.outputs.at_quadrature(z)
        residual = net.sigma(net.depth, z_q) - self.Y_q[:, cols]
        return StreamSolution(np.array(path), etas, slopes, eta_out, z_q, residual)

    def _columns(self, samples: Array | None) -> tuple[Array | slice, int]:
        if samples is None:
            return slice(None), self.samples
        samples = np.asarray(samples)
        return samples, len(samples)

    def value(self, theta: Array, samples: Array | None = None) -> float:
        cols, L = self._columns(samples)
        r = self.forward(theta, cols).residual
        return 0.5 * float(self.outputs.integrate(r * r).sum()) / L

    def _gradient_factors(
        self, theta: Array, samples: Array | None, shift: DepthShift | None = None
    ) -> tuple[float, DepthForce, list[Array]]:
        """``C``, ``∂C/∂θ`` as factors with all rows (the block part at the stage points, its
        bias already mapped to the τ coefficients by ``Sᵀ``), and the adjoint ``λ`` at the
        τ-cell ends followed by ``∂C/∂Z``: the discrete adjoint of the depth rule (module
        docstring)."""
        net, h, m = self.network, self.step, self.rule.stages
        cols, L = self._columns(samples)
        sol = self.forward(theta, cols, shift)
        r = sol.residual
        cost = 0.5 * float(self.outputs.integrate(r * r).sum()) / L
        delta = r * net.dsigma(net.depth, sol.z_out)
        d_out = self.outputs.load(delta) / L
        lam = self.stream.mass @ self._apply_transposed(theta, 2, d_out, shift)
        lams = [lam]
        Wst = self.at_stages(self.W(theta, 1))
        gs: list[Array] = [np.empty(0)] * len(self.stage_points)
        gb = np.zeros((len(self.stage_basis), self.stream.size))

        def pull(i: int, g: Array) -> Array:
            """``J_iᵀ g`` at stage ``i``, keeping ``g`` as the stage's gradient factor."""
            j = self.stage_points[i]
            gs[i] = g
            gb[j] += g.sum(axis=1)
            back = self.stream.at_quadrature(self._block_apply_transposed(Wst, j, g, shift))
            return self.stream.load(sol.slopes[i] * back)

        for n in range(self.steps - 1, -1, -1):
            pulled: list[Array] = [np.empty(0)] * m
            for i in range(m - 1, -1, -1):  # g_i = δ b_i λ' + δ Σ_{j>i} a_ji J_jᵀ g_j
                g = (h * self.rule.b[i]) * lam
                for j, a in self._feedbacks[i]:
                    g = g + (h * a) * pulled[j]
                pulled[i] = pull(m * n + i, g)
            lam = lam + sum(pulled)
            lams.insert(0, lam)
        weights = [
            (lam, self.eta0[:, cols]),
            (np.hstack(gs), np.hstack(sol.etas)),
            (d_out, sol.eta_out),
        ]
        biases = [lam.sum(axis=1), self.from_stages(gb), d_out.sum(axis=1)]
        return cost, DepthForce(weights, biases), [*lams[:: self.substeps], d_out]

    def _local_rows(self, factors: DepthForce) -> DepthForce:
        """This rank's rows of the left factors."""
        weights = [
            (p.take(a), b) for (a, b), p in zip(factors.weights, self.partitions, strict=True)
        ]
        return DepthForce(weights, factors.biases)

    def _riesz_factors(self, factors: DepthForce) -> DepthForce:
        """The L2 representatives of the factored ``∂C/∂θ``: ``M⁻¹`` on both factors of every
        weight part and on every factor of the biases (``M_τ`` on the blocks' τ axis is left to
        the τ map ``R = M_τ⁻¹ Sᵀ``)."""
        x, t = self.stream, self.depth
        row_spaces = (x, x, self.outputs)
        column_spaces = (self.inputs, x, x)
        weights = [
            (p.take(rs.solve_mass(a)), cs.solve_mass(b))
            for (a, b), p, rs, cs in zip(
                factors.weights, self.partitions, row_spaces, column_spaces, strict=True
            )
        ]
        b0, b1, b2 = factors.biases
        biases = [x.solve_mass(b0), _solve_axes(b1, (t, x)), self.outputs.solve_mass(b2)]
        return DepthForce(weights, biases)

    def _add_factored(
        self, theta: Array, weighted: list[tuple[float, DepthForce]], tau_map
    ) -> None:
        """``θ += Σ_f c_f F_f`` in place for factored ``F_f`` with this rank's rows: one GEMM
        for each end layer, one per stage point ``j`` for the blocks,
        ``G_j = Σ_f c_f Σ_{i: j(i) = j} A_{f,i} B_{f,i}ᵀ``, then ``W += R G`` over the τ axis."""
        for part in (0, 2):
            a = np.hstack([c * f.weights[part][0] for c, f in weighted])
            b = np.hstack([f.weights[part][1] for _, f in weighted])
            w = self.W(theta, part)
            if w.size:  # Wᵀ (column-major, no copy) += B Aᵀ
                scipy.linalg.blas.dgemm(1.0, b, a, beta=1.0, c=w.T, trans_b=True, overwrite_c=True)
        blocks = self.W(theta, 1)
        stacked = [self._by_stage_point(c, f.weights[1]) for c, f in weighted]
        A = np.concatenate([a for a, _ in stacked], axis=2)
        B = np.concatenate([b for _, b in stacked], axis=2)
        G = np.matmul(A, B.transpose(0, 2, 1))
        blocks += (tau_map @ G.reshape(len(G), -1)).reshape(blocks.shape)
        if self.network.bias:
            for part in range(3):
                self.b(theta, part)[...] += sum(c * f.biases[part] for c, f in weighted)

    def _by_stage_point(self, c: float, factors: tuple[Array, Array]) -> tuple[Array, Array]:
        """The columns of the (at most ``m``) stages at every stage point, ``(J, rows, m L)`` of
        ``c A`` and ``(J, n_x, m L)`` of ``B`` (points with fewer stages padded with zeros;
        RK4: ``m = 2``, one stage at τ = 0 and 1)."""
        out = []
        groups = self._stage_groups
        for f in (c * factors[0], factors[1]):
            blocks = f.reshape(len(f), len(self.stage_points), -1)
            padded = np.concatenate([blocks, np.zeros_like(blocks[:, :1])], axis=1)
            grouped = padded[:, groups, :]  # (rows, J, m, L)
            out.append(grouped.transpose(1, 0, 2, 3).reshape(len(groups), len(f), -1))
        return out[0], out[1]

    def adjoint(
        self, theta: Array, samples: Array | None = None
    ) -> tuple[float, Array, list[Array]]:
        """``C``, ``∂C/∂θ`` (this rank's rows) and the adjoint ``λ = ∂C/∂`` of the stream's
        coefficients at the τ-cell ends (``cells + 1`` arrays ``(n_x, L)``) followed by
        ``∂C/∂Z`` (the readout's output coefficients)."""
        cost, factors, adjoints = self._gradient_factors(theta, samples)
        grad = np.zeros(self.size)
        self._add_factored(grad, [(1.0, self._local_rows(factors))], self._stage_matrix.T)
        return cost, grad, adjoints

    def adjoint_field(self, theta: Array) -> Array:
        """The adjoint ``p^l(τ_n, ·)`` of every sample at the τ-cell ends, ``(cells + 1, n_x,
        L)`` stream coefficients: ``p^l = L M_x⁻¹ λ^l``, the Riesz representative of the
        discrete adjoint, so that ``δC/δb(τ, x) = (1/L) Σ_l p^l(τ, x)`` (docs/physics.md,
        "Depth as a coordinate")."""
        _, _, adjoints = self._gradient_factors(theta, None)
        return self.samples * np.stack([self.stream.solve_mass(lam) for lam in adjoints[:-1]])

    def coefficient_gradient(
        self, theta: Array, samples: Array | None = None
    ) -> tuple[float, Array]:
        """``C`` and ``∂C/∂θ`` of the discretised forward map (the depth rule's adjoint)."""
        cost, grad, _ = self.adjoint(theta, samples)
        return cost, grad

    def gradient(self, theta: Array, samples: Array | None = None) -> tuple[float, Array]:
        """``C`` and the Riesz representative of ``δC/δθ`` (what the training rules step),
        assembled from its factors."""
        cost, factors, _ = self._gradient_factors(theta, samples)
        grad = np.zeros(self.size)
        self._add_factored(grad, [(1.0, self._riesz_factors(factors))], self._tau_riesz)
        return cost, grad

    def factored_force(
        self, theta: Array, rates: list[tuple[float, float]], shift: DepthShift | None = None
    ) -> DepthForce:
        """The full-batch force ``−η ⊙ δC/δθ`` at ``θ`` (or ``θ + s F``) in factored form, with
        the continuum rates ``(η_w, η_b)`` of the input layer, the blocks and the readout."""
        _, factors, _ = self._gradient_factors(theta, None, shift)
        riesz = self._riesz_factors(factors)
        return DepthForce(
            [(-eta_w * a, b) for (a, b), (eta_w, _) in zip(riesz.weights, rates, strict=True)],
            [-eta_b * g for g, (_, eta_b) in zip(riesz.biases, rates, strict=True)],
        )

    def add_forces(self, theta: Array, weighted: list[tuple[float, DepthForce]]) -> None:
        """``θ += Σ_i c_i F_i`` in place (the update of
        :class:`~continuum.schemes.factored_flow.FactoredFlow`)."""
        self._add_factored(theta, weighted, self._tau_riesz)

    def tangent(self, theta: Array, theta_dot: Array) -> list[Array]:
        """Time derivatives of the stream's coefficients at the τ-cell ends along θ(t) with
        velocity θ̇ (the forward-mode derivative of the depth rule's map, all samples), followed by
        that of the readout's output coefficients ``Ż``."""
        motion = self.stream_motion(theta, theta_dot, slice(None))
        assert motion.zdot is not None  # stream_motion sets the readout's rate
        return [*motion.sdot[:: self.substeps], motion.zdot]

    def stream_motion(self, theta: Array, theta_dot: Array, cols: Array | slice) -> StreamMotion:
        """The stream and its time derivative along θ(t): at the step ends and at every stage,
        by the forward-mode derivative of the depth rule's map, for the samples ``cols``."""
        act, m = self.network.activation, self.rule.stages
        Wst, Wdot = self.at_stages(self.W(theta, 1)), self.at_stages(self.W(theta_dot, 1))
        bst, bdot = self.at_stages(self.b(theta, 1)), self.at_stages(self.b(theta_dot, 1))
        eta0 = self.eta0[:, cols]
        s = self._apply(theta, 0, eta0, None) + self.b(theta, 0)[:, None]
        sd = self._apply(theta_dot, 0, eta0, None) + self.b(theta_dot, 0)[:, None]
        motion = StreamMotion([s], [sd], [], [], [], None)

        def slope(j: int, u: Array, ud: Array) -> tuple[Array, Array]:
            motion.stages.append(u)
            motion.stage_rates.append(ud)
            uq = self.stream.at_quadrature(u)
            eta = self.stream.load(act.sigma(uq))
            eta_dot = self.stream.load(act.dsigma(uq) * self.stream.at_quadrature(ud))
            k = self._block_apply(Wst, j, eta, None) + bst[j][:, None]
            rate = self.stream_rows.gather(Wdot[j] @ eta + Wst[j] @ eta_dot) + bdot[j][:, None]
            motion.slope_rates.append(rate)
            return k, rate

        for n in range(self.steps):
            ks: list[Array] = []
            qs: list[Array] = []
            for i, j in enumerate(self.stage_points[m * n : m * n + m]):
                k, q = slope(j, self._stage_state(s, ks, i), self._stage_state(sd, qs, i))
                ks.append(k)
                qs.append(q)
            s, sd = self._step_end(s, ks), self._step_end(sd, qs)
            motion.s.append(s)
            motion.sdot.append(sd)
        M = self.stream.mass
        zdot = self.W(theta_dot, 2) @ (M @ s) + self.W(theta, 2) @ (M @ sd)
        motion.zdot = self.output_rows.gather(zdot) + self.b(theta_dot, 2)[:, None]
        return motion

    def riesz(self, grad: Array) -> Array:
        """The L2 representatives: ``M_x⁻¹ G M_in⁻¹``, ``(M_τ ⊗ M_x ⊗ M_x)⁻¹ G`` and
        ``M_out⁻¹ G M_x⁻¹`` for the weights; ``M⁻¹`` on every factor of the biases (the weights
        gathered: a collective call)."""
        x, t = self.stream, self.depth
        full = [
            x.solve_mass(self.inputs.solve_mass(self.full_W(grad, 0).T).T),
            _solve_axes(self.full_W(grad, 1), (t, x, x)),
            self.outputs.solve_mass(x.solve_mass(self.full_W(grad, 2).T).T),
        ]
        biases = [x.solve_mass(self.b(grad, 0)), _solve_axes(self.b(grad, 1), (t, x))]
        biases.append(self.outputs.solve_mass(self.b(grad, 2)))
        return self.pack(full, biases)

    # ----------------------------------------------------------------- evaluation

    def lattice_values(
        self, theta: Array, evaluators: list[Evaluation], tau: Array
    ) -> tuple[list[Array], list[Array]]:
        """Input layer, the blocks at the depths ``tau`` and the readout at the lattice:
        ``evaluators = (E_in, E_x, E_out)`` point-evaluation matrices (a collective call)."""
        E_in, E_x, E_out = evaluators
        rows, out_rows = self.stream_rows.rows, self.output_rows.rows
        E_tau = np.asarray(self.depth.evaluation_matrix(np.asarray(tau)[:, None]).todense())
        blocks = np.einsum("kj,jab->kab", E_tau, self.W(theta, 1))
        bias_blocks = E_tau @ self.b(theta, 1)
        local = [E_x[:, rows] @ (E_in @ self.W(theta, 0).T).T]
        local += [E_x[:, rows] @ (E_x @ blocks[k].T).T for k in range(len(tau))]
        local.append(E_out[:, out_rows] @ (E_x @ self.W(theta, 2).T).T)
        w = [sum_over_ranks(self.comm, np.asarray(a)) for a in local]
        b = [E_x @ self.b(theta, 0)]
        b += [E_x @ bias_blocks[k] for k in range(len(tau))]
        b.append(E_out @ self.b(theta, 2))
        return w, [np.asarray(a) for a in b]


DepthScheme = Callable[[DepthFields, DiscreteSetup, list[tuple[float, float]]], Rule]
"""``(fields, setup, rates) -> Rule``: a time scheme of the depth continuum, with the continuum
rates ``(η_w, η_b)`` of the input layer, the blocks and the readout."""


def matched_depth_rule(
    fields: DepthFields, setup: DiscreteSetup, rates: list[tuple[float, float]]
) -> Rule:
    """``scheme = "matched"``: the training rule's own scheme and step; the RK4 flow keeps its
    forces factored where that is cheaper (:meth:`DepthFields.factored_pays`)."""
    tr = setup.config.training
    if tr.rule == "flow" and fields.factored_pays():
        return FactoredFlow(fields, rates, tr.dt)
    return make_rule(
        tr.rule,
        fields,
        fields.per_group(rates),
        tr.dt,
        gamma=tr.gamma,
        schedule=setup.schedule,
        scheme=tr.momentum_scheme,
        form=tr.momentum_form,
    )


def _solve_axes(a: Array, spaces: tuple[FactorSpace, ...]) -> Array:
    """Apply ``M⁻¹`` of ``spaces[k]`` along axis ``k`` of ``a``."""
    for axis, space in enumerate(spaces):
        moved = np.moveaxis(a, axis, 0)
        shape = moved.shape
        a = np.moveaxis(space.solve_mass(moved.reshape(shape[0], -1)).reshape(shape), 0, axis)
    return a


class ResidualModel(CoefficientModel[DepthFields, Array]):
    """The depth continuum beside a discrete residual network: same rule, dt and schedule.

    Output series: the coefficients of ``/continuum/layer0`` (input layer), ``/continuum/blocks``
    (``(n_τ, n_x, n_x)`` and ``(n_τ, n_x)``) and ``/continuum/layer{M+1}`` (readout), their
    velocities under second-order rules, and ``/continuum/stream/s``: the stream ``s(t, τ, x)``
    of every sample on the grid of the τ-cell ends and the stream space's nodes
    (``(L, depth_cells + 1, n_x)``), written for ParaView by :mod:`continuum.io.stream_output`
    (paths: :mod:`continuum.io.layout`).
    """

    spaces: tuple[FactorSpace, FactorSpace, FactorSpace]

    def __init__(
        self,
        setup: DiscreteSetup,
        comm: MPI.Comm,
        time_scheme: DepthScheme | None = None,
    ):
        """``time_scheme(fields, setup, rates)``: the rule stepping the coefficients, by
        default :func:`matched_depth_rule` (``[continuum] scheme = "matched"``)."""
        cfg, conv = setup.config, setup.convention
        net = setup.network
        assert isinstance(net, ResidualNetwork)  # the registry's model of residual networks
        self.setup = setup
        self.network = net
        c = cfg.continuum
        outer = [conv.layers[0], conv.layers[1], conv.layers[-1]]
        inputs, stream, outputs = coordinate_spaces(outer, c.cells, c.degree, c.quadrature)
        # the registry's residual networks have line layers of several neurons: mesh factors
        assert isinstance(inputs, FactorSpace) and isinstance(stream, FactorSpace)
        assert isinstance(outputs, FactorSpace)
        self.depth_space = FactorSpace(
            interval(MPI.COMM_SELF, c.depth_cells or c.cells), c.depth_degree or c.degree
        )
        fields = functools.partial(
            DepthFields,
            net,
            depth_space=self.depth_space,
            inputs=data_function(cfg.data.input, conv.layers[0], "y"),
            targets=data_function(cfg.data.target, conv.layers[-1], "x"),
            samples=setup.data.samples,
            comm=comm,
            substeps=c.depth_steps or 1,
            rule=depth_rule(c.depth_rule or "rk4"),
        )

        def build(quadrature_degree: int | None) -> DepthFields:
            """The fields with Gauss rules of ``quadrature_degree`` in x (``None``: the
            spaces' own)."""
            if quadrature_degree is None:
                return fields((inputs, stream, outputs))
            x_in, x, x_out = (
                cast(FactorSpace, space)
                for space in with_quadrature([inputs, stream, outputs], quadrature_degree)
            )
            return fields((x_in, x, x_out))

        # the Gauss rule in x checked as the Galerkin fields' (continuum/fem/quadrature.py);
        # the nodal rule is fixed by the nodes
        self.galerkin = (
            build(None)
            if c.quadrature == "nodal"
            else converged_quadrature(
                build,
                lambda f: f.interpolate(*self._initial_fields()),
                c.degree,
                net.activation.smooth,
                (
                    *fields_fingerprint(setup, comm),
                    (c.depth_cells, c.depth_degree, c.depth_steps, c.depth_rule),
                ),
                c.quadrature_tolerance,
            )
        )
        self.spaces = self.galerkin.spaces
        rates = setup.dictionary.continuum_rates()
        self.rates = rates[0], rates[1], rates[-1]
        self.rule = (time_scheme or matched_depth_rule)(self.galerkin, setup, list(self.rates))
        self.state = self.rule.initial(self.galerkin.interpolate(*self._initial_fields()))
        self.reference = reference_size(self.state.theta)  # of the growth check

    def coefficient_parts(self) -> list[CoefficientPart]:
        """The input layer ``layer0``, the ``blocks`` and the readout ``layer{M+1}``."""
        names = ("layer0", "blocks", f"layer{self.network.depth - 1}")
        return [
            CoefficientPart.named(name, w_shape, b_shape)
            for name, (w_shape, b_shape) in zip(names, self.galerkin.shapes, strict=True)
        ]

    def _initial_fields(self) -> tuple[InitialWeight, InitialBias]:
        """``[init]`` formulas as functions of the depth nodes and the FE nodes."""
        init, net = self.setup.config.init, self.network
        parts = (0, 1, net.depth - 1)  # weight layers standing for input, blocks, readout

        def w(part: int, tau: Array, xs: Array, ys: Array) -> Array:
            expr, _ = layer_formula(init.weight, net, parts[part])
            values = expr(tau=tau[:, None, None], x=xs[None, :, 0, None], y=ys[None, None, :, 0])
            return np.broadcast_to(values, (len(tau), len(xs), len(ys)))

        def b(part: int, tau: Array, xs: Array) -> Array:
            expr, _ = layer_formula(init.bias, net, parts[part])
            values = expr(tau=tau[:, None], x=xs[None, :, 0])
            return np.broadcast_to(values, (len(tau), len(xs)))

        return w, b

    def _lattice(self, convention: Convention) -> tuple[list[Evaluation], Array]:
        """The evaluation matrices of the input, stream and output spaces at the lattice, and
        the blocks' depths ``τ_k = (k + ½)/M``."""
        layers = convention.layers
        evaluators: list[Evaluation] = [
            s.evaluation_matrix(c.points)
            for s, c in zip(self.spaces, (layers[0], layers[1], layers[-1]), strict=True)
        ]
        blocks = len(layers) - 3
        return evaluators, (np.arange(blocks) + 0.5) / blocks

    def _lattice_values(
        self, evaluators: list[Evaluation], tau: Array
    ) -> tuple[list[Array], list[Array]]:
        return self.galerkin.lattice_values(self.state.theta, evaluators, tau)

    @functools.cached_property
    def _stream_order(self) -> Array:
        """The stream space's DOFs sorted by coordinate: Lagrange coefficients are the values
        of ``s`` at the nodes (Gauss–Lobatto–Legendre points of every cell: uniform, step
        ``1/(degree · cells)``, up to degree 2)."""
        return np.argsort(self.spaces[1].dof_coordinates[:, 0], kind="stable")

    def stream(self) -> Array:
        """``s(t, τ_n, x_a)`` of every sample on the grid of the τ-cell ends and the stream
        space's nodes: ``(L, depth_cells + 1, n_x)``."""
        s = self.galerkin.forward(self.state.theta, slice(None)).s[:: self.galerkin.substeps]
        return np.transpose(s[:, self._stream_order, :], (2, 0, 1))

    def adjoint_stream(self) -> Array:
        """The adjoint ``p(t, τ_n, x_a)`` of every sample on the grid of :meth:`stream`."""
        p = self.galerkin.adjoint_field(self.state.theta)
        return np.transpose(p[:, self._stream_order, :], (2, 0, 1))

    def series(self) -> dict[str, tuple[int, ...]]:
        """The coefficients' series and the stream ``s`` and its adjoint ``p``."""
        grid = (self.setup.data.samples, self.galerkin.cells + 1, self.spaces[1].size)
        return {**super().series(), layout.STREAM_S: grid, layout.STREAM_P: grid}

    def rows(self) -> dict[str, Array]:
        out = super().rows()
        out[layout.STREAM_S] = self.stream()
        out[layout.STREAM_P] = self.adjoint_stream()
        return out

    def static(self) -> dict[str, Array]:
        """The factor spaces, the depth space and the stream's grid."""
        out = super().static()
        out.update(self.depth_space.static(layout.DEPTH_SPACE))
        out[layout.STREAM_TAU] = np.arange(self.galerkin.cells + 1) * self.galerkin.h
        out[layout.STREAM_X] = self.spaces[1].dof_coordinates[self._stream_order, 0]
        return out


CHECKED_MODEL: type[ContinuumModel] = ResidualModel
"""The depth continuum as a :class:`~continuum.models.model.ContinuumModel`: mypy checks the
class against the protocol here."""
