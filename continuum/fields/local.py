"""Local field theories in one coordinate: the gradient-expansion limit of docs/physics.md
"Continuum".

The field ``w(t, y)`` on Ω (the circle of length 1, or the unit interval) obeys

    ρ (∂_t² w + γ ∂_t w) − ∂_y(K(y) ∂_y w) + J(y) w = j(y),

the Euler–Lagrange equation of ``∫ dt e^{γt} ∫ dy [½ ρ ẇ² − ½ K (∂_y w)² − ½ J w² + j w]`` (friction
``γ`` acts on the velocity per unit density, as in the action of docs/physics.md "Continuum"; for ρ
= 1 it is the equation ``ẅ + γ ẇ − ∂_y(K ∂_y w) + J w = j``). On the interval the ends are free (``K
∂_y w = 0``, natural) or fixed (``w = 0``).

Galerkin with Lagrange P_p, basis ``φ_a``:

    M_ab = ∫ ρ φ_a φ_b,   S_ab = ∫ K φ_a' φ_b',   (M_J)_ab = ∫ J φ_a φ_b,   f_a = ∫ j φ_a,

``A = S + M_J``, and the semi-discrete equation ``M (ẅ + γ ẇ) + A w = f`` with energy
``E = ½ ẇ·Mẇ + ½ w·Aw − f·w``, ``dE/dt = −γ ẇ·Mẇ``.

Modes ``w ∝ e^{−iωt} u`` with ``A u = λ M u`` have ``ω² + iγω = λ``. For constant
coefficients ``λ = c²k² + m²`` with ``c² = K/ρ``, ``m² = J/ρ`` and ``k = 2πn`` on the circle,
``k = nπ`` on the interval (``n ≥ 0`` free ends, ``n ≥ 1`` fixed ends); the discrete chain of
spacing ``a`` has ``c²k² → (4c²/a²) sin²(ka/2)``. ``K < 0`` anywhere is the
Lorentz-violating, unstable case: short waves grow at rate ``≈ √|K/ρ| k``; ``J < 0`` gives a
tachyonic band of long waves (``c²k² + m² < 0``) that grows too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mpi4py import MPI  # first: it loads the MPI library that DOLFINx links against

# isort: split
import numpy as np
import scipy.linalg
import scipy.sparse
import ufl
from dolfinx import fem, la
from dolfinx.fem import Function
from dolfinx.fem.petsc import assemble_matrix
from petsc4py import PETSc

import meshes
from continuum.fem.petsc import checked_solve
from continuum.fem.spaces import lagrange_element
from continuum.schemes.timestepping import check_field, global_size

Profile = Callable[[np.ndarray], np.ndarray]

BOUNDARIES = ("free", "fixed")
NEWMARK_BETA = 0.25
"""Newmark β = ¼ with γ_N = ½: average acceleration, second order, unconditionally stable."""
NEWMARK_GAMMA = 0.5
DENSE_LIMIT = 5000
"""Most degrees of freedom :func:`fem_eigenvalues` accepts (it uses dense eigensolvers)."""
REPLICATED_LIMIT = 200_000
"""Most unknowns of a system that every rank of a job steps whole (:class:`_FieldStepper`): a
chain's LU holds ``O(n · bandwidth)`` numbers (a periodic one a little more)."""


def _constant(value: float) -> Profile:
    return lambda y: np.full(np.shape(y), float(value))


