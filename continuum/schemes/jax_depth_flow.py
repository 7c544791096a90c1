"""The full-batch gradient flow of a residual network's depth continuum by RK4, compiled with
JAX (``[continuum] scheme = "jax"`` for ``architecture = "residual"``; docs/physics.md "Depth
as a coordinate", the compiled flow).

The depth continuum's cost (:class:`~continuum.fields.residual.DepthFields`) is dense linear
algebra on fixed arrays once its spaces are built: the stream space's tabulation ``T``, load
``Tᵀ diag(ω)`` and mass ``M_x``; the τ basis at the stage points ``S`` (``J × n_τ``, kept as
its ``q + 1`` nonzeros per row: :func:`stage_rows`); the
input moments ``η⁰``, the readout's tabulation and weights and the targets.  Per sample the
stream starts at ``s = W^in η⁰ + b^in`` and takes the depth rule's explicit steps ``δ``
(tableau ``(A, b, c)`` of ``[continuum] depth_rule``, stage ``i`` of step ``n`` at the stage
point ``j(n, i)``),

    u_i = s + δ Σ_{j<i} a_ij k_j,    k_i = W_{j(n,i)} Tᵀ(ω σ(T u_i)) + b_{j(n,i)},
    s ← s + δ Σ_i b_i k_i,           W_j = Σ_k S_jk W_k,

    Z = T_out (W^out M_x s + b^out),     C = (1/2L) Σ_l ω_out · (σ_out(Z^l) − Y^l)²,

written once in JAX, the steps as one ``lax.scan``.  ``jax.grad`` of it is the exact gradient
of the discretised forward map — the discrete adjoint that :class:`DepthFields` writes by
hand — and the Riesz map of :meth:`DepthFields.riesz` (``M_x⁻¹ G M_in⁻¹``, ``(M_τ ⊗ M_x ⊗
M_x)⁻¹ G``, ``M_out⁻¹ G M_x⁻¹``; ``M⁻¹`` on every factor of the biases) turns it into the force
of the flow, equal to :meth:`DepthFields.gradient` to rounding.  The RK4 loop over the training
steps is :class:`~continuum.schemes.jax_flow.CompiledFlow`'s; ``scheme = "jax-adaptive"`` runs
the same force to ``[continuum] tolerance`` instead
(:class:`~continuum.schemes.jax_adaptive.ToleranceLoop`).

Covered: the RK4 flow of residual networks (every depth rule, ``depth_steps``, biases on or
off, identity or activated readout), one MPI rank; the registry refuses the other training
rules when the config is loaded.  Meant for the small spaces of high-order elements on few
cells, where a gradient is a few hundred small products and the numpy path pays Python's
overhead for each.
"""

from __future__ import annotations

import jax
import numpy as np
from mpi4py import MPI

from continuum.fem.spaces import as_dense
from continuum.fields.residual import DepthFields, ResidualModel
from continuum.schemes.jax_adaptive import ToleranceLoop
from continuum.schemes.jax_flow import (
    CompiledFlow,
    Loop,
    apply_operator,
    jax_activation,
    space_arrays,
)
from discrete.experiment import DiscreteSetup

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402  (after float64 is switched on)

Array = np.ndarray


