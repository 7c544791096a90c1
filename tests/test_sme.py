"""The stochastic modified equation of SGD on a linear layer: law, schemes, paths (docs/physics.md
"SGD fluctuations")."""

import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from mpi4py import MPI
from problems import observed_order

from continuum.app.run import run_experiment
from continuum.fields.fluctuations import PathModel, SpanLayer
from continuum.fields.sme import SME, Scheme
from continuum.settings import Config
from discrete.config import ConfigError
from discrete.experiment import build
from discrete.fluctuations import SpanLaw
from tests.configs import resolved

T_END, BATCH = 1.0, 2


def sde(scheme: str, **continuum: str | float) -> Config:
    """The 12 → 10 linear layer under SGD (3 samples, batches of ``BATCH``, ten steps of 0.1 to
    ``T_END``) with its SME path by ``scheme`` (and ``continuum`` keys)."""
    return resolved(
        "linear_sgd",
        network={"widths": [12, 10]},
        data={"samples": 3},
        training={"batch": BATCH, "dt": 0.1, "steps": 10, "seed": 5},
        continuum={"fluctuations": "sde", "sde_scheme": scheme, **continuum},
        output={"every": 5, "quiet": True},
    )


@pytest.fixture(scope="module")
def layer() -> SpanLayer:
    return SpanLayer(build(sde("euler-maruyama")))


def relative_errors(layer, law, reference) -> tuple[float, float]:
    """Relative L2 distances of the mean field and of the variance field at the lattice."""
    (w, _), (w0, _) = layer.fields(law[0]), layer.fields(reference[0])
    (v, _), (v0, _) = layer.variances(law[1]), layer.variances(reference[1])
    return float(np.linalg.norm(w - w0) / np.linalg.norm(w0)), float(
        np.linalg.norm(v - v0) / np.linalg.norm(v0)
    )


@pytest.mark.parametrize(
    ("scheme", "order", "band"), [("euler-maruyama", 1, 0.2), ("weak-order-2", 2, 0.3)]
)
def test_schemes_converge_weakly_to_the_sme_law(layer, scheme, order, band):
    """The schemes' exact laws against the SME's (matrix exponentials) at t = 1, Δt = 1/10,
    1/20, 1/40: mean and variance fields at weak order 1 (EM; measured 1.03, 1.04) and 2
    (weak-order-2; measured 2.08, 2.04)."""
    sme = SME(layer.gram, 0.1, BATCH)
    reference = sme.law(T_END)
    steps = np.array([10, 20, 40])
    errors = np.array(
        [relative_errors(layer, Scheme(sme, scheme, T_END / n).law(n), reference) for n in steps]
    )
    for column in errors.T:
        assert abs(observed_order(T_END / steps, column) - order) <= band, errors


def test_sme_approaches_the_sgd_law_at_order_one_in_h(layer):
    """SGD with step h against its SME (noise √(h/B)) at t = 1, h = 1/20, 1/40, 1/80:
    the mean field and the relative variance field at weak order 1 in h."""
    steps = np.array([20, 40, 80])
    errors = []
    for n in steps:
        law = SpanLaw(layer.gram, T_END / n, BATCH)
        for _ in range(n):
            law.step()
        errors.append(
            relative_errors(
                layer, (law.mean, law.second), SME(layer.gram, T_END / n, BATCH).law(T_END)
            )
        )
    for column in np.array(errors).T:
        assert abs(observed_order(T_END / steps, column) - 1.0) <= 0.2, errors


def test_euler_maruyama_with_the_sgd_step_has_the_sgd_moments(layer):
    """EM with Δt = h is, in its first two moments, SGD itself: E[K] = I + hA = M̄ and
    Σ_j B_j Z B_jᵀ h = (h²/B) P Σ̄ Pᵀ — identical laws to rounding."""
    h = 0.1
    em = Scheme(SME(layer.gram, h, BATCH), "euler-maruyama", h).law(10)
    law = SpanLaw(layer.gram, h, BATCH)
    for _ in range(10):
        law.step()
    np.testing.assert_allclose(em[0], law.mean, rtol=0, atol=1e-13)
    np.testing.assert_allclose(em[1], law.second, rtol=0, atol=1e-12 * np.abs(law.second).max())


@pytest.mark.parametrize("scheme", ["euler-maruyama", "weak-order-2"])
def test_seeded_paths_sample_the_scheme_law(scheme):
    """2000 paths of the run’s model (seeds 0 … 1999) at t = 1: mean and variance of every
    w(x_i, y_j) within 4 standard errors of the scheme's exact law."""
    model = PathModel(build(sde(scheme)))
    paths = []
    for seed in range(2000):
        model.seed, model.steps, model.propagator = seed, 0, model.sme.start()
        model.advance_to(T_END)
        paths.append(model.lattice_fields()[0][0])
    paths = np.array(paths)
    mean, var = (
        model.layer.fields(model.scheme.law(10)[0])[0],
        model.layer.variances(model.scheme.law(10)[1])[0],
    )
    S = len(paths)
    dev = paths - paths.mean(axis=0)
    s2 = (dev**2).sum(axis=0) / (S - 1)
    z_mean = np.abs(paths.mean(axis=0) - mean) / np.sqrt(s2 / S)
    z_var = np.abs(s2 - var) / np.sqrt(((dev**4).mean(axis=0) - s2**2) / S)
    assert z_mean.max() < 4 and z_var.max() < 4, (z_mean.max(), z_var.max())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fluctuations": "moments"}, '[continuum] sde_scheme: integrates fluctuations = "sde"'),
        (
            {"dt": 0.03},
            "[continuum] dt = 0.03 with [continuum] scheme = 'sde': the continuum's own step "
            "must divide",
        ),
    ],
)
def test_sde_refuses_what_it_cannot_integrate(change, message):
    with pytest.raises(ConfigError) as info:
        sde("weak-order-2", **change)
    assert message in str(info.value)


@pytest.mark.mpi
def test_sde_path_on_two_ranks_is_the_one_rank_path():
    comm = MPI.COMM_WORLD
    path = Path(comm.bcast(tempfile.mkdtemp() if comm.rank == 0 else None, root=0))
    config = sde("weak-order-2")
    run_experiment(config, path / "two", comm, quiet=True)
    if comm.rank == 0:
        run_experiment(config, path / "one", MPI.COMM_SELF, quiet=True)
        with h5py.File(path / "one" / "fields.h5") as a, h5py.File(path / "two" / "fields.h5") as b:
            for name in ("/continuum/layer0/w_at_lattice", "/continuum/layer0/b_at_lattice"):
                np.testing.assert_array_equal(b[name][()], a[name][()])
    comm.Barrier()
