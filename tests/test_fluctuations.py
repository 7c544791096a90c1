"""SGD fluctuations of a linear layer: the exact moment recursion against Monte Carlo
(docs/physics.md "SGD fluctuations")."""

import json
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from mpi4py import MPI
from problems import observed_order

from continuum.app.ensemble import run_ensemble
from continuum.app.run import lattice_l2, run_experiment
from continuum.fields.equilibrium import equilibrium
from continuum.fields.fluctuations import MomentsModel, SpanLayer
from continuum.settings import Config
from discrete.config import ConfigError
from discrete.experiment import build
from discrete.fluctuations import LinearLayerLaw, LinearNoise
from discrete.training import GradientDescent, integrate, sample_schedule
from tests.configs import Document, document, resolved

SGD = document(
    "linear_sgd",
    network={"widths": [6, 5]},
    training={"lr": 1.0, "seed": 3},
    continuum={"fluctuations": None, "enabled": False},
)
"""A 6 → 5 linear layer under SGD, batches of 2 of 4 samples, no continuum."""

MEMBERS = 2000
EVERY = 8


def ensemble(
    setup, sampling: str, members: int = MEMBERS, every: int = EVERY
) -> tuple[np.ndarray, np.ndarray]:
    """``W``, ``b`` of ``MEMBERS`` SGD runs on the schedules of seeds ``seed + s`` (vectorised
    forward Euler on the batch cost, written out here independently of the training code),
    at every ``every``-th step: shapes ``(times, S, N_out, N_in)`` and ``(times, S, N_out)``."""
    tr = setup.config.training
    X, Y = setup.data.X, setup.data.Y
    dy = setup.convention.layers[0].measure
    net = setup.network
    schedules = np.stack(
        [
            sample_schedule(len(X), tr.batch, tr.steps, tr.seed + s, sampling)
            for s in range(members)
        ],
        axis=1,
    )  # (steps, S, B)
    W = np.broadcast_to(net.params.W(setup.theta0, 0), (members, *net.layers[0].weight_shape))
    b = np.broadcast_to(net.params.b(setup.theta0, 0), (members, net.layers[0].n_out))
    W, b = W.copy(), b.copy()
    Ws, bs = [W.copy()], [b.copy()]
    for k, batch in enumerate(schedules, start=1):
        Xb, Yb = X[batch], Y[batch]  # (S, B, N)
        r = np.einsum("sij,sbj->sbi", W, Xb) + b[:, None, :] - Yb
        # η_W = lr Δy/Δx, η_b = lr/Δx; ∂C/∂W_ij = (1/B) Σ_b Δx_i r_i X_j
        W -= tr.dt * tr.lr * dy[None, None, :] * np.einsum("sbi,sbj->sij", r, Xb) / tr.batch
        b -= tr.dt * tr.lr * r.sum(axis=1) / tr.batch
        if k % every == 0:
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
    setup = build(resolved(SGD))
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
    setup = build(resolved(SGD))
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
    setup = build(resolved(SGD, training={"sampling": "epochs"}))
    Ws, _ = ensemble(setup, "epochs")
    law = law_trajectory(build(resolved(SGD)))
    W, _, var_W, _ = law[-1]
    assert z_scores(Ws[-1], W, var_W)[1] > 10.0


# --------------------------------------------------------------------------- the continuum

MOMENTS = document("linear_sgd", output={"every": 8, "quiet": True})
"""The linear layer under SGD with its moment law, written every eighth step."""


def at_width(base: Document, n: int, **sections: dict | None) -> Config:
    """``base`` as an ``n`` → ``n`` layer with ``sections`` applied, resolved."""
    return resolved(document(base, network={"widths": [n, n]}), **sections)


def moments(n: int, **sections: dict | None) -> Config:
    """:data:`MOMENTS` at width ``n`` with ``sections`` applied."""
    return at_width(MOMENTS, n, **sections)


def discrete_variance(setup) -> tuple[np.ndarray, np.ndarray]:
    """``Var w = Var W/Δy²`` and ``Var b`` of the width-N law at the final step."""
    law = LinearLayerLaw.from_setup(setup)
    for _ in range(setup.steps):
        law.step()
    _, _, var_W, var_b = law.moments()
    return var_W / setup.convention.layers[0].measure ** 2, var_b