@dataclass
class LocalTheory:
    """``ρ (ẅ + γ ẇ) − ∂_y(K ∂_y w) + J w = j`` on the circle (``periodic``) or [0, 1].

    ``stiffness`` K(y), ``mass`` J(y) and ``source`` j(y) map an array of coordinates to an
    array of values; either sign of K and J is allowed (see :meth:`negative_stiffness`).
    """

    stiffness: Profile
    mass: Profile
    source: Profile
    density: float = 1.0
    gamma: float = 0.0
    periodic: bool = True

    @classmethod
    def constant(
        cls,
        stiffness: float,
        mass: float = 0.0,
        source: float = 0.0,
        density: float = 1.0,
        gamma: float = 0.0,
        periodic: bool = True,
    ) -> LocalTheory:
        """Constant coefficients: ``c² = K/ρ``, ``m² = J/ρ``."""
        return cls(
            _constant(stiffness), _constant(mass), _constant(source), density, gamma, periodic
        )

    def negative_stiffness(self, y: np.ndarray) -> bool:
        """Whether ``K(y) < 0`` at any of the points ``y``: the Lorentz-violating, unstable case
        (the energy is unbounded below and short waves grow exponentially)."""
        return bool(np.any(self._values(self.stiffness, y) < 0.0))

    @staticmethod
    def _values(profile: Profile, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        return np.broadcast_to(np.asarray(profile(y), dtype=float), y.shape)


class LocalFEM:
    """Lagrange P_p discretisation of a :class:`LocalTheory` on ``cells`` cells.

    Builds the mesh (:func:`meshes.circle` or :func:`meshes.interval`), the space ``V``, the
    matrices ``M`` and ``A = S + M_J`` and the load ``f`` (module docstring). K, J and j are
    interpolated into ``V``. Fixed ends are imposed by rows of the identity in both ``M`` and
    ``A`` and zeros in ``f``, so a field that starts at zero there stays at zero.
    """

    def __init__(
        self,
        theory: LocalTheory,
        comm: MPI.Comm,
        cells: int,
        degree: int,
        boundary: str = "free",
    ) -> None:
        if boundary not in BOUNDARIES:
            raise ValueError(f"unknown boundary {boundary!r}; choose one of {BOUNDARIES}")
        if theory.periodic and boundary != "free":
            raise ValueError("a periodic coordinate (circle) has no boundary to fix")
        if theory.density <= 0.0:
            raise ValueError(f"the density ρ must be positive, got {theory.density}")
        self.theory = theory
        self.comm = comm
        self.mesh = meshes.circle(comm, cells) if theory.periodic else meshes.interval(comm, cells)
        self.V = fem.functionspace(self.mesh, lagrange_element(self.mesh, degree))

        K, J, j = (self.interpolate(p) for p in (theory.stiffness, theory.mass, theory.source))
        rho = fem.Constant(self.mesh, PETSc.ScalarType(theory.density))  # type: ignore[operator]
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        mass_form = fem.form(rho * u * v * ufl.dx)
        operator_form = fem.form((K * ufl.inner(ufl.grad(u), ufl.grad(v)) + J * u * v) * ufl.dx)
        load_form = fem.form(j * v * ufl.dx)

        self.bcs: list[fem.DirichletBC] = []
        if boundary == "fixed":
            ends = fem.locate_dofs_geometrical(
                self.V, lambda x: np.isclose(x[0], 0.0) | np.isclose(x[0], 1.0)
            )
            self.bcs.append(fem.dirichletbc(PETSc.ScalarType(0.0), ends, self.V))  # type: ignore[operator]

        self.M = assemble_matrix(mass_form, bcs=self.bcs)
        self.M.assemble()
        self.A = assemble_matrix(operator_form, bcs=self.bcs)
        self.A.assemble()
        load = fem.assemble_vector(load_form)
        load.scatter_reverse(la.InsertMode.add)
        self.f = fem.Function(self.V)
        self.f.x.array[:] = load.array
        self.apply_bcs(self.f)

    def coordinates(self) -> np.ndarray:
        """The coordinate ``y`` of every local degree of freedom (owned, then ghosts)."""
        return meshes.coordinate(self.mesh, self.V.tabulate_dof_coordinates().T)

    def interpolate(self, profile: Profile) -> fem.Function:
        """The P_p interpolant of a function of ``y``."""
        function = fem.Function(self.V)
        function.interpolate(
            lambda x: LocalTheory._values(profile, meshes.coordinate(self.mesh, x))
        )
        return function

    def apply_bcs(self, function: fem.Function) -> None:
        """Zero a field at fixed ends (nothing to do for free ends and the circle)."""
        for bc in self.bcs:
            bc.set(function.x.array, alpha=0.0)
        function.x.scatter_forward()

    def evaluate(self, function: fem.Function, y: np.ndarray) -> np.ndarray:
        """Values of a field of ``V`` at the coordinates ``y``, the same on every rank."""
        y = np.atleast_1d(np.asarray(y, dtype=float))
        cells = meshes.cells_at(self.mesh, y)
        mine = cells >= 0
        values = np.zeros(y.size)
        if np.any(mine):
            x = meshes.points(self.mesh, y[mine])
            values[mine] = function.eval(x, cells[mine]).ravel()
        return self.comm.allreduce(values, op=MPI.SUM)

    def dense(self, matrix: PETSc.Mat) -> np.ndarray:
        """``matrix`` as a dense array on every rank, rows and columns at fixed ends removed."""
        full = global_matrix(matrix, self.comm).toarray()
        keep = np.setdiff1d(np.arange(full.shape[0]), self._fixed_global())
        return full[np.ix_(keep, keep)]

    def _fixed_global(self) -> np.ndarray:
        index_map = self.V.dofmap.index_map
        owned = [
            index_map.local_to_global(dofs[:n_owned])
            for dofs, n_owned in (bc.dof_indices() for bc in self.bcs)
        ]
        mine = np.concatenate(owned) if owned else np.empty(0, dtype=np.int64)
        return np.concatenate(self.comm.allgather(mine)).astype(np.int64)


def global_matrix(matrix: PETSc.Mat, comm: MPI.Comm) -> scipy.sparse.csr_matrix:
    """The whole distributed ``matrix`` in the global numbering, on every rank (one
    ``allgather`` of the ranks' CSR rows)."""
    n = matrix.getSize()[0]
    rows, columns, values = [], [], []
    for first, ptr, cols, vals in comm.allgather(
        (matrix.getOwnershipRange()[0], *matrix.getValuesCSR())
    ):
        rows.append(first + np.repeat(np.arange(ptr.size - 1), np.diff(ptr)))
        columns.append(cols)
        values.append(vals)
    return scipy.sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))), shape=(n, n)
    )


