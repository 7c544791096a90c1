"""The linear-noise approximation of SGD with a factored covariance, discrete and continuum
(docs/physics.md "SGD fluctuations")."""

import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from mpi4py import MPI
from problems import observed_order

from continuum.app.run import lattice_l2, run_experiment
from continuum.models.limit import continuum_model
from discrete.experiment import build
from discrete.fluctuations import LinearNoise
from discrete.linear_noise import discrete_linear_noise, field_variances
from discrete.training import sample_schedule
from tests.configs import document, resolved

NOISY = document(
    "deep_tanh",
    training={
        "rule": "sgd",
        "sampling": "replacement",
        "batch": 1,
        "dt": 0.025,
        "t_end": 2.0,
        "seed": 5,
    },
    continuum={"degree": 4, "fluctuations": "moments"},
)
"""The deep-tanh problem under SGD, batches of one sample to ``t = 2``, with its linear-noise
law on 8 P4 cells."""
MILD = {"amplitude": 0.5, "scale": 0.8}
SATURATING = {"amplitude": 1.5, "scale": 2.0}


def setup_of(n: int, dt: float, shape: dict = MILD):
    """Two tanh layers of width ``n`` on four samples under SGD to ``t = 1`` (P6 law), the
    targets' amplitude and the weights' scale from ``shape``."""
    return build(
        resolved(
            NOISY,
            network={"widths": [n, n, n]},
            data={"samples": 4, "target": f"{shape['amplitude']}*cos(pi*(l+1)*x)"},
            init={"weight": f"{shape['scale']}*cos(pi*(x - y))"},
            training={"dt": dt, "t_end": 1.0, "seed": 7},
            continuum={"degree": 6},
        )
    )


def sgd_ensemble(setup, members: int, every: int | None = None) -> np.ndarray:
    """θ of ``members`` SGD runs of a feed-forward tanh network with identity output on the
    i.i.d. schedules of seeds ``seed + s`` (forward and backward passes written out here,
    vectorised over the members) after every ``every``-th step (default: the last only),
    shape ``(times, S, P)``."""
    tr, net = setup.config.training, setup.network
    X, Y = setup.data.X, setup.data.Y
    dx = setup.convention.layers[-1].measure
    rates, P, M = setup.dictionary.rates(), net.params, net.depth
    theta = np.tile(setup.theta0, (members, 1))
    schedules = np.stack(
        [
            sample_schedule(len(X), tr.batch, tr.steps, tr.seed + s, "replacement")
            for s in range(members)
        ],
        axis=1,
    )
    every = every or tr.steps
    snapshots = []
    for k, batch in enumerate(schedules, start=1):
        h = [X[batch]]
        for m in range(M):
            z = np.einsum("sij,sbj->sbi", P.W(theta, m), h[-1]) + P.b(theta, m)[:, None]
            h.append(np.tanh(z) if m + 1 < M else z)
        delta = dx * (h[-1] - Y[batch]) / tr.batch
        grad = np.zeros_like(theta)
        for m in range(M - 1, -1, -1):
            P.W(grad, m)[...] = np.einsum("sbi,sbj->sij", delta, h[m])
            P.b(grad, m)[...] = delta.sum(axis=1)
            if m > 0:
                delta = (1 - h[m] ** 2) * np.einsum("sbi,sij->sbj", delta, P.W(theta, m))
        theta = theta - tr.dt * rates * grad
        if k % every == 0:
            snapshots.append(theta)
    return np.array(snapshots)


def lattice_norm(setup, w: list) -> float:
    conv = setup.convention
    return float(
        np.sqrt(
            sum(
                lattice_l2(a, conv.layers[m + 1].measure, conv.layers[m].measure) ** 2
                for m, a in enumerate(w)
            )
        )
    )


def discrete_law(setup):
    law = discrete_linear_noise(setup)
    for _ in range(setup.steps):
        law.step()
    return law


def test_factored_covariance_equals_the_dense_linear_noise_recursion():
    """The factored law (rank-L sources, J F by directional differences, truncation)
    against the dense recursion C ← K C Kᵀ + (h²/B) D Σ D with the full Hessian: equal to
    the differences' error (measured 6e-11 relative), the mean to rounding."""
    setup = setup_of(4, 0.1, SATURATING)
    dense = LinearNoise(setup.cost, setup.dictionary.rates(), 0.1, 1, setup.theta0)
    for _ in range(setup.steps):
        dense.step()
    law = discrete_law(setup)
    F = law.theta_factor
    assert np.linalg.norm(F @ F.T - dense.covariance) < 1e-8 * np.linalg.norm(dense.covariance)
    np.testing.assert_allclose(law.theta, dense.mean, rtol=0, atol=1e-14)
    assert law.rank < len(law.theta)


