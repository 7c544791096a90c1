"""The stochastic modified equation (SME) of SGD on a linear layer, its law and its paths.

docs/physics.md "SGD fluctuations".  In the span of the data
(:mod:`continuum.fields.fluctuations`) the field of every output point ``x`` is carried by the
pair ``z(x) = (a(x), r(x))`` of ``2L`` numbers, and the SME

    dw = −η δC/δw dt + η √(h/B) Σ^{1/2} dβ_t

becomes a linear Itô equation with ``L`` noise channels ``g_l − ḡ`` (sample ``l``'s force
minus the mean force), the same Brownian motions ``β_l`` for every ``x``:

    dz = A z dt + Σ_l B_l z dβ_l,     A = −(1/L) P J,     B_l = √(h/(BL)) P (E_ll − I/L) J,

with ``P = [I; G]`` and ``J z = r`` as in :mod:`discrete.fluctuations`
(``Σ_l B_l Z B_lᵀ = (h/B) P Σ̄(J Z Jᵀ) Pᵀ``: the SGD noise covariance).  Being linear, it is
solved by a random ``2L × L`` propagator, ``z(t, x) = Ξ(t) r(0, x)``, ``Ξ(0) = [0; I]``.

* Law: ``E[Ξ]`` and ``E[Ξ E_ab Ξᵀ]`` follow linear ODEs, ``Ξ̄' = A Ξ̄`` and
  ``Z' = A Z + Z Aᵀ + Σ_l B_l Z B_lᵀ`` (``dQ/dt = −(ηHQ + QηH) + η²(h/B)Σ``), solved exactly
  with matrix exponentials (:meth:`SME.law`).
* Paths, with a step ``Δt`` and seeded increments: Euler–Maruyama (Gaussian ``ΔW``, weak
  order 1) and the simplified weak order-2 Taylor scheme (Kloeden & Platen 1992, 14.2.1:
  three-point ``ΔŴ = ±√(3Δt)`` with probability 1/6 each, two-point ``V_{j1 j2} = ±Δt``).
  Each step multiplies ``Ξ`` by a random matrix ``K``; for the linear SME

      K_EM = I + Δt A + Σ_j ΔW_j B_j,
      K_2  = I + Δt A + ½Δt² A² + Σ_j ΔŴ_j (B_j + ½Δt (B_j A + A B_j))
             + ½ Σ_{j1 j2} (ΔŴ_{j1} ΔŴ_{j2} + V_{j1 j2}) B_{j2} B_{j1}.

  The increments take finitely many values (EM's two first moments are those of
  ``ΔW = ±√Δt``), so the schemes' own first two moments are exact finite sums over those
  values (:meth:`Scheme.law_step`): their weak errors are measured without sampling error.
"""

from __future__ import annotations

import itertools

import numpy as np

SCHEMES = ("euler-maruyama", "weak-order-2")
"""The path schemes of :class:`SME` (``[continuum] sde_scheme``; the configuration reads them from
here, so scipy is imported where it is used, not when the configuration is read)."""

Array = np.ndarray


class SME:
    """Drift ``A`` and channels ``B_l`` of the SME for a Gram matrix ``G``, SGD step ``h``
    and batch size ``B``."""

    def __init__(self, gram: Array, h: float, batch: int):
        L = gram.shape[0]
        self.samples = L
        P = np.vstack([np.eye(L), np.asarray(gram, dtype=float)])
        J = np.hstack([np.zeros((L, L)), np.eye(L)])
        self.A = -(P @ J) / L
        amplitude = np.sqrt(h / (batch * L))
        self.B = np.array(
            [amplitude * P @ (np.diag(np.eye(L)[l]) - np.eye(L) / L) @ J for l in range(L)]
        )

    def start(self) -> Array:
        L = self.samples
        return np.vstack([np.zeros((L, L)), np.eye(L)])

    def law(self, t: float) -> tuple[Array, Array]:
        """Exact ``E[Ξ(t)]`` and centred ``T(E_ab) = E[Ξ E_ab Ξᵀ] − Ξ̄ E_ab Ξ̄ᵀ``."""
        n = 2 * self.samples
        eye = np.eye(n)
        # vec(A Z + Z Aᵀ + Σ B Z Bᵀ) with row-major vec: A⊗I + I⊗A + Σ B⊗B
        generator = np.kron(self.A, eye) + np.kron(eye, self.A)
        generator += sum(np.kron(b, b) for b in self.B)
        import scipy.linalg

        flow = scipy.linalg.expm(t * generator)
        start = self.start()
        mean = scipy.linalg.expm(t * self.A) @ start
        full = np.einsum("pa,qb->abpq", start, start).reshape(self.samples, self.samples, n * n)
        full = (full @ flow.T).reshape(self.samples, self.samples, n, n)
        return mean, full - np.einsum("pa,qb->abpq", mean, mean)