def test_discrete_variance_converges_to_the_continuum_variance_at_order_two():
    """At fixed h/B the width-N law's Var w(x_i, y_j) approaches the continuum's
    ``w_var_at_lattice`` like 1/N² (midpoint Riemann sums of the Gram matrix and of the
    initial residuals); measured 3.7e-5, 9.3e-6, 2.3e-6 (orders 2.00, 2.00)."""
    widths = np.array([16, 32, 64])
    errors = []
    for n in widths:
        setup = build(moments(n))
        var_w, var_b = discrete_variance(setup)
        model = MomentsModel(setup)
        model.advance_to(setup.steps * setup.dt)
        cont_w, cont_b = model.variance_fields()
        dx, dy = setup.convention.layers[1].measure, setup.convention.layers[0].measure
        errors.append(
            np.sqrt(lattice_l2(var_w - cont_w, dx, dy) ** 2 + np.sum(dx * (var_b - cont_b) ** 2))
        )
    order = observed_order(1.0 / widths, errors)
    assert abs(order - 2.0) <= 0.2, (errors, order)
    assert errors[-1] < 1e-3 * lattice_l2(cont_w, dx, dy)


def test_run_writes_the_variance_field(tmp_path):
    """``synfield run`` with fluctuations = "moments" records Var w and Var b at the lattice
    at every output step; at width 16 they match the discrete law to its 1/N² error."""
    config = moments(16)
    run_experiment(config, tmp_path, quiet=True)
    with h5py.File(tmp_path / "fields.h5", "r") as f:
        var_w = f["/continuum/layer0/w_var_at_lattice"][()]
        var_b = f["/continuum/layer0/b_var_at_lattice"][()]
        times = f["/continuum/times"][()]
    assert var_w.shape == (6, 16, 16) and var_b.shape == (6, 16)
    np.testing.assert_allclose(times, 0.08 * 8 * np.arange(6), rtol=0, atol=1e-12)
    assert np.all(var_w[0] == 0.0)
    fluctuations = json.loads((tmp_path / "summary.json").read_text())["fluctuations"]
    assert fluctuations["total_variance_w"] == pytest.approx(
        float(np.mean(var_w[-1])), rel=1e-12
    )  # the lattice integral of the last row over the unit square (cell measures 1/16²)
    ref_w, ref_b = discrete_variance(build(config))
    assert np.abs(var_w[-1] - ref_w).max() <= 3e-3 * ref_w.max()
    assert np.abs(var_b[-1] - ref_b).max() <= 3e-3 * ref_b.max()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"training": {"sampling": "epochs"}}, "sampling = 'replacement'"),
        ({"continuum": {"scheme": "theta"}}, "valid schemes: 'law', 'lna'"),
    ],
)
def test_moments_refuse_what_they_cannot_solve(change, message):
    with pytest.raises(ConfigError, match="fluctuations") as info:
        moments(8, **change)
    assert message in str(info.value)


def test_moments_of_a_linear_layer_are_the_exact_law_and_of_deeper_networks_linear_noise():
    """The exact law where it exists; a network of two layers (or a nonlinear one) gets the
    linear-noise approximation (scheme lna), which the one layer may also ask for."""
    assert moments(8).continuum.scheme == "law"
    assert resolved(MOMENTS, network={"widths": [8, 5, 8]}).continuum.scheme == "lna"
    assert moments(8, continuum={"scheme": "lna"}).continuum.scheme == "lna"


# --------------------------------------------------------------------------- ensembles