def sequential_matrix(matrix: scipy.sparse.csr_matrix) -> PETSc.Mat:
    """A PETSc matrix of one rank (``COMM_SELF``) holding ``matrix``."""
    matrix = matrix.tocsr()
    matrix.sort_indices()
    index = PETSc.IntType
    csr = (matrix.indptr.astype(index), matrix.indices.astype(index), matrix.data)
    out = PETSc.Mat().createAIJ(size=matrix.shape, csr=csr, comm=MPI.COMM_SELF)  # type: ignore[arg-type]
    out.assemble()
    return out


class _DirectSolver:
    """LU solve of one fixed matrix (PETSc's own LU on one rank, MUMPS on several), failing
    loudly when PETSc reports divergence.  PETSc's serial LU is 15× faster than MUMPS on
    these banded 1-D systems (benchmarks/README.md, step cost)."""

    def __init__(self, matrix: PETSc.Mat, prefix: str) -> None:
        comm = matrix.getComm()
        self.ksp = PETSc.KSP().create(comm)
        self.ksp.setOperators(matrix)
        self.ksp.setType(PETSc.KSP.Type.PREONLY)
        pc = self.ksp.getPC()
        pc.setType(PETSc.PC.Type.LU)
        pc.setFactorSolverType("mumps" if comm.getSize() > 1 else "petsc")
        self.ksp.setOptionsPrefix(prefix)
        self.ksp.setFromOptions()

    def solve(self, rhs: PETSc.Vec, x: PETSc.Vec, step: str) -> None:
        checked_solve(self.ksp, rhs, x, step)


def _check_stability(fem_: LocalFEM, allow_unstable: bool) -> None:
    y = fem_.coordinates()
    negative = LocalTheory._values(fem_.theory.stiffness, y) < 0.0
    found = fem_.comm.allreduce(bool(np.any(negative)), op=MPI.LOR)
    if found and not allow_unstable:
        low = fem_.comm.allreduce(np.min(y[negative], initial=np.inf), op=MPI.MIN)
        high = fem_.comm.allreduce(np.max(y[negative], initial=-np.inf), op=MPI.MAX)
        raise ValueError(
            f"negative stiffness K(y) < 0 for y in [{low:.4g}, {high:.4g}]: the Lorentz-"
            "violating, unstable theory (the energy is unbounded below and short waves grow "
            "exponentially); pass allow_unstable=True to integrate it anyway"
        )


