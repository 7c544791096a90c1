"""The law of SGD with i.i.d. batches on a linear layer: exact first and second moments.

docs/physics.md "SGD fluctuations".  Row ``i`` of a linear one-layer network,
``u_i = (W_i·, b_i)``, sees sample ``l`` through ``φ^l = (X^l, 1)`` (no ``1`` without bias);
its residual is ``r_i^l = φ^l·u_i − Y_i^l``.  One SGD step on the batch ``β`` with per-row
rates ``η_i`` and output measure ``Δx_i`` is

    u_i ← u_i − h diag(d_i) Φ S_β r_i,   d_i = Δx_i η_i,   S_β = (1/B) Σ_{b∈β} e_{l_b} e_{l_b}ᵀ,

so ``u_i`` moves in the span of the data, ``u_i = u_i(0) + diag(d_i) Φ a_i``, and the pair
``z_i = (a_i, r_i)`` of ``2L`` numbers obeys a *linear* recursion with one random matrix
shared by all rows,

    z_i ← (I − h P S_β J) z_i,     P = [I; G],  G = Φᵀ diag(d_i) Φ,  J z = r,
    z_i(0) = (0, r_i(0)).

Hence ``z_i(k) = Ξ_k r_i(0)`` with the random ``2L × L`` propagator ``Ξ_k = Π_j M_j [0; I]``,
and every moment of every row follows from two moments of ``Ξ``: the mean ``Ξ̄`` and the
centred second-moment operator ``T(E_ab) = E[Ξ E_ab Ξᵀ] − Ξ̄ E_ab Ξ̄ᵀ`` on the ``L²`` unit
matrices ``E_ab`` (``4L⁴`` numbers, whatever the width):

    Cov(z_i, z_i') = Σ_ab r_ia(0) r_i'b(0) T(E_ab).

With i.i.d. uniform draws the batch counts are multinomial, ``E[S] = I/L`` and
``E[S A S] = A/L² + Σ̄(A)/B`` with ``Σ̄(A) = diag(A)/L − A/L²``, the covariance of one
sample's residual force.  One step maps them exactly to

    Ξ̄ ← M̄ Ξ̄,       T ← M̄ T M̄ᵀ + (h²/B) P Σ̄(J (T + Ξ̄ E Ξ̄ᵀ) Jᵀ) Pᵀ,       M̄ = I − (h/L) P J,

the mean being full-batch gradient descent (exact in expectation) and the covariance
``O(h/B)``: the discrete form of ``dQ/dt = −(ηHQ + QηH) + η²(h/B)Σ``.
"""

from __future__ import annotations

import numpy as np

from .cost import Cost
from .experiment import DiscreteSetup

Array = np.ndarray


def residual_noise(A: Array) -> Array:
    """``Σ̄(A) = diag(A)/L − A/L²`` for a (stack of) second moment(s) ``A = E[r rᵀ]``: the
    covariance of ``e_l r_l`` with ``l`` uniform, i.e. of one sample's residual force."""
    L = A.shape[-1]
    diagonal = np.einsum("...ll->...l", A)
    return np.einsum("...l,lk->...lk", diagonal, np.eye(L)) / L - A / L**2


