"""Mechanics of the depth continuum of a residual network: energy through depth and the
bulk–boundary decomposition (docs/physics.md "Depth as a coordinate").

Energy through depth.  For the damped field equations ``∂_t² φ + γ ∂_t φ + η δC/δφ = 0``
of the fields of :class:`~continuum.fields.residual.DepthFields` the kinetic energy per unit depth
and the power through the stream at depth τ are (docs/physics.md, "Energy through depth")

    e(t, τ) = (1/2η_w) ∫∫ (∂_t w(τ, x, y))² dx dy + (1/2η_b) ∫ (∂_t b(τ, x))² dx,
    f(t, τ) = (1/L) Σ_l ∫ p^l(τ, x) ∂_t s^l(τ, x) dx,

and they obey the continuity equation ``∂_t e + ∂_τ f = −2γ e``; the input layer and the readout
close it at the ends as the ordinary layers of docs/physics.md "Mechanics" (``dE_in/dt + f(0) =
−2γE_in``, ``dE_out/dt + F_out − f(1) = −2γE_out``, ``F_out`` the power into the cost).

Here ``f`` is evaluated at the τ-cell ends from the exact adjoint and the tangent of the
depth rule's map (``DepthFields.adjoint`` and ``DepthFields.tangent``), and ``e`` integrated over
each τ-cell with the τ space's Gauss rule; ``∂_t e`` comes from the equation of motion.  The
balance per cell, ``∫_cell (∂_t e + 2γ e) dτ + f(τ_{n+1}) − f(τ_n)``, closes to the depth
discretisation error (the Galerkin gradient couples neighbouring cells through ``M_τ⁻¹``);
summed over the cells it closes to rounding, and so do the end layers.
The result is a :class:`~discrete.mechanics.EnergyBalance` whose "layers" are the input
layer, the τ-cells and the readout — the discrete balance of a residual network has the same
shape with one block per cell (``E_k ≈ ∫_cell e``, ``F_k ≈ f(k/M)``).
"""

from __future__ import annotations

import numpy as np

from continuum.fields.residual import DepthFields
from discrete.depth_mechanics import DepthBulkBoundary
from discrete.mechanics import EnergyBalance

Array = np.ndarray


def _pair(mass_left, u: Array, v: Array, mass_right) -> float:
    """``tr(Uᵀ M_l V M_r)`` (symmetric mass matrices, dense or sparse)."""
    return float(np.sum((mass_left @ u) * (mass_right @ v.T).T))


def _cell_pairs(fields: DepthFields, u: Array, v: Array) -> Array:
    """``∫_cell ⟨u(τ), v(τ)⟩ dτ`` per τ-cell for block coefficients ``(n_τ, n_x[, n_x])``:
    the τ Gauss rule (exact for the product of two degree-p fields) and the x mass matrices."""
    depth, Mx = fields.depth, fields.stream.mass
    tab = depth.tabulation
    tab = tab if isinstance(tab, np.ndarray) else tab.toarray()  # dense or CSR
    uq = np.einsum("qk,k...->q...", tab, u)
    vq = np.einsum("qk,k...->q...", tab, v)
    if u.ndim == 3:
        values = np.array([_pair(Mx, a, b, Mx) for a, b in zip(uq, vq, strict=True)])
    else:
        values = np.array([float(a @ (Mx @ b)) for a, b in zip(uq, vq, strict=True)])
    cells = np.minimum((depth.quadrature_points[:, 0] / fields.h).astype(int), fields.cells - 1)
    return np.bincount(cells, depth.quadrature_weights * values, minlength=fields.cells)


def layer_pairs(fields: DepthFields, u: Array, v: Array, rates: list[tuple[float, float]]) -> Array:
    """``⟨u, v⟩/η`` of the input layer, of every τ-cell of the blocks, and of the readout."""
    x, inp, out = fields.stream.mass, fields.inputs.mass, fields.outputs.mass
    W, b = fields.full_W, fields.b
    first = _pair(x, W(u, 0), W(v, 0), inp) / rates[0][0]
    cells = _cell_pairs(fields, W(u, 1), W(v, 1)) / rates[1][0]
    last = _pair(out, W(u, 2), W(v, 2), x) / rates[2][0]
    if fields.network.bias:
        first += float(b(u, 0) @ (x @ b(v, 0))) / rates[0][1]
        cells = cells + _cell_pairs(fields, b(u, 1), b(v, 1)) / rates[1][1]
        last += float(b(u, 2) @ (out @ b(v, 2))) / rates[2][1]
    return np.concatenate([[first], cells, [last]])


def depth_energy_balance(
    fields: DepthFields,
    theta: Array,
    theta_dot: Array,
    rates: list[tuple[float, float]],
    gamma: float,
) -> EnergyBalance:
    """The balance at one instant (all samples); ``rates`` are the continuum ``(η_w, η_b)``
    of the input layer, the blocks and the readout."""
    cost, grad, adjoint = fields.adjoint(theta)
    sdot = fields.tangent(theta, theta_dot)
    flux = np.array([0.0] + [float(np.sum(p * q)) for p, q in zip(adjoint, sdot, strict=True)])
    accel = -gamma * theta_dot - fields.per_group(rates) * fields.riesz(grad)
    energy = 0.5 * layer_pairs(fields, theta_dot, theta_dot, rates)
    rate = layer_pairs(fields, theta_dot, accel, rates)
    return EnergyBalance(
        energy=energy, rate=rate, flux=flux, friction=-2.0 * gamma * energy, cost=cost
    )