class _FieldStepper:
    """What both time steppers share: the field ``w`` (a DOLFINx Function) on ``self.fem``,
    and the system ``M``, ``A``, ``f`` the steps use.

    **The system of a step.** On one rank, and for systems of more than
    :data:`REPLICATED_LIMIT` unknowns, the steps work on the distributed matrices and on the
    fields' own vectors.  Otherwise every rank holds the whole system (gathered once into
    ``COMM_SELF`` matrices, :func:`global_matrix`) and steps all of it, as one rank does:
    :meth:`advance` gathers the fields (one ``Allgatherv`` each), takes its steps without any
    communication and writes each rank's owned part back.  A step of a distributed 1-D chain
    (``cells · degree`` unknowns) is all latency: its two or three matrix products exchange
    ghosts, its inner products reduce, and MUMPS's solve phase synchronises the ranks again and
    again: 97 collective calls per step, counted; on an oversubscribed machine each waits for
    a time slice (Goldstein's chain, 256 unknowns: 0.22 s per MUMPS
    solve on 3 ranks of 2 cores; benchmarks/README.md, "Probe problems under MPI").
    """

    fem: LocalFEM
    steps: int
    dt: float
    _w: Function
    _work: PETSc.Vec

    def _discretise(
        self,
        theory: LocalTheory,
        comm: MPI.Comm,
        cells: int,
        degree: int,
        dt: float,
        boundary: str,
        allow_unstable: bool,
    ) -> None:
        """Build the FE discretisation with step ``dt`` (refusing ``K < 0`` unless allowed)."""
        if dt <= 0.0:
            raise ValueError(f"the time step must be positive, got {dt}")
        self.fem = LocalFEM(theory, comm, cells, degree, boundary)
        _check_stability(self.fem, allow_unstable)
        self.dt = dt
        fem_ = self.fem
        self.replicated = comm.size > 1 and fem_.M.getSize()[0] <= REPLICATED_LIMIT
        if not self.replicated:
            self._M, self._A, self._f = fem_.M, fem_.A, fem_.f.x.petsc_vec
            return
        self._counts = np.array(comm.allgather(fem_.M.getLocalSize()[0]))
        self._start = fem_.M.getOwnershipRange()[0]
        self._M, self._A = (sequential_matrix(global_matrix(m, comm)) for m in (fem_.M, fem_.A))
        self._f = self._gathered(fem_.f)

    def _gathered(self, function: Function) -> PETSc.Vec:
        """The vector a step updates for ``function``: its own, or (replicated) a
        ``COMM_SELF`` vector of all its values (one ``Allgatherv``)."""
        if not self.replicated:
            return function.x.petsc_vec
        full = PETSc.Vec().createSeq(self._M.getSize()[0], comm=MPI.COMM_SELF)  # type: ignore[arg-type]
        self.fem.comm.Allgatherv(
            function.x.petsc_vec.getArray(readonly=True), [full.getArray(), self._counts]
        )
        return full

    def _publish(self, pairs: tuple[tuple[Function, PETSc.Vec], ...]) -> None:
        """Write the stepped vectors back into their functions (each rank its owned part)
        and update the ghosts."""
        for function, vec in pairs:
            if self.replicated:
                stop = self._start + self._counts[self.fem.comm.rank]
                function.x.petsc_vec.getArray()[:] = vec.getArray(readonly=True)[self._start : stop]
            function.x.scatter_forward()

    def _start_growth_check(self) -> None:
        """Record the initial size of ``w`` (the reference of :meth:`_check_growth`)."""
        self._reference = max(global_size(self.fem.V.mesh.comm, self.w), 1.0)

    def _check_growth(self, fields: tuple[Function, ...]) -> None:
        """:class:`~discrete.errors.DivergenceError` when a field is not finite or has grown
        beyond ``GROWTH`` times the initial size of ``w``."""
        step = self.steps
        for field in fields:
            owned = field.x.petsc_vec.getArray()
            check_field(
                "continuum solve", self.fem.V.mesh.comm, owned, self._reference, step, self.t
            )

    @property
    def t(self) -> float:
        """The current time ``n Δt`` (counted in steps, so a resumed run keeps the same clock)."""
        return self.steps * self.dt

    @property
    def w(self) -> np.ndarray:
        """Owned degree-of-freedom values of the field ``w``."""
        return self._w.x.petsc_vec.getArray().copy()

    def evaluate(self, y_points: np.ndarray) -> np.ndarray:
        """``w(t, y)`` at the coordinates ``y_points`` (the same array on every rank)."""
        return self.fem.evaluate(self._w, y_points)

    def potential(self) -> float:
        """``½ w·Aw − f·w``: the stiffness, mass and source part of the energy."""
        w = self._w.x.petsc_vec
        work = self.fem.A.createVecLeft()  # distributed, like w (the steps' vectors may not be)
        self.fem.A.mult(w, work)
        return 0.5 * w.dot(work) - self.fem.f.x.petsc_vec.dot(w)

    def _functions(self) -> dict[str, Function]:
        """The fields that make up the state, by name."""
        return {"coefficients": self._w}

    def state(self) -> dict[str, np.ndarray]:
        """The state as owned degree-of-freedom values, by name (the :class:`MeshSolver`
        contract of :mod:`continuum.models.model`)."""
        return {name: f.x.petsc_vec.getArray().copy() for name, f in self._functions().items()}

    def load_state(self, state: dict[str, np.ndarray], steps: int) -> None:
        """Continue from owned values returned by :meth:`state`, after ``steps`` steps."""
        for name, f in self._functions().items():
            f.x.petsc_vec.getArray()[:] = state[name]
            f.x.scatter_forward()
        self.steps = steps


