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
    a residual network, rule ``flow``); the first call compiles."""
    net, rule = setup.network, setup.rule
    if any(layer.banded for layer in net.layers) or setup.config.training.rule != "flow":
        raise ValueError("the JAX route is the full-batch RK4 flow of dense layers")
    sigma = ACTIVATIONS[net.activation.name]
    shapes = [layer.weight_shape for layer in net.layers]
    slices = [net.params.layer_slices(m) for m in range(net.depth)]
    X, Y = jnp.asarray(setup.data.X), jnp.asarray(setup.data.Y)
    dx, rates = jnp.asarray(setup.cost.dx), jnp.asarray(rule.rates)
    h, steps, L = rule.h, setup.steps, X.shape[0]
    identity_output = net.output == "identity"
    cross_entropy = setup.cost.loss.name == "cross-entropy"

    def layer(theta, m, a):
        w, b = slices[m]
        z = a @ theta[w].reshape(shapes[m]).T
        return z + theta[b] if net.bias else z

    def readout(theta, a):
        z = layer(theta, net.depth - 1, a)
        return z if identity_output else sigma(z)

    if isinstance(net, ResidualNetwork):
        # θ holds the blocks m = 1 … M one after the other, (W^(k), b^(k)) each: one (M, ·) array
        n, blocks, dtau = net.stream_width, net.blocks, net.dtau
        start, end = slices[1][0].start, slices[blocks][1].stop

        def outputs(theta):
            stacked = theta[start:end].reshape(blocks, -1)
            w, b = stacked[:, : n * n].reshape(blocks, n, n), stacked[:, n * n :]

            def block(s, params):
                w_k, b_k = params
                drive = sigma(s) @ w_k.T
                return s + dtau * (drive + b_k if net.bias else drive), None

            s, _ = jax.lax.scan(block, layer(theta, 0, X), (w, b))
            return readout(theta, s)

    else:

        def outputs(theta):
            a = X
            for m in range(net.depth - 1):
                a = sigma(layer(theta, m, a))
            return readout(theta, a)

    def cost(theta):
        a = outputs(theta)
        if cross_entropy:
            return -jnp.sum(Y * jax.nn.log_softmax(a, axis=1)) / L
        r = a - Y
        return 0.5 * jnp.sum(dx * r * r) / L

    gradient = jax.grad(cost)

    def force(theta):
        return -rates * gradient(theta)

    def step(_, theta):
        k1 = force(theta)
        k2 = force(theta + 0.5 * h * k1)
        k3 = force(theta + 0.5 * h * k2)
        k4 = force(theta + h * k3)
        return theta + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

    flow = jax.jit(lambda theta: jax.lax.fori_loop(0, steps, step, theta))
    theta0 = jnp.asarray(setup.theta0)
    return lambda: np.asarray(flow(theta0).block_until_ready())