def _tau_nodes(fields: DepthFields) -> list[tuple[int, int]]:
    """For every τ DOF the stage point ``j`` (of ``DepthFields.stage_tau``) where it is the
    nodal value and a stage ``i`` there: the first stage of the last step reaching ``τ_j``
    (RK4, degree 1: the cell ends; degree 2: the cell ends and midpoints)."""
    basis = fields.stage_basis
    nodes = np.argmax(np.abs(basis), axis=0)
    if not np.allclose(basis[nodes], np.eye(basis.shape[1]), atol=1e-12):
        raise ValueError(
            f"the τ nodes of this degree are not stage points of the depth rule {fields.rule.name}"
        )
    m = fields.rule.stages
    out = []
    for j in nodes:
        stages = np.flatnonzero(fields.stage_points == j)
        last_step = stages // m == stages.max() // m
        out.append((int(j), int(stages[last_step].min())))
    return out


def depth_bulk_boundary(
    fields: DepthFields,
    theta: Array,
    theta_dot: Array,
    rates: list[tuple[float, float]],
    sample: int,
) -> DepthBulkBoundary:
    """``L = L_bulk + L_boundary`` of the depth continuum for one sample (docs/physics.md,
    "Bulk and boundary in depth"), biases traded for the stream.

    At a τ node (a stage point ``τ_j`` of the depth rule) the block bias is ``b_j = ∂_τ s −
    W_j η(u_i)`` with ``∂_τ s`` the stage slope ``k_i`` of a stage ``i`` at ``τ_j`` (for RK4 the
    difference quotient of the stage states, ``k₁ = 2(u₂ − s_n)/h`` …): the continuum of
    ``(s^(k+1) − s^(k))/Δτ``.  Its time derivative ``D_j = ∂_t k_i`` comes from the stream's
    tangent, and
    with ``A_j = ∂_t(W_j η(u_i))`` the bias kinetic energy ``(1/2η_b) ∫∫ ḃ² dτ dx`` becomes
    ``(1/2η_b)(⟨D, D⟩ − 2⟨D, A⟩ + ⟨A, A⟩)`` in the ``M_τ ⊗ M_x`` inner product: local in τ
    (``M_τ`` couples neighbouring nodes only).  The end layers' biases go to the boundary:
    ``ḃ^in = ṡ(0) − Ẇ^in η⁰`` and ``ḃ^out = Ż − ∂_t(W^out M_x s(1))``, with the loss."""
    if not fields.network.bias:
        raise ValueError("the bulk–boundary decomposition trades biases: it needs bias = true")
    cols = np.array([sample])
    motion = fields.stream_motion(theta, theta_dot, cols)
    act, x = fields.network.activation, fields.stream
    Wdot = fields.full_W(theta_dot, 1)
    W_stage, Wdot_stage = fields.at_stages(fields.full_W(theta, 1)), fields.at_stages(Wdot)
    D_rows, A_rows = [], []
    for j, i in _tau_nodes(fields):
        u, ud = motion.stages[i], motion.stage_rates[i]
        uq = x.at_quadrature(u)
        eta = x.load(act.sigma(uq))
        eta_dot = x.load(act.dsigma(uq) * x.at_quadrature(ud))
        D_rows.append(motion.slope_rates[i][:, 0])
        A_rows.append((Wdot_stage[j] @ eta + W_stage[j] @ eta_dot)[:, 0])
    D, A = np.array(D_rows), np.array(A_rows)
    Mt, Mx = fields.depth.mass, x.mass
    eta_b = rates[1][1]
    weights = fields.full_W
    kinetic_w = 0.5 * (
        _pair(Mx, weights(theta_dot, 0), weights(theta_dot, 0), fields.inputs.mass) / rates[0][0]
        + _cell_pairs(fields, Wdot, Wdot).sum() / rates[1][0]
        + _pair(fields.outputs.mass, weights(theta_dot, 2), weights(theta_dot, 2), Mx) / rates[2][0]
    )
    assert motion.zdot is not None  # stream_motion sets the readout's rate
    inflow = motion.sdot[0][:, 0] - weights(theta_dot, 0) @ fields.eta0[:, sample]
    s1, sd1 = motion.s[-1][:, 0], motion.sdot[-1][:, 0]
    outflow = motion.zdot[:, 0] - weights(theta_dot, 2) @ (Mx @ s1) - weights(theta, 2) @ (Mx @ sd1)
    return DepthBulkBoundary(
        kinetic_weights=kinetic_w,
        stream_kinetic=0.5 * _pair(Mt, D, D, Mx) / eta_b,
        stream_cross=-_pair(Mt, D, A, Mx) / eta_b,
        stream_square=0.5 * _pair(Mt, A, A, Mx) / eta_b,
        boundary_input=0.5 * float(inflow @ (Mx @ inflow)) / rates[0][1],
        boundary_output=0.5 * float(outflow @ (fields.outputs.mass @ outflow)) / rates[2][1],
        loss=fields.value(theta, cols),
    )