class SpanLaw:
    """Mean ``Ξ̄`` (``(2L, L)``) and centred second moments ``T`` (``(L, L, 2L, 2L)``) of the
    propagator of ``z ← (I − h P S_β J) z`` over i.i.d. uniform batches of size ``B``."""

    def __init__(self, gram: Array, h: float, batch: int):
        L = gram.shape[0]
        self.samples, self.h, self.batch = L, float(h), int(batch)
        self.P = np.vstack([np.eye(L), np.asarray(gram, dtype=float)])
        self.mean = np.vstack([np.zeros((L, L)), np.eye(L)])
        self.second = np.zeros((L, L, 2 * L, 2 * L))
        self.mean_step = np.eye(2 * L) - (self.h / L) * self.P @ self._J()

    def _J(self) -> Array:
        L = self.samples
        return np.hstack([np.zeros((L, L)), np.eye(L)])

    def noise(self, second: Array) -> Array:
        """``P Σ̄(J Z Jᵀ) Pᵀ`` for (a stack of) full second moments ``Z`` of ``z``."""
        L = self.samples
        return np.einsum("pl,...lk,qk->...pq", self.P, residual_noise(second[..., L:, L:]), self.P)

    def step(self) -> None:
        """One SGD step of the law (exact)."""
        M = self.mean_step
        full = self.second + np.einsum("pa,qb->abpq", self.mean, self.mean)
        self.second = np.einsum("pq,abqr,sr->abps", M, self.second, M) + (
            self.h**2 / self.batch
        ) * self.noise(full)
        self.mean = M @ self.mean

    def moments(self, r0: Array) -> tuple[Array, Array]:
        """Mean ``(n, 2L)`` and covariance ``(n, 2L, 2L)`` of ``z_i`` for rows ``r0`` ``(n, L)``."""
        return r0 @ self.mean.T, np.einsum("ia,ib,abpq->ipq", r0, r0, self.second)


def require_linear_layer(setup: DiscreteSetup) -> None:
    """The closed moment recursion holds for one dense linear layer under i.i.d. batches."""
    net, tr = setup.network, setup.config.training
    linear = net.output == "identity" or net.activation.name == "linear"
    if net.depth != 1 or net.layers[0].banded or not linear:
        raise ValueError(
            "the exact SGD moments are those of one dense linear layer: [network] widths has "
            f"{net.depth} weight layer(s), connectivity {net.layers[0].connectivity}, activation "
            f"{net.activation.name!r}, output {net.output!r}"
        )
    if tr.rule != "sgd" or tr.sampling != "replacement":
        raise ValueError(
            "the exact SGD moments are those of i.i.d. batches: [training] rule = 'sgd' and "
            f"sampling = 'replacement' (got rule {tr.rule!r}, sampling {tr.sampling!r})"
        )


class LinearLayerLaw:
    """The first two moments of ``W``, ``b`` of a linear layer trained by SGD with i.i.d.
    batches, exactly, at every step (rows grouped by their rate-weighted Gram matrix)."""

    def __init__(
        self,
        X: Array,
        Y: Array,
        W0: Array,
        b0: Array | None,
        rates: Array,
        dx: Array,
        h: float,
        batch: int,
    ):
        L = X.shape[0]
        self.bias = b0 is not None
        self.phi = np.hstack([X, np.ones((L, 1))]) if self.bias else np.asarray(X, float)
        self.u0 = np.hstack([W0, b0[:, None]]) if b0 is not None else np.asarray(W0, float)
        self.d = dx[:, None] * rates  # (N_out, N_in [+1])
        self.r0 = self.u0 @ self.phi.T - Y.T  # (N_out, L)
        keys, self.group = np.unique(self.d, axis=0, return_inverse=True)
        self.laws = [SpanLaw(self.phi @ (k[:, None] * self.phi.T), h, batch) for k in keys]
        self.steps = 0

    @classmethod
    def from_setup(cls, setup: DiscreteSetup) -> LinearLayerLaw:
        require_linear_layer(setup)
        net = setup.network
        theta, rates = setup.theta0, setup.dictionary.rates()
        b0 = net.params.b(theta, 0) if net.bias else None
        rate_rows = net.params.W(rates, 0)
        if net.bias:
            rate_rows = np.hstack([rate_rows, net.params.b(rates, 0)[:, None]])
        return cls(
            setup.data.X,
            setup.data.Y,
            net.params.W(theta, 0),
            b0,
            rate_rows,
            setup.convention.layers[1].measure,
            setup.dt,
            setup.config.training.batch,
        )

    def step(self) -> None:
        for law in self.laws:
            law.step()
        self.steps += 1

    def span_moments(self) -> tuple[Array, Array]:
        """Mean ``(N_out, L)`` and covariance ``(N_out, L, L)`` of every row's coefficients
        ``a_i`` in ``u_i = u_i(0) + diag(d_i) Φ a_i``."""
        L = self.phi.shape[0]
        mean = np.empty((len(self.r0), L))
        cov = np.empty((len(self.r0), L, L))
        for g, law in enumerate(self.laws):
            rows = self.group == g
            m, c = law.moments(self.r0[rows])
            mean[rows], cov[rows] = m[:, :L], c[:, :L, :L]
        return mean, cov

    def moments(self) -> tuple[Array, Array, Array, Array]:
        """``E[W]``, ``E[b]``, ``Var W``, ``Var b`` (entrywise; zeros for ``b`` without bias)."""
        a, cov = self.span_moments()
        basis = self.d[:, :, None] * self.phi.T[None, :, :]  # diag(d_i) Φ, (N_out, P, L)
        mean = self.u0 + np.einsum("ipl,il->ip", basis, a)
        var = np.einsum("ipl,ilk,ipk->ip", basis, cov, basis)
        n_in = self.u0.shape[1] - self.bias
        if not self.bias:
            zeros = np.zeros(len(mean))
            return mean, zeros, var, zeros
        return mean[:, :n_in], mean[:, n_in], var[:, :n_in], var[:, n_in]