class Scheme:
    """One of :data:`SCHEMES` with step ``dt``: random step matrices ``K``, paths and the
    exact law of the discrete scheme."""

    def __init__(self, sme: SME, name: str, dt: float):
        if name not in SCHEMES:
            raise ValueError(f"unknown SME scheme {name!r}; choose one of {SCHEMES}")
        self.sme, self.name, self.dt = sme, name, float(dt)
        A, B, h = sme.A, sme.B, self.dt
        n = A.shape[0]
        if name == "euler-maruyama":
            self.K0 = np.eye(n) + h * A
            self.K1 = B
            self.K2 = None
        else:
            self.K0 = np.eye(n) + h * A + 0.5 * h * h * A @ A
            self.K1 = B + 0.5 * h * (B @ A + A @ B)
            self.K2 = 0.5 * np.einsum("jpq,iqr->ijpr", B, B)  # K2[j1, j2] = ½ B_{j2} B_{j1}

    def matrices(self, dW: Array, V: Array | None) -> Array:
        """``K`` for increments ``dW`` (``(..., L)``) and ``V`` (``(..., L, L)``)."""
        K = self.K0 + np.einsum("...j,jpq->...pq", dW, self.K1)
        if self.K2 is not None:
            products = dW[..., :, None] * dW[..., None, :] + V
            K = K + np.einsum("...ij,ijpq->...pq", products, self.K2)
        return K

    def increments(
        self, rng: np.random.Generator, shape: tuple[int, ...]
    ) -> tuple[Array, Array | None]:
        """Seeded increments for ``shape`` independent steps."""
        L, h = self.sme.samples, self.dt
        if self.name == "euler-maruyama":
            return np.sqrt(h) * rng.standard_normal((*shape, L)), None
        u = rng.random((*shape, L))
        dW = np.sqrt(3.0 * h) * np.where(u < 1 / 6, -1.0, np.where(u < 1 / 3, 1.0, 0.0))
        return dW, self.levy(h * (2.0 * rng.integers(0, 2, size=(*shape, L, L)) - 1.0))

    def levy(self, signs: Array) -> Array:
        """``V``: ``−Δt`` on the diagonal, ``signs`` below it, antisymmetric above it."""
        L = self.sme.samples
        lower = np.tril(signs, -1)
        return lower - np.swapaxes(lower, -1, -2) - self.dt * np.eye(L)

    def atoms(self) -> tuple[Array, Array]:
        """Every value of the step matrix ``K`` and its probability (EM: ``ΔW = ±√Δt``, whose
        first two moments are those of the Gaussian, which is all a second moment sees)."""
        L, h = self.sme.samples, self.dt
        if self.name == "euler-maruyama":
            dW = np.sqrt(h) * np.array(list(itertools.product((-1.0, 1.0), repeat=L)))
            return self.matrices(dW, None), np.full(len(dW), 0.5**L)
        values = np.sqrt(3.0 * h) * np.array((-1.0, 0.0, 1.0))
        probs = np.array((1 / 6, 2 / 3, 1 / 6))
        index = np.array(list(itertools.product(range(3), repeat=L)))
        pairs = L * (L - 1) // 2
        signs = np.array(list(itertools.product((-h, h), repeat=pairs))).reshape(-1, pairs)
        lower = np.zeros((len(signs), L, L))
        lower[:, *np.tril_indices(L, -1)] = signs
        V = self.levy(lower)
        dW = np.repeat(values[index], len(V), axis=0)
        Vs = np.tile(V, (len(index), 1, 1))
        p = np.repeat(probs[index].prod(axis=1), len(V)) * 0.5**pairs
        return self.matrices(dW, Vs), p

    def law_step(
        self, mean: Array, second: Array, atoms: tuple[Array, Array]
    ) -> tuple[Array, Array]:
        """One step of the scheme's exact law: ``E[K] Ξ̄`` and the centred ``E[K Z Kᵀ]``."""
        K, p = atoms
        full = second + np.einsum("pa,qb->abpq", mean, mean)
        full = np.einsum("k,kpq,abqr,ksr->abps", p, K, full, K)
        mean = np.einsum("k,kpq->pq", p, K) @ mean
        return mean, full - np.einsum("pa,qb->abpq", mean, mean)

    def law(self, steps: int) -> tuple[Array, Array]:
        """The scheme's ``E[Ξ]`` and centred second moments after ``steps`` steps (exact)."""
        atoms = self.atoms()
        L = self.sme.samples
        mean, second = self.sme.start(), np.zeros((L, L, 2 * L, 2 * L))
        for _ in range(steps):
            mean, second = self.law_step(mean, second, atoms)
        return mean, second