def test_continuum_linear_noise_is_the_width_limit_of_the_discrete_one():
    """Var w and Var b of both layers of a 2-layer tanh network at t = 1 (h = 0.05, B = 1):
    the discrete linear-noise law at N = 16, 32, 64 against the continuum's at the lattice
    (degree 6 on 8 cells): errors 3.2e-6, 7.9e-7, 2.0e-7 (‖Var‖ = 3.7e-4), order 2."""
    model = continuum_model(setup_of(16, 0.05), MPI.COMM_SELF)
    model.advance_to(1.0)
    widths, errors = np.array([16, 32, 64]), []
    for n in widths:
        setup = setup_of(int(n), 0.05)
        var_w, var_b = field_variances(setup, discrete_law(setup).variances())
        cont_w, cont_b = model.layer_variances(setup.convention)
        dx = [setup.convention.layers[m + 1].measure for m in range(2)]
        err_b = sum(np.sum(dx[m] * (var_b[m] - cont_b[m]) ** 2) for m in range(2))
        err_w = lattice_norm(setup, [a - b for a, b in zip(var_w, cont_w, strict=True)])
        errors.append(np.hypot(err_w, np.sqrt(err_b)))
        assert err_w < 0.02 * lattice_norm(setup, cont_w)
    assert abs(observed_order(1.0 / widths, errors) - 2.0) <= 0.2, errors


def test_continuum_linear_noise_against_sgd_runs_is_first_order_in_h():
    """Saturating weights (width 12, t = 1): the continuum linear-noise Var w at the lattice
    against 20000 SGD runs, h = 0.2, 0.1, 0.05: relative distance 17.5 %, 10.2 %, 5.5 %
    (order 0.84; the sampling floor is 0.9 %, the width error 0.6 %): the neglected terms
    are O(h) relative."""
    hs = np.array([0.2, 0.1, 0.05])
    errors = []
    for h in hs:
        setup = setup_of(12, float(h), SATURATING)
        model = continuum_model(setup, MPI.COMM_SELF)
        model.advance_to(1.0)
        cont_w, _ = model.layer_variances()
        runs_w, _ = field_variances(setup, sgd_ensemble(setup, 20000)[-1].var(axis=0, ddof=1))
        diff = [a - b for a, b in zip(runs_w, cont_w, strict=True)]
        errors.append(lattice_norm(setup, diff) / lattice_norm(setup, cont_w))
    assert abs(observed_order(hs, errors) - 1.0) <= 0.3, errors
    assert errors[-1] < 0.08


def test_linear_noise_variances_within_standard_errors_of_sgd_runs_at_small_h():
    """h = 0.0125 (80 steps, width 8): the variance of every W_ij and b_i of 20000 SGD runs
    against the linear-noise law, in units of its standard error √((m₄ − s⁴)/S): RMS 0.92,
    largest 3.1 of 144 (at h = 0.1 the RMS is 5.1: the O(h) terms are resolved there)."""
    setup = setup_of(8, 0.0125)
    law = discrete_law(setup)
    theta = sgd_ensemble(setup, 20000)[-1]
    d = theta - theta.mean(axis=0)
    S = len(theta)
    var = np.sum(d**2, axis=0) / (S - 1)
    se = np.sqrt((np.mean(d**4, axis=0) - var**2) / S)
    z = (var - law.variances()) / se
    assert np.sqrt(np.mean(z**2)) < 1.3, z
    assert np.abs(z).max() < 4.5, z


# --------------------------------------------------------------------------- depth


def layer_totals(setup, var_w: list) -> np.ndarray:
    """``∫∫ Var w^(m) dx dy`` of every layer by the lattice rule (also for a stack of
    per-member squared deviations, leading axis kept)."""
    conv = setup.convention
    return np.stack(
        [
            np.einsum("i,j,...ij->...", conv.layers[m + 1].measure, conv.layers[m].measure, v)
            for m, v in enumerate(var_w)
        ],
        axis=-1,
    )


