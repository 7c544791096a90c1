"""An independent peer check: the same network and training written in JAX.

A 64 → 16 → 16 → 10 tanh classifier on 50 digits (index input and output layers, two hidden layers
on the unit interval, cell placement, softmax cross-entropy), trained by the gradient flow with the
rates of docs/physics.md "Index layers" and classical RK4.  The JAX side shares no synfield code:
its coordinates, initial fields, data split, loss, gradient (``jax.grad``) and RK4 step (jitted,
float64) are written here from the specification alone.
"""

import jax
import jax.numpy as jnp
import numpy as np
import sklearn.datasets

from continuum.settings import parse_config
from discrete.experiment import build
from discrete.training import integrate

jax.config.update("jax_enable_x64", True)

N, SAMPLES, SEED, LR, DT, STEPS = 16, 50, 3, 1.0, 0.05, 20

CONFIG = f"""
[network]
widths = [64, {N}, {N}, 10]
activation = "tanh"
loss = "cross-entropy"
[coordinates]
layout = ["index", "line", "line", "index"]
[data]
kind = "dataset"
name = "digits"
samples = {SAMPLES}
seed = {SEED}
[init]
weight = ["0.02*cos(pi*(j+1)*x)", "cos(pi*(x - y))", "sin(pi*(i+1)*y)"]
bias = ["0.1*x", "0.2*cos(pi*x)", "0.05*i"]
[training]
rule = "flow"
lr = {LR}
dt = {DT}
steps = {STEPS}
[continuum]
enabled = false
"""


def peer_problem():
    """Data, initial parameters and per-parameter rates, from docs/physics.md "The dictionary";
    docs/physics.md "Index layers" alone."""
    X, y = sklearn.datasets.load_digits(return_X_y=True)
    rows = np.sort(np.random.default_rng(SEED).permutation(len(X))[:SAMPLES])
    X, Y = X[rows].astype(float), np.eye(10)[y[rows]]
    x = (np.arange(N) + 0.5) / N  # cell placement, Δx = 1/N
    j, i = np.arange(64), np.arange(10)
    params = (
        0.02 * np.cos(np.pi * (j[None, :] + 1) * x[:, None]),  # W_ij = w_j(x_i)
        0.1 * x,
        np.cos(np.pi * (x[:, None] - x[None, :])) / N,  # W_ij = Δy w(x_i, y_j)
        0.2 * np.cos(np.pi * x),
        np.sin(np.pi * (i[:, None] + 1) * x[None, :]) / N,  # W_kj = Δy v_k(y_j)
        0.05 * i.astype(float),
    )
    rates = (LR * N, LR * N, LR, LR * N, LR / N, LR)  # η/Δx, η/Δx, ηΔy/Δx, η/Δx, ηΔy, η
    return jnp.asarray(X), jnp.asarray(Y), tuple(map(jnp.asarray, params)), rates


def peer_training(X, Y, rates):
    def cost(params):
        W0, b0, W1, b1, W2, b2 = params
        h = jnp.tanh(X @ W0.T + b0)
        h = jnp.tanh(h @ W1.T + b1)
        Z = h @ W2.T + b2
        return -jnp.mean(jnp.sum(Y * jax.nn.log_softmax(Z, axis=1), axis=1))

    grad = jax.jit(jax.grad(cost))

    @jax.jit
    def rk4(params):
        def force(p):
            return tuple(-r * g for r, g in zip(rates, grad(p), strict=True))

        def shift(p, k, s):
            return tuple(a + s * b for a, b in zip(p, k, strict=True))

        k1 = force(params)
        k2 = force(shift(params, k1, 0.5 * DT))
        k3 = force(shift(params, k2, 0.5 * DT))
        k4 = force(shift(params, k3, DT))
        return tuple(
            p + DT / 6 * (a + 2 * b + 2 * c + d)
            for p, a, b, c, d in zip(params, k1, k2, k3, k4, strict=True)
        )

    return grad, rk4


def synfield_parts(setup, theta):
    P = setup.network.params
    return [a for m in range(3) for a in (P.W(theta, m), P.b(theta, m))]


def relative(a, b):
    return np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b))


def test_data_and_initial_fields_agree_with_the_peer():
    setup = build(parse_config(CONFIG))
    X, Y, params, _ = peer_problem()
    np.testing.assert_array_equal(setup.data.X, X)
    np.testing.assert_array_equal(setup.data.Y, Y)
    for ours, theirs in zip(synfield_parts(setup, setup.theta0), params, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-14, atol=1e-16)


def test_gradient_equals_jax_grad():
    setup = build(parse_config(CONFIG))
    X, Y, params, rates = peer_problem()
    grad, _ = peer_training(X, Y, rates)
    _, ours = setup.cost.gradient(setup.theta0)
    theirs = grad(params)
    errors = [relative(a, b) for a, b in zip(synfield_parts(setup, ours), theirs, strict=True)]
    assert max(errors) < 1e-12, errors


def test_rk4_flow_trajectory_equals_the_jax_trajectory():
    setup = build(parse_config(CONFIG))
    X, Y, params, rates = peer_problem()
    _, rk4 = peer_training(X, Y, rates)
    worst = 0.0
    for state in integrate(setup.rule, setup.rule.initial(setup.theta0), STEPS):
        if state.step > 0:
            params = rk4(params)
        ours = np.concatenate([a.ravel() for a in synfield_parts(setup, state.theta)])
        theirs = np.concatenate([np.ravel(a) for a in params])
        worst = max(worst, relative(ours, theirs))
    assert worst < 1e-10, worst
    # the flow moved: the trajectory compared is not the initial point held still
    assert setup.cost.value(state.theta) < 0.98 * setup.cost.value(setup.theta0)