def test_schedule_ensemble_statistics_and_covariance_sketch(tmp_path):
    """``ensemble --over schedule``: the members are the SGD runs of seeds ``seed + s`` (their
    mean and spread agree with the independent vectorised runs above to rounding); the rank-16
    Nyström sketch reproduces the sample covariance of the fields, whose rank is at most
    L² = 16; the mean and variance lie within sampling error of the continuum moments."""
    members, n = 300, 8
    config = moments(n)
    result = run_ensemble(config, members, tmp_path, MPI.COMM_SELF, over="schedule")
    setup = build(config)
    Ws, bs = ensemble(setup, "replacement", members)
    dy = setup.convention.layers[0].measure
    flat = np.concatenate([(Ws / dy).reshape(*Ws.shape[:2], -1), bs], axis=2)  # (nt, S, P)
    with h5py.File(tmp_path / "ensemble.h5", "r") as f:
        w_mean, w_std = f["/ensemble/layer0/w_mean"][()], f["/ensemble/layer0/w_std"][()]
        b_std = f["/ensemble/layer0/b_std"][()]
        values, vectors = (
            f["/ensemble/covariance/values"][()],
            f["/ensemble/covariance/vectors"][()],
        )
        var_c = f["/continuum/layer0/w_var_at_lattice"][()]
    np.testing.assert_allclose(w_mean, (Ws / dy).mean(axis=1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(w_std, (Ws / dy).std(axis=1, ddof=1), rtol=0, atol=1e-10)
    np.testing.assert_allclose(b_std, bs.std(axis=1, ddof=1), rtol=0, atol=1e-10)
    for k in range(1, len(flat)):
        sample = np.cov(flat[k], rowvar=False)
        sketch = (vectors[k] * values[k]) @ vectors[k].T
        assert np.linalg.matrix_rank(sample, tol=1e-12 * np.abs(sample).max()) <= 16
        assert np.abs(sketch - sample).max() <= 1e-8 * np.abs(sample).max()
    dx = setup.convention.layers[1].measure
    se_mean = lattice_l2(w_std[-1], dx, dy) / np.sqrt(members)
    assert result["l2_error_mean"][-1] <= 4 * se_mean
    se_var = np.sqrt(2.0 / (members - 1)) * lattice_l2(var_c[-1], dx, dy)
    assert result["l2_error_var"][-1] <= 4 * se_var
    assert result["l2_error_var"][-1] > 1e-3 * se_var  # a sampling error, not an identity


def test_schedule_ensemble_needs_sgd(tmp_path):
    config = moments(4, training={"rule": "gd", "sampling": None, "batch": None}, continuum=None)
    with pytest.raises(ValueError, match="over schedule needs \\[training\\] rule = 'sgd'"):
        run_ensemble(config, 4, tmp_path, MPI.COMM_SELF, over="schedule")


@pytest.mark.mpi
def test_schedule_ensemble_on_two_ranks_is_bit_identical_to_one_rank():
    comm = MPI.COMM_WORLD
    path = Path(comm.bcast(tempfile.mkdtemp() if comm.rank == 0 else None, root=0))
    config = moments(6)
    run_ensemble(config, 7, path / "two", comm, over="schedule")
    if comm.rank == 0:
        run_ensemble(config, 7, path / "one", MPI.COMM_SELF, over="schedule")
        with (
            h5py.File(path / "one" / "ensemble.h5") as a,
            h5py.File(path / "two" / "ensemble.h5") as b,
        ):
            for name in (
                "/ensemble/layer0/w_mean",
                "/ensemble/layer0/w_std",
                "/ensemble/layer0/b_std",
                "/ensemble/covariance/values",
                "/continuum/layer0/w_var_at_lattice",
            ):
                np.testing.assert_array_equal(b[name][()], a[name][()])
    comm.Barrier()


# --------------------------------------------------------------------------- equilibrium


def unfittable(dt: float) -> Config:
    """:data:`MOMENTS` at width 8 on inputs the layer cannot fit, steps ``dt`` to ``t = 16``."""
    return moments(
        8, data={"input": "sin(pi*y + pi*l/2)"}, training={"dt": dt, "steps": None, "t_end": 16.0}
    )


def test_lyapunov_covariance_is_the_small_step_limit_of_the_sgd_law():
    """Data the layer cannot fit (four inputs in a 3-dimensional span: r* ≠ 0, Gram
    eigenvalues 1, 1, 4): the exact SGD law at t = 16 (eight variance relaxation times)
    against the Lyapunov solution, h = 0.04, 0.02, 0.01: Var w at relative order 1 in h."""
    hs = np.array([0.04, 0.02, 0.01])
    errors = []
    for h in hs:
        setup = build(unfittable(h))
        model = MomentsModel(setup)
        model.advance_to(16.0)
        var_w, _ = model.variance_fields()
        stationary = equilibrium(model.layer, h, 2)
        errors.append(np.linalg.norm(var_w - stationary.w_var) / np.linalg.norm(stationary.w_var))
    assert abs(observed_order(hs, errors) - 1.0) <= 0.2, errors
    assert errors[-1] < 0.05


def test_lyapunov_covariance_against_a_long_time_ensemble():
    """2000 SGD runs of width 8 (h = 0.01) at t = 16: (i) the ensemble variance of every w_ij
    within 4 standard errors of the exact law; (ii) the total variance ∫∫ Var w and the
    temperature T_k of every mode (the residual variance along the Gram eigenvector u_k over
    L, averaged over x) within 4 standard errors plus 1 % (the O(h) distance of the law from
    its Lyapunov limit) of the Lyapunov equilibrium; (iii) the mean residual is the
    unrepresentable part r* of the targets."""
    setup = build(unfittable(0.01))
    Ws, bs = ensemble(setup, "replacement", every=setup.steps)
    layer = SpanLayer(setup)
    stationary = equilibrium(layer, 0.01, 2)
    dx, dy = setup.convention.layers[1].measure, setup.convention.layers[0].measure
    w = Ws[-1] / dy
    S = len(w)
    _, z_var = z_scores(w, w.mean(axis=0), law_variance(setup))
    assert z_var < 4.0
    total = np.einsum("i,j,sij->s", dx, dy, (w - w.mean(axis=0)) ** 2) * S / (S - 1)
    expected = np.sum(dx[:, None] * dy[None, :] * stationary.w_var)
    assert abs(total.mean() - expected) <= 4 * total.std() / np.sqrt(S) + 0.01 * expected
    X, Y = setup.data.X, setup.data.Y
    r = np.einsum("sij,lj->sil", Ws[-1], X) + bs[-1][:, :, None] - Y.T[None]  # (S, N_out, L)
    g, U = np.linalg.eigh(layer.gram)
    modes = np.einsum("sil,lk->sik", r - r.mean(axis=0), U[:, g > 1e-12 * g.max()])
    temperature = np.einsum("i,sik->sk", dx, modes**2) / layer.samples * S / (S - 1)
    expected_t = dx @ stationary.temperatures
    se_t = temperature.std(axis=0) / np.sqrt(S)
    assert np.all(np.abs(temperature.mean(axis=0) - expected_t) <= 4 * se_t + 0.01 * expected_t)
    assert (
        np.abs(r.mean(axis=0) - stationary.minimum).max() < 0.02 * np.abs(stationary.minimum).max()
    )


def law_variance(setup) -> np.ndarray:
    """The exact law's Var w at the end of the run (the continuum's, at this width)."""
    model = MomentsModel(setup)
    model.advance_to(setup.steps * setup.dt)
    return model.variance_fields()[0]


@pytest.mark.parametrize("fluctuations", ["moments", "sde"])
def test_resume_restores_the_law_and_the_path(tmp_path, fluctuations):
    """A file cut after three of six output steps and resumed equals the uninterrupted run:
    the moment law's state and the SME path (its increments are seeded by the step)."""
    from continuum.io.integrity import copy_steps

    sde = {"fluctuations": "sde", "sde_scheme": "weak-order-2"}
    config = moments(8, continuum=sde if fluctuations == "sde" else {})
    full, cut = tmp_path / "full", tmp_path / "cut"
    run_experiment(config, full, quiet=True)
    cut.mkdir()
    with (
        h5py.File(full / "fields.h5") as src,
        h5py.File(cut / "fields.h5", "w", libver="latest") as dst,
    ):
        copy_steps(src, dst, 3)
    run_experiment(config, cut, resume=True, quiet=True)
    names = [
        "/continuum/layer0/w_at_lattice",
        "/continuum/layer0/b_at_lattice",
        "/discrete/layer0/W",
    ]
    if fluctuations == "moments":
        names.append("/continuum/layer0/w_var_at_lattice")
    with h5py.File(full / "fields.h5") as a, h5py.File(cut / "fields.h5") as b:
        assert len(b["/discrete/times"]) == 6
        for name in names:
            np.testing.assert_allclose(b[name][()], a[name][()], rtol=0, atol=1e-13, err_msg=name)
        assert (
            np.abs(
                a["/continuum/layer0/w_at_lattice"][-1] - a["/continuum/layer0/w_at_lattice"][3]
            ).max()
            > 1e-3
        )
    # the state read back is the state at that step, without stepping again
    from continuum.models.limit import continuum_model

    model = continuum_model(build(config), MPI.COMM_SELF)
    with h5py.File(full / "fields.h5") as a:
        model.set_state(model.read_state(a, 2), int(a["/discrete/state/step"][2]))
        np.testing.assert_allclose(
            model.lattice_fields()[0][0], a["/continuum/layer0/w_at_lattice"][2], rtol=0, atol=1e-14
        )
    assert model.t == pytest.approx(2 * 8 * 0.08)


# --------------------------------------------------------------------------- nonlinear


def tanh_sgd(dt: float) -> Config:
    """:data:`SGD` on a 5 → 4 → 3 tanh network, batches of one sample, steps ``dt`` to
    ``t = 2``."""
    return resolved(
        SGD,
        network={"widths": [5, 4, 3], "activation": "tanh"},
        data={"target": "1.5*cos(pi*(l+1)*x)"},
        init={"weight": "2.0*cos(pi*(x - y))"},
        training={"lr": None, "batch": 1, "dt": dt, "steps": None, "t_end": 2.0, "seed": 4},
    )


def tanh_ensemble(setup, members: int) -> np.ndarray:
    """Final θ of ``members`` SGD runs of a 2-layer tanh network with identity output on the
    schedules of seeds ``seed + s`` (vectorised forward and backward passes, written out
    here), shape ``(S, P)``."""
    tr, net = setup.config.training, setup.network
    X, Y = setup.data.X, setup.data.Y
    dx = setup.convention.layers[-1].measure
    rates = setup.dictionary.rates()
    P = net.params
    theta = np.tile(setup.theta0, (members, 1))
    schedules = np.stack(
        [
            sample_schedule(len(X), tr.batch, tr.steps, tr.seed + s, "replacement")
            for s in range(members)
        ],
        axis=1,
    )
    for batch in schedules:
        W0, b0, W1, b1 = P.W(theta, 0), P.b(theta, 0), P.W(theta, 1), P.b(theta, 1)
        x = X[batch]  # (S, B, N0)
        h1 = np.tanh(np.einsum("sij,sbj->sbi", W0, x) + b0[:, None])
        dZ = dx * (np.einsum("sij,sbj->sbi", W1, h1) + b1[:, None] - Y[batch]) / tr.batch
        delta = (1 - h1**2) * np.einsum("sbi,sij->sbj", dZ, W1)
        grad = np.zeros_like(theta)
        P.W(grad, 1)[...] = np.einsum("sbi,sbj->sij", dZ, h1)
        P.b(grad, 1)[...] = dZ.sum(axis=1)
        P.W(grad, 0)[...] = np.einsum("sbi,sbj->sij", delta, x)
        P.b(grad, 0)[...] = delta.sum(axis=1)
        theta = theta - tr.dt * rates * grad
    return theta


def test_linear_noise_covariance_of_a_tanh_network_is_first_order_in_h():
    """2-layer tanh (5 → 4 → 3, L = 4, B = 1, saturating weights) at t = 2: the linear-noise
    approximation against 40000 SGD runs, h = 0.2, 0.1, 0.05. The relative (Frobenius)
    distance of the covariance falls like h (measured 7.9e-2, 4.2e-2, 2.5e-2, order 0.82
    over a sampling floor of about 0.8e-2); the mean's distance from full-batch GD, relative
    to the displacement, at order 1 (9.1e-2, 4.6e-2, 2.3e-2)."""
    hs = np.array([0.2, 0.1, 0.05])
    errors, mean_errors = [], []
    for h in hs:
        setup = build(tanh_sgd(h))
        lna = LinearNoise(setup.cost, setup.dictionary.rates(), h, 1, setup.theta0)
        for _ in range(setup.steps):
            lna.step()
        runs = tanh_ensemble(setup, 40000)
        sample = np.cov(runs, rowvar=False)
        errors.append(np.linalg.norm(sample - lna.covariance) / np.linalg.norm(lna.covariance))
        moved = np.linalg.norm(lna.mean - setup.theta0)
        mean_errors.append(np.linalg.norm(runs.mean(axis=0) - lna.mean) / moved)
    assert abs(observed_order(hs, errors) - 1.0) <= 0.3, errors
    assert abs(observed_order(hs, mean_errors) - 1.0) <= 0.2, mean_errors
    assert errors[0] < 0.15