class WaveSolver(_FieldStepper):
    """Newmark-β time stepping (β = ¼, γ_N = ½) of ``M (ẅ + γ ẇ) + A w = f``.

    One step from ``(w, v, a)`` at ``t`` to ``t + h``:

        w* = w + h v + h²(½ − β) a,          v* = v + h (1 − γ_N) a,
        [(1 + γ_N γ h) M + β h² A] a' = f − γ M v* − A w*,
        w' = w* + β h² a',                    v' = v* + γ_N h a'.

    Average acceleration is the trapezoidal rule: second order, unconditionally stable, and
    its discrete energy obeys ``E' − E = −(γh/4) (v + v')·M(v + v')`` exactly, which is
    accumulated in :attr:`dissipated` so that ``energy() + dissipated`` is conserved to
    rounding error.

    A theory with ``K < 0`` somewhere is refused unless ``allow_unstable`` (its modes grow).
    """

    def __init__(
        self,
        theory: LocalTheory,
        comm: MPI.Comm,
        cells: int,
        degree: int,
        dt: float,
        w0: Profile,
        v0: Profile | None = None,
        boundary: str = "free",
        allow_unstable: bool = False,
    ) -> None:
        self._discretise(theory, comm, cells, degree, dt, boundary, allow_unstable)
        self.steps = 0
        self.dissipated = 0.0
        self._w = self.fem.interpolate(w0)
        self._v = self.fem.interpolate(v0 or _constant(0.0))
        self._a = fem.Function(self.fem.V)
        for field in (self._w, self._v):
            self.fem.apply_bcs(field)
        self._start_growth_check()

        M, A, gamma = self._M, self._A, theory.gamma
        self._rhs = M.createVecLeft()
        self._work = M.createVecLeft()
        w, v, a = (self._gathered(f) for f in (self._w, self._v, self._a))
        self._residual(w, v, self._rhs)
        _DirectSolver(M, "synfield_newmark_start_").solve(
            self._rhs, a, "Newmark initial acceleration M a0 = f − γMv0 − Aw0"
        )
        self._publish(((self._a, a),))
        effective = M.copy()
        effective.scale(1.0 + NEWMARK_GAMMA * gamma * dt)
        effective.axpy(NEWMARK_BETA * dt**2, A)
        self._solver = _DirectSolver(effective, "synfield_newmark_")

    def _residual(self, w: PETSc.Vec, v: PETSc.Vec, out: PETSc.Vec) -> None:
        """``out = f − γ M v − A w``."""
        self._A.mult(w, out)
        out.aypx(-1.0, self._f)
        if self.fem.theory.gamma != 0.0:
            self._M.mult(v, self._work)
            out.axpy(-self.fem.theory.gamma, self._work)

    def advance(self, steps: int) -> None:
        """Take ``steps`` Newmark steps of size ``dt``."""
        h, beta, gamma_n, gamma = self.dt, NEWMARK_BETA, NEWMARK_GAMMA, self.fem.theory.gamma
        w, v, a = (self._gathered(f) for f in (self._w, self._v, self._a))
        v_sum = v.duplicate()
        for _ in range(steps):
            v.copy(v_sum)
            w.axpy(h, v)
            w.axpy(h**2 * (0.5 - beta), a)
            v.axpy(h * (1.0 - gamma_n), a)
            self._residual(w, v, self._rhs)
            self._solver.solve(self._rhs, a, f"Newmark step t = {self.t:.6g} → {self.t + h:.6g}")
            w.axpy(beta * h**2, a)
            v.axpy(gamma_n * h, a)
            if gamma != 0.0:
                v_sum.axpy(1.0, v)
                self._M.mult(v_sum, self._work)
                self.dissipated += 0.25 * gamma * h * v_sum.dot(self._work)  # type: ignore[assignment]
            self.steps += 1
        self._publish(((self._w, w), (self._v, v), (self._a, a)))
        self._check_growth((self._w, self._v))

    @property
    def v(self) -> np.ndarray:
        """Owned degree-of-freedom values of the velocity ``∂_t w``."""
        return self._v.x.petsc_vec.getArray().copy()

    def energy(self) -> float:
        """``E = ½ v·Mv + ½ w·Aw − f·w`` (kinetic + stiffness + mass − source)."""
        v = self._v.x.petsc_vec
        work = self.fem.M.createVecLeft()
        self.fem.M.mult(v, work)
        return 0.5 * v.dot(work) + self.potential()

    def _functions(self) -> dict[str, Function]:
        return {"coefficients": self._w, "velocity": self._v, "acceleration": self._a}