class JaxDepthFlow(CompiledFlow):
    """RK4 of the full-batch flow ``θ̇ = −η ⊙ δC/δθ`` of a residual network's
    :class:`~continuum.fields.residual.DepthFields`, compiled with JAX (module docstring);
    ``rates`` per coefficient (:meth:`DepthFields.per_group`), ``activation`` the name and the
    quadratic coefficients of σ (:func:`~continuum.schemes.jax_flow.jax_activation`)."""

    def __init__(
        self,
        fields: DepthFields,
        rates: Array,
        h: float,
        activation: tuple[str, tuple[float, float, float]],
        loop: Loop | None = None,
    ):
        self.fields = fields
        net, rule = fields.network, fields.rule
        self._sigma = jax_activation(*activation)
        self._identity_output = net.output == "identity"
        self._bias = net.bias
        self._parts = [(*fields.slices(k), *fields.local_shapes[k]) for k in range(3)]
        self.check_layout([(w, b) for w, b, _, _ in self._parts], fields.size)
        # the tableau, unrolled inside each step of the scan
        stages = rule.stages
        self._couplings = tuple(tuple(rule.couplings(i)) for i in range(stages))
        self._b = tuple(float(b) for b in rule.b)
        arrays = {
            "inputs": space_arrays(fields.inputs),
            "stream": {**space_arrays(fields.stream), "mass": as_dense(fields.stream.mass)},
            "outputs": space_arrays(fields.outputs),
            "depth_inverse_mass": fields.depth.operators().inverse_mass,
            "stage_basis": stage_rows(
                fields.stage_basis, fields.stage_points.reshape(fields.steps, stages)
            ),
            "eta0": fields.eta0,
            "targets": fields.Y_q,
        }
        key = (
            tuple((w.start, w.stop, b.start, b.stop) for w, b, _, _ in self._parts),
            (self._bias, activation, self._identity_output, self._couplings, self._b),
            fields.step,
        )
        super().__init__(fields, rates, h, fields.comm, arrays, key, loop)

    def _part(self, theta: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
        """Weights and biases of part ``k``: the input layer, the blocks, the readout (zero
        biases without them)."""
        w, b, w_shape, b_shape = self._parts[k]
        return theta[w].reshape(w_shape), (
            theta[b].reshape(b_shape) if self._bias else jnp.zeros(b_shape)
        )

    def _cost(self, parts: list[tuple[jax.Array, jax.Array]], arrays: dict) -> jax.Array:
        """``C`` of the parts' weights and biases (input layer, blocks, readout) by the depth
        rule's forward map (module docstring)."""
        x, out = arrays["stream"], arrays["outputs"]
        (w_in, b_in), (w, b), (w_out, b_out) = parts
        # the block fields at the stages of every step, (steps, stages, n_x, n_x): one gather
        columns, values = arrays["stage_basis"]
        Wst = jnp.einsum("nil,nilab->niab", values, w[columns])
        bst = jnp.einsum("nil,nila->nia", values, b[columns])
        s0 = w_in @ arrays["eta0"] + b_in[:, None]
        delta = self.fields.step

        def step(s: jax.Array, fields: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
            """One step of the depth rule; ``fields``: the block fields at its stages."""
            W, bias = fields
            ks: list[jax.Array] = []
            for i, couplings in enumerate(self._couplings):
                u = s
                for j, a in couplings:
                    u = u + (delta * a) * ks[j]
                eta = apply_operator(x["load"], self._sigma(apply_operator(x["tabulation"], u)))
                ks.append(W[i] @ eta + bias[i][:, None])
            return s + delta * sum(b_i * k for b_i, k in zip(self._b, ks, strict=True) if b_i), None

        s, _ = jax.lax.scan(step, s0, (Wst, bst))
        z_q = apply_operator(out["tabulation"], w_out @ (x["mass"] @ s) + b_out[:, None])
        Z = z_q if self._identity_output else self._sigma(z_q)
        r = Z - arrays["targets"]
        return 0.5 * jnp.sum(out["weights"] @ (r * r)) / r.shape[1]

    def _riesz_gradient(self, theta: jax.Array, arrays: dict) -> jax.Array:
        """The Riesz map of :meth:`DepthFields.riesz` applied to ``jax.grad`` of the cost,
        differentiated by the parts' blocks, not by ``θ`` (whose slices would differentiate to
        padded copies of ``θ``, one per block: :class:`~continuum.schemes.jax_flow.JaxFlow`)."""
        blocks = [self._part(theta, k) for k in range(3)]
        (g_in, gb_in), (g_w, gb_w), (g_out, gb_out) = jax.grad(self._cost)(blocks, arrays)
        m_in = arrays["inputs"]["inverse_mass"]
        m_x = arrays["stream"]["inverse_mass"]
        m_out = arrays["outputs"]["inverse_mass"]
        m_tau = arrays["depth_inverse_mass"]
        weights = [
            _along(_along(g_in, m_x, 0), m_in, 1),
            _along(_along(_along(g_w, m_tau, 0), m_x, 1), m_x, 2),
            _along(_along(g_out, m_out, 0), m_x, 1),
        ]
        biases = [_along(gb_in, m_x, 0), _along(_along(gb_w, m_tau, 0), m_x, 1)]
        biases.append(_along(gb_out, m_out, 0))
        parts = []
        for gw, gb in zip(weights, biases, strict=True):
            parts.append(gw.ravel())
            if self._bias:
                parts.append(gb.ravel())
        return jnp.concatenate(parts)


def stage_rows(S: Array, points: Array) -> tuple[Array, Array]:
    """The τ basis at the stage points, ``S`` (``J × n_τ``), as the columns and values of
    the nonzeros of its row ``points[n, i]`` for stage ``i`` of step ``n`` (a stage point
    lies in one τ-cell: ``q + 1`` of them), padded with zeros, each ``(steps, stages, q + 1)``:
    ``W_{n,i} = Σ_l values_nil W_{columns_nil}`` costs ``J (q + 1) n_x²``, not ``J n_τ n_x²``."""
    width = max(1, int((S != 0).sum(axis=1).max()))
    columns = np.zeros((len(S), width), dtype=np.int32)
    values = np.zeros((len(S), width))
    for j, row in enumerate(S):
        nonzero = np.flatnonzero(row)
        columns[j, : len(nonzero)], values[j, : len(nonzero)] = nonzero, row[nonzero]
    return columns[points], values[points]


def _along(a: jax.Array, matrix: jax.Array | None, axis: int) -> jax.Array:
    """``matrix`` applied along ``axis`` of ``a`` (a dense matrix, the diagonal of a nodal
    space as its vector, or ``None`` for the identity)."""
    moved = jnp.moveaxis(a, axis, 0)
    shape = moved.shape
    return jnp.moveaxis(apply_operator(matrix, moved.reshape(shape[0], -1)).reshape(shape), 0, axis)


def depth_jax_rule(
    fields: DepthFields,
    setup: DiscreteSetup,
    rates: list[tuple[float, float]],
    loop: Loop | None = None,
) -> JaxDepthFlow:
    """``scheme = "jax"``: the compiled RK4 flow with the training dt and the continuum rates
    (``loop``: another compiled time loop of the same force)."""
    cfg = setup.config
    activation = (cfg.network.activation, tuple(cfg.network.quadratic))
    return JaxDepthFlow(fields, fields.per_group(rates), cfg.training.dt, activation, loop)


def depth_jax_adaptive_rule(
    fields: DepthFields, setup: DiscreteSetup, rates: list[tuple[float, float]]
) -> JaxDepthFlow:
    """``scheme = "jax-adaptive"``: the compiled force to ``[continuum] tolerance``
    (:class:`~continuum.schemes.jax_adaptive.ToleranceLoop`)."""
    return depth_jax_rule(fields, setup, rates, ToleranceLoop.of(setup))


def residual_jax(setup: DiscreteSetup, comm: MPI.Comm) -> ResidualModel:
    """The depth continuum stepped by :class:`JaxDepthFlow`."""
    return ResidualModel(setup, comm, depth_jax_rule)


def residual_jax_adaptive(setup: DiscreteSetup, comm: MPI.Comm) -> ResidualModel:
    """The depth continuum's flow to a tolerance, compiled."""
    return ResidualModel(setup, comm, depth_jax_adaptive_rule)
