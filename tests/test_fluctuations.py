"""SGD fluctuations of a linear layer: the exact moment recursion against Monte Carlo (SPEC 1.8)."""

import numpy as np

from discrete.config import parse_config
from discrete.experiment import build
from discrete.fluctuations import LinearLayerLaw
from discrete.training import GradientDescent, integrate, sample_schedule

SGD = """
[network]
widths = [6, 5]
[data]
samples = 4
input = "sin(pi*(l+1)*y) + 0.3*l"
target = "cos(pi*(l+1)*x) * (1 + x)"
[init]
weight = "0.5*sin(pi*x)*cos(pi*y)"
bias = "0.1*x"
[training]
rule = "sgd"
sampling = "{sampling}"
batch = 2
lr = 1.0
dt = 0.08
steps = 40
seed = 3
[continuum]
enabled = false
"""

MEMBERS = 2000
EVERY = 8


def ensemble(setup, sampling: str) -> tuple[np.ndarray, np.ndarray]:
    """``W``, ``b`` of ``MEMBERS`` SGD runs on the schedules of seeds ``seed + s`` (vectorised
    forward Euler on the batch cost, written out here independently of the training code),
    at every ``EVERY``-th step: shapes ``(times, S, N_out, N_in)`` and ``(times, S, N_out)``."""
    tr = setup.config.training
    X, Y = setup.data.X, setup.data.Y
    dy = setup.convention.layers[0].measure
    net = setup.network
    schedules = np.stack(
        [
            sample_schedule(len(X), tr.batch, tr.steps, tr.seed + s, sampling)
            for s in range(MEMBERS)
        ],
        axis=1,
    )  # (steps, S, B)
    W = np.broadcast_to(net.params.W(setup.theta0, 0), (MEMBERS, *net.layers[0].weight_shape))
    b = np.broadcast_to(net.params.b(setup.theta0, 0), (MEMBERS, net.layers[0].n_out))
    W, b = W.copy(), b.copy()
    Ws, bs = [W.copy()], [b.copy()]
    for k, batch in enumerate(schedules, start=1):
        Xb, Yb = X[batch], Y[batch]  # (S, B, N)
        r = np.einsum("sij,sbj->sbi", W, Xb) + b[:, None, :] - Yb
        # η_W = lr Δy/Δx, η_b = lr/Δx; ∂C/∂W_ij = (1/B) Σ_b Δx_i r_i X_j
        W -= tr.dt * tr.lr * dy[None, None, :] * np.einsum("sbi,sbj->sij", r, Xb) / tr.batch
        b -= tr.dt * tr.lr * r.sum(axis=1) / tr.batch
        if k % EVERY == 0:
            Ws.append(W.copy())
            bs.append(b.copy())
    return np.array(Ws), np.array(bs)


def law_trajectory(setup) -> list[tuple[np.ndarray, ...]]:
    law = LinearLayerLaw.from_setup(setup)
    out = [law.moments()]
    for k in range(1, setup.steps + 1):
        law.step()
        if k % EVERY == 0:
            out.append(law.moments())
    return out


def test_mean_is_full_batch_gradient_descent():
    """E[θ] under i.i.d. batches follows full-batch gradient descent exactly (to rounding)."""
    setup = build(parse_config(SGD.format(sampling="replacement")))
    gd = GradientDescent(setup.cost, setup.dictionary.rates(), setup.dt)
    states = list(integrate(gd, gd.initial(setup.theta0), setup.steps, EVERY))
    net = setup.network
    for state, (W, b, _, _) in zip(states, law_trajectory(setup), strict=True):
        np.testing.assert_allclose(W, net.params.W(state.theta, 0), rtol=0, atol=1e-13)
        np.testing.assert_allclose(b, net.params.b(state.theta, 0), rtol=0, atol=1e-13)


def z_scores(samples: np.ndarray, mean: np.ndarray, var: np.ndarray) -> tuple[float, float]:
    """Largest |ensemble − law| in standard errors, for the mean and for the variance
    (standard error of the sample variance: ((μ₄ − s⁴)/S)^½)."""
    S = samples.shape[0]
    m = samples.mean(axis=0)
    dev = samples - m
    s2 = (dev**2).sum(axis=0) / (S - 1)
    mu4 = (dev**4).mean(axis=0)
    z_mean = np.abs(m - mean) / np.sqrt(s2 / S)
    z_var = np.abs(s2 - var) / np.sqrt((mu4 - s2**2) / S)
    return float(z_mean.max()), float(z_var.max())


def test_moment_recursion_matches_a_monte_carlo_ensemble_of_schedules():
    """2000 i.i.d. schedules: mean and variance of every W_ij, b_i within 4 standard errors
    of the exact recursion at every output time (the initial time has no spread)."""
    setup = build(parse_config(SGD.format(sampling="replacement")))
    Ws, bs = ensemble(setup, "replacement")
    law = law_trajectory(setup)
    worst = []
    for k in range(1, len(law)):
        W, b, var_W, var_b = law[k]
        worst.append(z_scores(Ws[k], W, var_W) + z_scores(bs[k], b, var_b))
    worst = np.array(worst)
    assert worst.max() < 4.0, worst
    # the law has a spread to resolve: the relative standard deviation is O(√(h/B))
    assert 0.05 < np.sqrt(law[-1][2].max()) / np.abs(law[-1][0]).max() < 1.0


def test_epoch_schedules_have_another_law():
    """Permutation epochs (no repeats within an epoch) are less noisy than i.i.d. draws: their
    ensemble variance lies many standard errors below the i.i.d. law — the comparison above
    resolves the difference between the two samplings."""
    setup = build(parse_config(SGD.format(sampling="epochs")))
    Ws, _ = ensemble(setup, "epochs")
    law = law_trajectory(build(parse_config(SGD.format(sampling="replacement"))))
    W, _, var_W, _ = law[-1]
    assert z_scores(Ws[-1], W, var_W)[1] > 10.0