class FlowSolver(_FieldStepper):
    """θ-method for the first-order flow ``ρ ∂_t w = −δC/δw``, i.e. ``M ẇ + A w = f``.

    ``C[w] = ½ w·Aw − f·w`` is the cost; ``ρ`` plays the inverse learning rate ``1/η``
    (``γ`` is not used). One step: ``(M + θhA) w' = (M − (1 − θ)hA) w + h f``; ``θ = ½``
    (Crank–Nicolson, the default) is second order, ``θ = 1`` (backward Euler) first order.
    """

    def __init__(
        self,
        theory: LocalTheory,
        comm: MPI.Comm,
        cells: int,
        degree: int,
        dt: float,
        w0: Profile,
        theta: float = 0.5,
        boundary: str = "free",
        allow_unstable: bool = False,
    ) -> None:
        if not 0.5 <= theta <= 1.0:
            raise ValueError(f"θ must lie in [½, 1] (unconditionally stable), got {theta}")
        self._discretise(theory, comm, cells, degree, dt, boundary, allow_unstable)
        self.theta, self.steps = theta, 0
        self._w = self.fem.interpolate(w0)
        self.fem.apply_bcs(self._w)
        self._start_growth_check()
        M, A = self._M, self._A
        self._explicit = M.copy()
        self._explicit.axpy(-(1.0 - theta) * dt, A)
        implicit = M.copy()
        implicit.axpy(theta * dt, A)
        self._solver = _DirectSolver(implicit, "synfield_flow_")
        self._rhs = M.createVecLeft()

    def advance(self, steps: int) -> None:
        """Take ``steps`` θ-method steps of size ``dt``."""
        w = self._gathered(self._w)
        for _ in range(steps):
            self._explicit.mult(w, self._rhs)
            self._rhs.axpy(self.dt, self._f)
            self._solver.solve(self._rhs, w, f"θ-method step t = {self.t:.6g}")
            self.steps += 1
        self._publish(((self._w, w),))
        self._check_growth((self._w,))

    def cost(self) -> float:
        """``C = ½ w·Aw − f·w``: non-increasing along the flow."""
        return self.potential()


def fem_eigenvalues(
    theory: LocalTheory,
    comm: MPI.Comm,
    cells: int,
    degree: int,
    n_modes: int,
    boundary: str = "free",
) -> np.ndarray:
    """The ``n_modes`` lowest eigenvalues ``λ`` of ``A u = λ M u`` (with multiplicity).

    Dense ``scipy.linalg.eigh`` on every rank: small problems only (at most
    :data:`DENSE_LIMIT` degrees of freedom). On the circle every ``k ≠ 0`` is a double
    eigenvalue (``cos`` and ``sin``). With ``K < 0`` the lowest are the fastest-growing,
    mesh-scale modes.
    """
    fem_ = LocalFEM(theory, comm, cells, degree, boundary)
    if fem_.A.getSize()[0] > DENSE_LIMIT:
        raise ValueError(
            f"fem_eigenvalues uses dense eigensolvers: at most {DENSE_LIMIT} degrees of "
            f"freedom, got {fem_.A.getSize()[0]}"
        )
    A, M = fem_.dense(fem_.A), fem_.dense(fem_.M)
    if not 0 < n_modes <= A.shape[0]:
        raise ValueError(f"n_modes must lie in [1, {A.shape[0]}], got {n_modes}")
    return scipy.linalg.eigh(A, M, eigvals_only=True, subset_by_index=(0, n_modes - 1))


