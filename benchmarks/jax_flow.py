"""The discrete network's full-batch gradient flow in JAX: the route a user would write.

The same dense network, cost and classical RK4 as :class:`discrete.training.Flow`
(docs/physics.md, "Discrete network and cost", "Training rules"):

    z^(m+1) = h^(m) W^(m)ᵀ + b^(m),   h^(m) = σ(z^(m)),   C = (1/2L) Σ_l Σ_i Δx_i (Z^l_i − Y^l_i)²
    (or, with ``loss = "cross-entropy"``, C = −(1/L) Σ_l Σ_k Y^l_k log softmax(Z^l)_k),
    θ̇ = −η ⊙ ∂C/∂θ,   θ' = θ + (h/6)(k₁ + 2k₂ + 2k₃ + k₄),

and, for a residual network (:class:`discrete.residual.ResidualNetwork`, docs/physics.md
"Depth as a coordinate"), the stream through ``M`` blocks as one ``jax.lax.scan`` over the
stacked block parameters,

    s^(0) = X W^inᵀ + b^in,   s^(k+1) = s^(k) + Δτ (σ(s^(k)) W^(k)ᵀ + b^(k)),
    Z = s^(M) W^outᵀ + b^out,

in float64 with the gradient by ``jax.grad`` and all steps in one ``jax.lax.fori_loop``
under ``jax.jit``; data, rates, output measures and θ₀ are those of the synfield setup.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402  (after float64 is switched on)

from discrete.residual import ResidualNetwork  # noqa: E402

ACTIVATIONS = {"linear": lambda z: z, "tanh": jnp.tanh, "softplus": jax.nn.softplus}


def jax_flow(setup) -> Callable[[], np.ndarray]:
    """A jitted ``run() -> θ(t_end)`` of the full-batch RK4 flow of ``setup`` (dense layers or
    a residual network, rule ``flow``); the first call compiles.  The parameters travel as
    a pytree, as a user writes them: one ``(W, b)`` per layer, and for a residual network
    the blocks stacked, ``(M, N, N)`` and ``(M, N)``; θ is unpacked once and packed at the
    end in synfield's layout."""
    net, rule = setup.network, setup.rule
    if any(layer.banded for layer in net.layers) or setup.config.training.rule != "flow":
        raise ValueError("the JAX route is the full-batch RK4 flow of dense layers")
    sigma = ACTIVATIONS[net.activation.name]
    X, Y = jnp.asarray(setup.data.X), jnp.asarray(setup.data.Y)
    dx = jnp.asarray(setup.cost.dx)
    h, steps, L = rule.h, setup.steps, X.shape[0]
    identity_output = net.output == "identity"
    cross_entropy = setup.cost.loss.name == "cross-entropy"
    residual = isinstance(net, ResidualNetwork)

    def unpack(theta: np.ndarray):
        """θ as ``[(W, b) per layer]``; a residual network's blocks stacked in the middle."""
        layers = [
            (np.array(net.params.W(theta, m)), np.array(net.params.b(theta, m)))
            for m in range(net.depth)
        ]
        if not residual:
            return [tuple(map(jnp.asarray, layer)) for layer in layers]
        blocks = layers[1:-1]
        stacked = tuple(jnp.asarray(np.stack(part)) for part in zip(*blocks, strict=True))
        return [tuple(map(jnp.asarray, layers[0])), stacked, tuple(map(jnp.asarray, layers[-1]))]

    def pack(params) -> np.ndarray:
        if residual:
            (w0, b0), (w, b), (w1, b1) = params
            params = [(w0, b0), *zip(w, b, strict=True), (w1, b1)]
        theta = np.zeros(setup.theta0.size)
        for m, (w, b) in enumerate(params):
            net.params.W(theta, m)[...] = np.asarray(w)
            if net.bias:
                net.params.b(theta, m)[...] = np.asarray(b)
        return theta

    def dense(params, a):
        w, b = params
        z = a @ w.T
        return z + b if net.bias else z

    def readout(params, a):
        z = dense(params, a)
        return z if identity_output else sigma(z)

    if residual:
        dtau = net.dtau

        def outputs(params):
            def block(s, wb):
                return s + dtau * dense(wb, sigma(s)), None

            s, _ = jax.lax.scan(block, dense(params[0], X), params[1])
            return readout(params[2], s)

    else:

        def outputs(params):
            a = X
            for layer in params[:-1]:
                a = sigma(dense(layer, a))
            return readout(params[-1], a)

    def cost(params):
        a = outputs(params)
        if cross_entropy:
            return -jnp.sum(Y * jax.nn.log_softmax(a, axis=1)) / L
        r = a - Y
        return 0.5 * jnp.sum(dx * r * r) / L

    gradient = jax.grad(cost)
    rates = unpack(rule.rates)
    tree = jax.tree_util.tree_map

    def force(params):
        return tree(lambda eta, g: -eta * g, rates, gradient(params))

    def shifted(params, c, k):
        return tree(lambda p, kp: p + c * kp, params, k)

    def step(_, params):
        k1 = force(params)
        k2 = force(shifted(params, 0.5 * h, k1))
        k3 = force(shifted(params, 0.5 * h, k2))
        k4 = force(shifted(params, h, k3))
        return tree(
            lambda p, a, b, c, d: p + h / 6 * (a + 2 * b + 2 * c + d), params, k1, k2, k3, k4
        )

    flow = jax.jit(lambda params: jax.lax.fori_loop(0, steps, step, params))
    params0 = unpack(setup.theta0)

    def run() -> np.ndarray:
        return pack(jax.block_until_ready(flow(params0)))

    return run