class LinearNoise:
    """The linear-noise approximation of SGD with i.i.d. batches, for any network.

    docs/physics.md "SGD fluctuations": around the mean ``θ̄`` (full-batch gradient descent, the
    law's mean to O(h)) the fluctuations obey the linearised step, so their covariance follows

        C ← K C Kᵀ + (h²/B) diag(η) Σ(θ̄) diag(η),     K = I − h diag(η) H(θ̄),
        Σ(θ) = (1/L) Σ_l (g_l − ḡ)(g_l − ḡ)ᵀ,

    with ``g_l`` the gradient of sample ``l``'s cost and ``H`` the Hessian of ``C``, built
    from central differences of gradients (step ``ε``; error ``O(ε²)``).  For a linear layer
    this is the exact recursion of :class:`LinearLayerLaw` up to the noise's dependence on
    the fluctuations (``O(h)`` relative); for a nonlinear network the neglected terms
    (the curvature's variation over the fluctuations) are ``O(h)`` relative as well.  Dense
    in θ: for the small networks it is meant to check.
    """

    def __init__(
        self, cost: Cost, rates: Array, h: float, batch: int, theta0: Array, eps: float = 1e-5
    ):
        self.cost, self.rates, self.h, self.batch, self.eps = cost, rates, float(h), batch, eps
        self.mean = np.array(theta0, dtype=float)
        self.covariance = np.zeros((len(theta0), len(theta0)))

    def hessian(self, theta: Array) -> Array:
        """``∂²C/∂θ²`` by central differences of the gradient, symmetrised."""
        n = len(theta)
        H = np.empty((n, n))
        for k in range(n):
            step = np.zeros(n)
            step[k] = self.eps
            H[:, k] = (
                self.cost.gradient(theta + step)[1] - self.cost.gradient(theta - step)[1]
            ) / (2 * self.eps)
        return 0.5 * (H + H.T)

    def noise(self, theta: Array) -> Array:
        """``Σ(θ)``: the covariance of one uniformly drawn sample's gradient."""
        samples = self.cost.data.samples
        g = np.array([self.cost.gradient(theta, np.array([l]))[1] for l in range(samples)])
        d = g - g.mean(axis=0)
        return d.T @ d / samples

    def step(self) -> None:
        eta = self.rates
        K = np.eye(len(eta)) - self.h * eta[:, None] * self.hessian(self.mean)
        source = (self.h**2 / self.batch) * eta[:, None] * self.noise(self.mean) * eta[None, :]
        self.covariance = K @ self.covariance @ K.T + source
        self.mean = self.mean - self.h * eta * self.cost.gradient(self.mean)[1]