def mode_frequencies(eigenvalues: np.ndarray, gamma: float) -> np.ndarray:
    """Complex ``ω`` with ``ω² + iγω = λ`` (modes ``e^{−iωt}``): ``ω = −iγ/2 + √(λ − γ²/4)``.

    ``Re ω ≥ 0`` is the oscillation frequency and ``Im ω`` the growth rate (``−γ/2`` for a
    damped stable mode, ``> 0`` for an unstable one).
    """
    lam = np.asarray(eigenvalues, dtype=complex)
    return -0.5j * gamma + np.sqrt(lam - 0.25 * gamma**2)


def fem_mode_frequencies(
    theory: LocalTheory,
    comm: MPI.Comm,
    cells: int,
    degree: int,
    n_modes: int,
    boundary: str = "free",
) -> np.ndarray:
    """Complex mode frequencies of the FEM discretisation (:func:`fem_eigenvalues` fed to
    :func:`mode_frequencies`); real part ``√λ`` when ``γ = 0`` and ``λ ≥ 0``."""
    lam = fem_eigenvalues(theory, comm, cells, degree, n_modes, boundary)
    return mode_frequencies(lam, theory.gamma)


def dispersion(
    k: np.ndarray,
    c2: float,
    m2: float,
    gamma: float = 0.0,
    spacing: float | None = None,
) -> np.ndarray:
    """Exact complex frequencies ``ω² + iγω = c²k² + m²`` of the continuum, or of the discrete
    chain of lattice ``spacing`` a, where ``c²k² → (4c²/a²) sin²(ka/2)``."""
    k = np.asarray(k, dtype=float)
    waves = c2 * k**2 if spacing is None else 4.0 * c2 / spacing**2 * np.sin(0.5 * k * spacing) ** 2
    return mode_frequencies(waves + m2, gamma)


def fit_mode(times: np.ndarray, signal: np.ndarray) -> complex:
    """The complex exponent ``σ`` of a single mode ``s(t) ≈ Re(B e^{σt}) + c`` sampled at
    equal steps ``h``: ``Im σ`` the angular frequency, ``−Re σ`` the decay rate (``Re σ > 0``:
    growth).

    Least squares for the exact recurrence of such a signal, written in second differences
    (well conditioned for ``|σ|h ≪ 1``):

        s_{k+1} − 2s_k + s_{k−1} = p s_k + q (s_k − s_{k−1}) + c',

    whose roots ``z = e^{σh}`` solve ``z² − (2 + p + q) z + (1 + q) = 0``. Of the two roots the
    one of positive imaginary part (oscillation) or the larger (real roots) is returned.
    """
    t = np.asarray(times, dtype=float)
    s = np.asarray(signal, dtype=float)
    if t.shape != s.shape or t.size < 6:
        raise ValueError("fit_mode needs matching time and signal arrays of at least 6 samples")
    h = t[1] - t[0]
    if not np.allclose(np.diff(t), h, rtol=1e-8, atol=0.0):
        raise ValueError("fit_mode needs equally spaced samples")
    design = np.column_stack([s[1:-1], s[1:-1] - s[:-2], np.ones(s.size - 2)])
    (p, q, _), *_ = np.linalg.lstsq(design, s[2:] - 2.0 * s[1:-1] + s[:-2], rcond=None)
    delta = 0.5 * (p + q + np.sqrt(complex(4.0 * p + (p + q) ** 2)))  # z − 1
    log_z = complex(
        0.5 * np.log1p(2.0 * delta.real + abs(delta) ** 2),
        np.arctan2(delta.imag, 1.0 + delta.real),
    )
    return log_z / h


def measured_frequency(times: np.ndarray, signal: np.ndarray) -> float:
    """The angular frequency of a single (possibly damped) mode: ``Im`` of :func:`fit_mode`."""
    return fit_mode(times, signal).imag