def test_noise_from_the_output_boundary_heats_the_layers_in_order_of_depth():
    """Three tanh layers (width 8, L = 3, B = 1, h = 0.025) to t = 2, eight output times:
    (i) the per-layer total variance ∫∫ Var w^(m) of the linear-noise law against 4000 SGD
    runs, within 4 standard errors at every time and layer (measured |z| ≤ 2.4); (ii) the
    layer temperatures T_m = ⟨δθ_m·(Hδθ)_m⟩ rise towards the output boundary, where the
    residual noise enters, at every time: T_0 < T_1 < T_2 (at t = 2: 1.8e-5, 7.1e-5,
    1.08e-3; each back-propagation through a layer divides the source by ‖σ'(z) w‖²), and
    the ensemble's temperatures at t = 2 (with the Hessian at the mean) lie within 4
    standard errors + 3 % of the law's."""
    setup = build(resolved(NOISY))
    law = discrete_linear_noise(setup)
    every = setup.steps // 8
    totals, temperatures = [], []
    for k in range(1, setup.steps + 1):
        law.step()
        if k % every == 0:
            totals.append(layer_totals(setup, field_variances(setup, law.variances())[0]))
            temperatures.append(law.potential_temperatures())
    snapshots = sgd_ensemble(setup, 4000, every)
    S = snapshots.shape[1]
    for expected, T, theta in zip(totals, temperatures, snapshots, strict=True):
        d = theta - theta.mean(axis=0)
        members = layer_totals(setup, field_variances(setup, d**2)[0]) * S / (S - 1)
        z = (members.mean(axis=0) - expected) / (members.std(axis=0) / np.sqrt(S))
        assert np.abs(z).max() < 4.0, (z, expected)
        assert T[0] < T[1] < T[2], T
    hessian = LinearNoise(setup.cost, setup.dictionary.rates(), setup.dt, 1, law.theta).hessian(
        law.theta
    )
    d = snapshots[-1] - snapshots[-1].mean(axis=0)
    hd = d @ hessian
    for m, group in enumerate(law.groups):
        sample = np.sum(d[:, group] * hd[:, group], axis=1) * S / (S - 1)
        bound = 4 * sample.std() / np.sqrt(S) + 0.03 * temperatures[-1][m]
        assert abs(sample.mean() - temperatures[-1][m]) <= bound, (m, sample.mean())


# --------------------------------------------------------------------------- runs

RUN = document(
    NOISY,
    network={"widths": [6, 6, 6, 6]},
    training={"t_end": 0.5},
    continuum={"cells": 4},
    output={"every": 5, "quiet": True},
)
RUN_SERIES = [f"/continuum/layer{m}/w_var_at_lattice" for m in range(3)] + [
    "/continuum/layer2/b_var_at_lattice",
    "/continuum/fluctuations/temperature_potential",
    "/continuum/layer1/w_at_lattice",
]


@pytest.mark.mpi
def test_linear_noise_run_on_two_ranks_equals_one_rank():
    """The continuum linear-noise law is replicated on every rank: a 2-rank run writes the
    variance fields and temperatures of the 1-rank run to 1e-12 (relative)."""
    comm = MPI.COMM_WORLD
    path = Path(comm.bcast(tempfile.mkdtemp() if comm.rank == 0 else None, root=0))
    config = resolved(RUN)
    run_experiment(config, path / "two", comm, quiet=True)
    if comm.rank == 0:
        run_experiment(config, path / "one", MPI.COMM_SELF, quiet=True)
        with h5py.File(path / "one" / "fields.h5") as a, h5py.File(path / "two" / "fields.h5") as b:
            for name in RUN_SERIES:
                ref = a[name][()]
                np.testing.assert_allclose(b[name][()], ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    comm.Barrier()


def test_linear_noise_run_resumes_by_replaying_the_law(tmp_path):
    """A file cut after two of its output steps and resumed writes the uninterrupted run's
    variance fields and temperatures (the deterministic law is replayed from t = 0)."""
    from continuum.io.integrity import copy_steps

    config = resolved(RUN)
    full, cut = tmp_path / "full", tmp_path / "cut"
    summary = run_experiment(config, full, quiet=True)
    assert len(summary["fluctuations"]["temperature_potential"]) == 3
    cut.mkdir()
    with (
        h5py.File(full / "fields.h5") as src,
        h5py.File(cut / "fields.h5", "w", libver="latest") as dst,
    ):
        copy_steps(src, dst, 2)
    run_experiment(config, cut, resume=True, quiet=True)
    with h5py.File(full / "fields.h5") as a, h5py.File(cut / "fields.h5") as b:
        assert len(b["/discrete/times"]) == len(a["/discrete/times"])
        for name in RUN_SERIES:
            np.testing.assert_allclose(b[name][()], a[name][()], rtol=0, atol=1e-14, err_msg=name)
        assert a[RUN_SERIES[0]][-1].max() > 1.2 * a[RUN_SERIES[0]][2].max() > 0
