"""The discrete network's full-batch gradient flow in JAX: the route a user would write.

The same dense network, cost and classical RK4 as :class:`discrete.training.Flow`
(docs/physics.md, "Discrete network and cost", "Training rules"):

    z^(m+1) = h^(m) W^(m)ᵀ + b^(m),   h^(m) = σ(z^(m)),   C = (1/2L) Σ_l Σ_i Δx_i (Z^l_i − Y^l_i)²
    (or, with ``loss = "cross-entropy"``, C = −(1/L) Σ_l Σ_k Y^l_k log softmax(Z^l)_k),
    θ̇ = −η ⊙ ∂C/∂θ,   θ' = θ + (h/6)(k₁ + 2k₂ + 2k₃ + k₄),

in float64 with the gradient by ``jax.grad`` and all steps in one ``jax.lax.fori_loop``
under ``jax.jit``; data, rates, output measures and θ₀ are those of the synfield setup.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402  (after float64 is switched on)

ACTIVATIONS = {"linear": lambda z: z, "tanh": jnp.tanh, "softplus": jax.nn.softplus}


def jax_flow(setup) -> Callable[[], np.ndarray]:
    """A jitted ``run() -> θ(t_end)`` of the full-batch RK4 flow of ``setup`` (dense layers,
    rule ``flow``); the first call compiles."""
    net, rule = setup.network, setup.rule
    if any(layer.banded for layer in net.layers) or setup.config.training.rule != "flow":
        raise ValueError("the JAX route is the full-batch RK4 flow of dense layers")
    sigma = ACTIVATIONS[net.activation.name]
    index = np.arange(setup.theta0.size)
    blocks = []
    for m in range(net.depth):
        w = net.params.W(index, m)
        b = net.params.b(index, m) if net.bias else None
        blocks.append((int(w.flat[0]), w.shape, None if b is None else int(b[0])))
    X, Y = jnp.asarray(setup.data.X), jnp.asarray(setup.data.Y)
    dx, rates = jnp.asarray(setup.cost.dx), jnp.asarray(rule.rates)
    h, steps, L = rule.h, setup.steps, X.shape[0]
    identity_output = net.output == "identity"
    cross_entropy = setup.cost.loss.name == "cross-entropy"

    def cost(theta):
        a = X
        for m, (w0, shape, b0) in enumerate(blocks):
            size = shape[0] * shape[1]
            z = a @ theta[w0 : w0 + size].reshape(shape).T
            if b0 is not None:
                z = z + theta[b0 : b0 + shape[0]]
            a = z if (m + 1 == net.depth and identity_output) else sigma(z)
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
