"""The one-layer linear perceptron as a field theory, solved with tensor-product finite elements.

Physics (docs/physics.md "Continuum", one layer, identity output). A weight field ``w(x, y)`` on
``Ω_1 × Ω_0`` and a bias field ``b(x)`` on ``Ω_1`` (both ``[0, 1]``) map ``L`` inputs ``X^l(y)`` to

    z^l(x) = ∫ w(x, y) X^l(y) dy + b(x),      C = (1/L) Σ_l ½ ∫ (z^l(x) − Y^l(x))² dx,

and train by the gradient flow, with residuals ``r^l = z^l − Y^l``,

    ∂_t w = −(η/L) Σ_l r^l(x) X^l(y),          ∂_t b = −(η/L) Σ_l r^l(x)

(the bias may be frozen at ``b_0``). The flow is linear; its kernel
``A(y, y') = (1/L) Σ_l X^l(y) X^l(y')`` has rank ``≤ L`` and is never stored densely.

Discretisation. ``w_h(x, y) = Σ_ab W_ab φ_a(x) ψ_b(y)``, ``b_h = Σ_a β_a φ_a(x)`` with Lagrange
bases ``φ`` of ``V_x`` (degree ``p``, on a mesh of ``Ω_1``) and ``ψ`` of ``V_y`` (on a mesh of
``Ω_0``). With the mass matrices ``M_x, M_y``, the load vectors ``ξ_l = (∫ X^l ψ_b dy)_b``
(columns of ``Ξ``) and ``υ_l = (∫ Y^l φ_a dx)_a`` (columns of ``Υ``), ``z^l_h = φᵀ(W ξ_l + β)``
and the Galerkin equations (test functions ``φ_a ψ_b`` and ``φ_a``), multiplied by ``M_x⁻¹``,
read

    Ẇ M_y = −(η/L) [W Ξ Ξᵀ + β (Ξ1)ᵀ − P Ξᵀ],      β̇ = −(η/L) [W Ξ 1 + L β − P 1],

with ``P = M_x⁻¹ Υ`` (the L2 projections of the targets). Every x-row decouples. Gathering row
``a`` as ``u_a = (W_a·, β_a)`` and the factor as ``Ξ̃ = [Ξ; 1ᵀ]`` (``(n_y+1) × L``), each row obeys

    M̃ u̇_a + K̃ u_a = f_a,   M̃ = diag(M_y, 1),   K̃ = Ξ̃ diag(η/L) Ξ̃ᵀ,   f_a = Ξ̃ diag(η/L) p_a,

i.e. ``M̃ u̇_a = −Ξ̃ diag(η/L)(Ξ̃ᵀ u_a − p_a)`` where ``Ξ̃ᵀ u_a − p_a`` are the residuals at node
``a``. Without a trained bias, ``u_a = W_a·``, ``Ξ̃ = Ξ`` and ``p_a = P_a· − β_{0,a}``. The
implicit operators ``α M̃ + β K̃`` are applied in factored form (:mod:`continuum.fem.lowrank`),
solved by CG preconditioned with the factorised sparse ``α M̃`` (at most ``L + 1`` iterations); the
time schemes are those of :mod:`continuum.schemes.timestepping`.

Parallel layout: the output factor (x rows, mesh on ``comm``) is distributed, each rank holding
its owned rows plus ghosts in a DOLFINx vector of block size ``n_y (+1)``; the input factor (the
y mesh, the mass ``M̃`` and ``Ξ̃``) lives on ``MPI.COMM_SELF`` on every rank.

Accuracy: ``w_0``, ``b_0`` are interpolated; loads are Gauss–Legendre quadratures with
``p + 6`` points per cell (exact to rounding for smooth data), so the error is ``O(h^{p+1})`` in
L2. :func:`exact_solution` is the closed form of the continuum flow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mpi4py import MPI  # first: it loads the MPI library that DOLFINx links against

# isort: split
import numpy as np
import scipy.linalg
import scipy.sparse
from dolfinx import fem, la
from petsc4py import PETSc

import meshes
from continuum.fem.lowrank import LowRankKernel
from continuum.fem.petsc import checked_solve
from continuum.fem.quadrature import QUADRATURE_TOLERANCE, settled_rule, unsettled
from continuum.fem.spaces import lagrange_element, local_dofs, mass_matrix, point_evaluation
from continuum.schemes.timestepping import (
    RowStepper,
    check_field,
    global_size,
)

LOAD_POINTS_EXTRA = 6
"""Gauss points per cell beyond the degree ``p`` where the check of the load rule starts
(``p + 6``, :func:`checked_loads`)."""

ERROR_POINTS_EXTRA = 4
"""Gauss points per cell beyond ``p`` for L2 errors (the cost uses the load rule)."""


@dataclass
class PerceptronProblem:
    """Data, initial fields and learning rate of a one-layer linear perceptron field theory.

    ``inputs(y, l)`` is ``X^l(y)``, ``targets(x, l)`` is ``Y^l(x)`` (``l = 0 … samples − 1``),
    ``w0(x, y)`` and ``b0(x)`` the initial fields; all evaluate numpy arrays with broadcasting.
    """

    inputs: Callable[[np.ndarray, int], np.ndarray]
    targets: Callable[[np.ndarray, int], np.ndarray]
    samples: int
    w0: Callable[[np.ndarray, np.ndarray], np.ndarray]
    b0: Callable[[np.ndarray], np.ndarray]
    lr: float = 1.0
    bias: bool = True


def sample_values(
    function: Callable[[np.ndarray, int], np.ndarray], points: np.ndarray, samples: int
) -> np.ndarray:
    """``f(points, l)`` for every sample ``l``, stacked along a last axis of length ``samples``."""
    return np.stack(
        [np.broadcast_to(function(points, l), points.shape) for l in range(samples)], axis=-1
    )


@dataclass(frozen=True)
class CellQuadrature:
    """Gauss–Legendre quadrature on this rank's owned cells of a 1-D mesh, with the basis there.

    ``∫ f dx ≈ Σ_q weights[q] f(points[q])`` and ``basis[q, j] = φ_j(points[q])`` (sparse,
    columns in the space's local dof numbering, ghosts included).
    """

    points: np.ndarray
    weights: np.ndarray
    basis: scipy.sparse.csr_matrix

    @classmethod
    def on(cls, space: fem.FunctionSpace, points_per_cell: int) -> CellQuadrature:
        """The rule with ``points_per_cell`` Gauss points on every owned (affine) cell."""
        msh = space.mesh
        if msh.geometry.cmaps[0].degree != 1:
            raise ValueError("cell quadrature needs an affine (degree-1) geometry")
        cells = msh.topology.index_map(msh.topology.dim).size_local
        nodes = msh.geometry.dofmaps[0][:cells]
        start, end = msh.geometry.x[nodes[:, 0], 0], msh.geometry.x[nodes[:, 1], 0]
        reference, reference_weights = np.polynomial.legendre.leggauss(points_per_cell)
        reference, reference_weights = (reference + 1) / 2, reference_weights / 2
        table = np.asarray(space.element.basix_element.tabulate(0, reference[:, None]))[0, :, :, 0]
        dofs = space.dofmap.list[:cells]
        rows = np.arange(cells * points_per_cell).reshape(cells, points_per_cell)
        shape = (cells, points_per_cell, dofs.shape[1])
        basis = scipy.sparse.csr_matrix(
            (
                np.broadcast_to(table[None], shape).ravel(),
                (
                    np.broadcast_to(rows[:, :, None], shape).ravel(),
                    np.broadcast_to(dofs[:, None, :], shape).ravel(),
                ),
            ),
            shape=(cells * points_per_cell, local_dofs(space)),
        )
        points = start[:, None] + (end - start)[:, None] * reference[None, :]
        weights = np.abs(end - start)[:, None] * reference_weights[None, :]
        return cls(points.ravel(), weights.ravel(), basis)

    def loads(self, values: np.ndarray) -> np.ndarray:
        """Load vectors ``∫ f_l φ_j dx`` (local dofs × samples) of values ``f_l(points)``."""
        return self.basis.T @ (self.weights[:, None] * values)


def checked_loads(
    space: fem.FunctionSpace,
    function: Callable[[np.ndarray, int], np.ndarray],
    samples: int,
    tolerance: float,
) -> tuple[CellQuadrature, np.ndarray]:
    """The data loads ``∫ f_l φ_j`` with the fewest Gauss points per cell, from ``p + 6``, that
    agree with one point more to ``tolerance`` relative (max norm over the ranks of the
    space's mesh), and that rule; the check of the Galerkin fields' rule
    (:mod:`continuum.fem.quadrature`) for data that enter through their moments only.

    Raises:
        ValueError: the loads do not settle within ``QUADRATURE_RAISES`` + 1 more points (data
            that are not smooth, or not integrable, on the cells).
    """
    degree = space.element.basix_element.degree

    def evaluate(points: int) -> tuple[tuple[CellQuadrature, np.ndarray], np.ndarray]:
        rule = CellQuadrature.on(space, points)
        loads = rule.loads(sample_values(function, rule.points, samples))
        return (rule, loads), loads

    first = degree + LOAD_POINTS_EXTRA
    points, checked = settled_rule(evaluate, first, 1, space.mesh.comm, tolerance)
    if checked is None:
        raise ValueError(unsettled(degree, "data moments", 2 * points - 1, tolerance))
    return checked


def with_bias_row(mass: PETSc.Mat) -> PETSc.Mat:
    """``M̃ = diag(M_y, 1)``: the metric of one x-row's coefficients ``(W_a·, β_a)``."""
    indptr, indices, values = mass.getValuesCSR()
    size = mass.getSize()[0]
    augmented = PETSc.Mat().createAIJ(
        [size + 1, size + 1],  # type: ignore[arg-type]
        csr=(  # type: ignore[arg-type]
            np.append(indptr, indptr[-1] + 1),
            np.append(indices, size).astype(indices.dtype),
            np.append(values, 1.0),
        ),
        comm=MPI.COMM_SELF,  # type: ignore[arg-type]
    )
    augmented.assemble()
    return augmented


def project(space: fem.FunctionSpace, loads: np.ndarray) -> np.ndarray:
    """L2 projections ``M⁻¹ υ_l`` of load vectors (local dofs × samples), owned rows returned.

    Ghost contributions of the loads are summed into their owners first; the mass systems are
    solved by CG with Jacobi preconditioning, and a diverged solve raises :class:`RuntimeError`.
    """
    ksp = PETSc.KSP().create(space.mesh.comm)
    ksp.setOperators(mass_matrix(space))
    ksp.setType("cg")
    ksp.getPC().setType("jacobi")
    ksp.setTolerances(rtol=1e-14, atol=1e-50, max_it=1000)
    load, projection = fem.Function(space), fem.Function(space)
    owned = space.dofmap.index_map.size_local
    projections = np.empty((owned, loads.shape[1]))
    for l in range(loads.shape[1]):
        load.x.array[:] = loads[:, l]
        load.x.scatter_reverse(la.InsertMode.add)
        checked_solve(ksp, load.x.petsc_vec, projection.x.petsc_vec, f"L2 projection of target {l}")
        projections[:, l] = projection.x.array[:owned]
    return projections


@dataclass
class RowFlow:
    """The shared y-system of every x-row: ``M̃ u̇_a = −Ξ̃ diag(η/L)(Ξ̃ᵀ u_a − p_a)``.

    A :class:`continuum.schemes.timestepping.LowRankFlow` with ``M = M̃``,
    ``K = Ξ̃ diag(η/L) Ξ̃ᵀ`` (kept factored) and sources ``f_a = Ξ̃ diag(η/L) p_a``; ``targets``
    holds the rows ``p_a``.
    """

    mass: PETSc.Mat
    kernel: LowRankKernel
    targets: np.ndarray

    def combination(self, alpha: float, beta: float) -> tuple[PETSc.Mat, PETSc.Mat]:
        """``α M̃ + β K̃`` applied in factored form (sparse when ``β = 0``), and its sparse part."""
        return self.kernel.shifted(self.mass, alpha, beta)

    def factor(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``Ξ̃`` (dense copy), the weights ``η/L`` and the rows ``p_a``."""
        return self.kernel.factor.getDenseArray().copy(), self.kernel.weights, self.targets


class PerceptronSolver:
    """Gradient flow of the one-layer linear perceptron field theory in ``V_x ⊗ V_y``.

    ``cells`` cells of degree ``degree`` on ``Ω_1`` (and ``input_cells``, default ``cells``, on
    ``Ω_0``); ``integrator`` is ``"theta"`` (with ``theta``) or ``"bdf2"``, step ``dt``. Implicit
    solves take PETSc options with the prefix ``perceptron_``.
    """

    def __init__(
        self,
        problem: PerceptronProblem,
        comm: MPI.Comm,
        cells: int,
        degree: int,
        integrator: str = "theta",
        theta: float = 0.5,
        dt: float = 0.01,
        *,
        input_cells: int | None = None,
        quadrature_tolerance: float = QUADRATURE_TOLERANCE,
    ) -> None:
        self.problem, self.dt = problem, dt
        samples = problem.samples
        x_mesh = meshes.interval(comm, cells)
        y_mesh = meshes.interval(MPI.COMM_SELF, input_cells or cells)
        self.output_space = fem.functionspace(x_mesh, lagrange_element(x_mesh, degree))
        self.input_space = fem.functionspace(y_mesh, lagrange_element(y_mesh, degree))
        self.n_y = local_dofs(self.input_space)
        self._width = self.n_y + 1 if problem.bias else self.n_y
        self._quadrature_y, loads = checked_loads(
            self.input_space, problem.inputs, samples, quadrature_tolerance
        )
        self._quadrature_x, target_loads = checked_loads(
            self.output_space, problem.targets, samples, quadrature_tolerance
        )
        mass = mass_matrix(self.input_space)
        if problem.bias:
            loads, mass = np.vstack([loads, np.ones((1, samples))]), with_bias_row(mass)
        kernel = LowRankKernel.from_columns(loads, np.full(samples, problem.lr / samples))

        x_dofs = self.output_space.tabulate_dof_coordinates()[:, 0]
        y_dofs = self.input_space.tabulate_dof_coordinates()[:, 0]
        self._initial_bias = np.broadcast_to(problem.b0(x_dofs), x_dofs.shape).copy()
        owned = self.output_space.dofmap.index_map.size_local
        targets = project(self.output_space, target_loads)
        if not problem.bias:
            targets -= self._initial_bias[:owned, None]
        self.flow = RowFlow(mass, kernel, targets)

        self._state = la.vector(self.output_space.dofmap.index_map, bs=self._width)
        rows = self._state.array.reshape(-1, self._width)
        rows[:, : self.n_y] = np.broadcast_to(
            problem.w0(x_dofs[:, None], y_dofs[None, :]), (len(x_dofs), self.n_y)
        )
        if problem.bias:
            rows[:, self.n_y] = self._initial_bias
        self.stepper = RowStepper(self.flow, dt, integrator, theta, prefix="perceptron_")
        self._reference = max(global_size(comm, self._state.array), 1.0)

    @property
    def _owned_rows(self) -> np.ndarray:
        """A view of this rank's owned rows ``[W | β]`` (the rows the stepper advances)."""
        owned = self.output_space.dofmap.index_map.size_local
        return self._state.array.reshape(-1, self._width)[:owned]

    @property
    def t(self) -> float:
        """The current time ``n Δt``."""
        return self.stepper.steps * self.dt

    def advance(self, steps: int) -> None:
        """Take ``steps`` time steps.

        A diverged implicit solve raises :class:`RuntimeError` naming the scheme, the step, the
        row and the PETSc converged reason; the state is then partly advanced.  A state that
        is not finite or has grown beyond ``GROWTH`` times its initial size raises
        :class:`~discrete.errors.DivergenceError` (a collective check).
        """
        rows = self._owned_rows
        for _ in range(steps):
            self.stepper.step(rows, self.t)
        where = self.output_space.mesh.comm
        check_field("continuum solve", where, rows, self._reference, self.stepper.steps, self.t)

    @property
    def W(self) -> np.ndarray:
        """A copy of the coefficient matrix ``W`` (owned x rows × ``n_y``)."""
        return self._owned_rows[:, : self.n_y].copy()

    @property
    def b(self) -> np.ndarray:
        """A copy of the bias coefficients ``β`` (owned x dofs)."""
        owned = self.output_space.dofmap.index_map.size_local
        return self._local_fields()[1][:owned].copy()

    def state(self) -> dict[str, np.ndarray]:
        """The state as owned values by name: ``W`` and ``β`` (the :class:`MeshSolver`
        contract of :mod:`continuum.models.model`), and for BDF2 its rows ``[W | β]`` one step
        back (``previous_rows``; the rows themselves before the first step, which does not
        read them), without which a resumed run would restart BDF2 with a Crank–Nicolson
        step and leave the uninterrupted run's trajectory (by 3.8e-7 on
        ``examples/perceptron.toml`` with ``scheme = "bdf2"``)."""
        state = {"coefficients": self.W, "bias_coefficients": self.b}
        if self.stepper.integrator == "bdf2":
            previous = self.stepper.previous
            state["previous_rows"] = (self._owned_rows if previous is None else previous).copy()
        return state

    def load_state(self, state: dict[str, np.ndarray], steps: int) -> None:
        """Continue from owned values returned by :meth:`state`, after ``steps`` steps (``β``
        is kept fixed without a trained bias)."""
        owned = self.output_space.dofmap.index_map.size_local
        rows = self._state.array.reshape(-1, self._width)
        rows[:owned, : self.n_y] = state["coefficients"]
        if self.problem.bias:
            rows[:owned, self.n_y] = state["bias_coefficients"]
        self._state.scatter_forward()
        self.stepper.steps = steps
        if self.stepper.integrator == "bdf2":
            self.stepper.previous = state["previous_rows"] if steps > 0 else None

    def _local_fields(self) -> tuple[np.ndarray, np.ndarray]:
        """Views of ``W`` and ``β`` on this rank's dofs, ghosts updated."""
        self._state.scatter_forward()
        rows = self._state.array.reshape(-1, self._width)
        bias = rows[:, self.n_y] if self.problem.bias else self._initial_bias
        return rows[:, : self.n_y], bias

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``w_h(x_i, y_j) = (E_x W E_yᵀ)_ij`` (shape ``(N1, N0)``) and ``b_h(x_i) = (E_x β)_i``.

        ``E_x``, ``E_y`` are sparse point-evaluation matrices (:func:`point_evaluation`); a point
        found on several ranks is averaged over them.
        """
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        weights, bias = self._local_fields()
        at_x, found_x = point_evaluation(self.output_space, x)
        at_y, found_y = point_evaluation(self.input_space, y)
        if not found_y.all():
            raise ValueError(f"input points outside Ω_0: {y[~found_y]}")
        values = (at_y @ (at_x @ weights).T).T
        bias_values = at_x @ bias
        hits = found_x.astype(float)
        comm = self.output_space.mesh.comm
        for array in (values, bias_values, hits):
            comm.Allreduce(MPI.IN_PLACE, array, op=MPI.SUM)
        if not hits.all():
            raise ValueError(f"output points outside Ω_1: {x[hits == 0]}")
        return values / hits[:, None], bias_values / hits

    def cost(self) -> float:
        """``C = (1/L) Σ_l ½ ∫ (z^l_h − Y^l)² dx`` with ``z^l_h = φᵀ(W ξ_l + β)``, by quadrature."""
        weights, bias = self._local_fields()
        quadrature = self._quadrature_x
        loads = self.flow.kernel.factor.getDenseArray()[: self.n_y]
        outputs = quadrature.basis @ (weights @ loads + bias[:, None])
        targets = sample_values(self.problem.targets, quadrature.points, self.problem.samples)
        local = 0.5 * np.sum(quadrature.weights[:, None] * (outputs - targets) ** 2)
        return self.output_space.mesh.comm.allreduce(local) / self.problem.samples

    def l2_error(
        self,
        w_exact: Callable[[np.ndarray, np.ndarray], np.ndarray],
        b_exact: Callable[[np.ndarray], np.ndarray] | None = None,
        *,
        relative: bool = False,
    ) -> float:
        """``(‖w_h − w‖² + ‖b_h − b‖²)^½`` in L2(Ω_1×Ω_0) and L2(Ω_1), by Gauss quadrature.

        The bias part is included when ``b_exact`` is given; ``relative`` divides by the same
        norm of the exact fields.
        """
        points = self.output_space.element.basix_element.degree + ERROR_POINTS_EXTRA
        on_x = CellQuadrature.on(self.output_space, points)
        on_y = CellQuadrature.on(self.input_space, points)
        weights, bias = self._local_fields()
        field_h = (on_y.basis @ (on_x.basis @ weights).T).T
        field = np.broadcast_to(w_exact(on_x.points[:, None], on_y.points[None, :]), field_h.shape)
        area = on_x.weights[:, None] * on_y.weights[None, :]
        sums = np.array([np.sum(area * (field_h - field) ** 2), np.sum(area * field**2)])
        if b_exact is not None:
            bias_exact = np.broadcast_to(b_exact(on_x.points), on_x.points.shape)
            sums += [
                np.sum(on_x.weights * (on_x.basis @ bias - bias_exact) ** 2),
                np.sum(on_x.weights * bias_exact**2),
            ]
        self.output_space.mesh.comm.Allreduce(MPI.IN_PLACE, sums, op=MPI.SUM)
        return float(np.sqrt(sums[0] / sums[1] if relative else sums[0]))


def kernel_quadrature_matrix(
    solver: PerceptronSolver, points_per_cell: int | None = None
) -> np.ndarray:
    """The dense ``∫∫ A(y, y') ψ_b(y) ψ_b'(y') dy dy'`` by direct quadrature (for tests only).

    All pairs of cells and their Gauss points (``p + 8`` per cell unless given), with
    ``A(y, y') = (1/L) Σ_l X^l(y) X^l(y')`` evaluated pointwise: ``Eᵀ diag(ω) A diag(ω) E``.
    """
    space, problem = solver.input_space, solver.problem
    degree = space.element.basix_element.degree
    quadrature = CellQuadrature.on(space, points_per_cell or degree + LOAD_POINTS_EXTRA + 2)
    inputs = sample_values(problem.inputs, quadrature.points, problem.samples)
    kernel = np.einsum("ql,rl->qr", inputs, inputs) / problem.samples
    weighted = quadrature.weights[:, None] * kernel * quadrature.weights[None, :]
    basis = quadrature.basis.toarray()
    return basis.T @ weighted @ basis


def exact_solution(
    problem: PerceptronProblem, t: float, points: int = 24, panels: int = 16
) -> tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """The closed-form continuum fields ``(w(·, ·, t), b(·, t))``.

    The residual row ``r = (r^l)_l`` obeys ``ṙ = −r K`` with ``K = (η/L)(G + 11ᵀ)`` (``G`` the
    Gram matrix ``∫ X^l X^l' dy``; no ``11ᵀ`` for a frozen bias), so ``r(t) = r(0) e^{−Kt}`` and

        w(t) = w_0 + Σ_l α_l(x, t) X^l(y),   b(t) = b_0 + Σ_l α_l(x, t)  (trained bias),
        α(t) = −(η/L) ∫_0^t r(s) ds = −(η/L) r(0) S(t),   S(t) = ∫_0^t e^{−Ks} ds,

    with ``S(t)`` the upper-right block of ``exp(t [[−K, I], [0, 0]])`` (valid for singular
    ``K``) and ``r^l(0) = ∫ w_0 X^l dy + b_0 − Y^l``. The ``y`` integrals use composite
    Gauss–Legendre quadrature (``panels × points`` nodes).
    """
    samples, rate = problem.samples, problem.lr / problem.samples
    nodes, node_weights = np.polynomial.legendre.leggauss(points)
    edges = np.linspace(0.0, 1.0, panels + 1)
    y_q = (edges[:-1, None] + (nodes[None, :] + 1) / 2 / panels).ravel()
    w_q = np.tile(node_weights / 2 / panels, panels)
    inputs_q = sample_values(problem.inputs, y_q, samples)
    gram = inputs_q.T @ (w_q[:, None] * inputs_q)
    decay = rate * (gram + (1.0 if problem.bias else 0.0))
    block = np.zeros((2 * samples, 2 * samples))
    block[:samples, :samples], block[:samples, samples:] = -decay, np.eye(samples)
    integral = scipy.linalg.expm(t * block)[:samples, samples:]

    def amplitudes(x: np.ndarray) -> np.ndarray:
        """``α_l(x, t)``, stacked along a last axis."""
        x = np.asarray(x, dtype=float)
        outputs = np.einsum("...q,ql->...l", problem.w0(x[..., None], y_q) * w_q, inputs_q)
        outputs += np.broadcast_to(problem.b0(x), x.shape)[..., None]
        residual = outputs - sample_values(problem.targets, x, samples)
        return -rate * residual @ integral

    def w(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        alpha = amplitudes(x)
        return problem.w0(x, y) + sum(alpha[..., l] * problem.inputs(y, l) for l in range(samples))

    def b(x: np.ndarray) -> np.ndarray:
        initial = np.broadcast_to(problem.b0(x), np.shape(x))
        return initial + amplitudes(x).sum(axis=-1) if problem.bias else initial

    return w, b
