"""The gradient flow to a tolerance (``[continuum] integrator = "adaptive"``).

Measured on the three-layer tanh network (data span, P1 on 4 cells, ``t = 1``): RK4 at
``dt`` = 0.2 / 0.1 / 0.05 differs from the adaptive fields at tolerance 1e-12 by
9.5e-6 / 5.2e-7 / 3.0e-8 in coefficients (order 4.15); at tolerance 1e-5 / 1e-9 the adaptive
fields differ from those at 1e-13 by 9.0e-8 / 2.4e-11 after 39 / 65 gradient evaluations
(RK4 at the training ``dt`` takes 200).  A resumed run takes the uninterrupted run's steps
(tests/test_jax_adaptive.py).
"""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest
from mpi4py import MPI
from problems import observed_order
from test_dataspan import configured
from test_mpi import shared_tmpdir

from continuum.app.convergence import with_width
from continuum.app.run import run_experiment
from continuum.io import layout
from continuum.models.limit import continuum_model
from continuum.schemes.adaptive import AdaptiveFlow
from continuum.settings import Config
from discrete.experiment import build


def deep_tanh(**training) -> Config:
    """The three-layer tanh network on 4 P1 cells, with ``training`` changes (``t = 1``)."""
    config = configured("deep-tanh", input_layer="data-span", cells=4, degree=1)
    if "dt" in training:
        training["steps"] = round(1.0 / training["dt"])
    return dataclasses.replace(config, training=dataclasses.replace(config.training, **training))


def solved(config: Config, integrator: str, tolerance: float = 1e-10):
    continuum = dataclasses.replace(config.continuum, scheme=integrator, tolerance=tolerance)
    model = continuum_model(
        build(with_width(dataclasses.replace(config, continuum=continuum), 8)), MPI.COMM_SELF
    )
    model.advance_to(1.0)
    return model


def test_rk4_converges_to_the_adaptive_flow_at_order_four():
    """The matched RK4 continuum and the adaptive one solve one flow: their difference is
    RK4's global error, ``O(dt⁴)``, far above the adaptive solve's own at 1e-12."""
    flow = solved(deep_tanh(), "adaptive", tolerance=1e-12).state.theta
    steps = [0.2, 0.1, 0.05]
    differences = [
        np.abs(solved(deep_tanh(dt=dt), "matched").state.theta - flow).max() for dt in steps
    ]
    order = observed_order(steps, differences)
    assert 3.7 <= order <= 4.5, (differences, order)


def test_the_tolerance_bounds_the_error_and_sets_the_work():
    """Tighter tolerances give smaller errors, each below the tolerance, with more gradient
    evaluations; the output every ``dt`` arrives exactly on the training rule's times."""
    reference = solved(deep_tanh(), "adaptive", tolerance=1e-13).state.theta
    errors, evaluations = [], []
    for tolerance in (1e-5, 1e-9):
        model = solved(deep_tanh(), "adaptive", tolerance=tolerance)
        assert model.state.step == 50 and model.state.t == 1.0
        errors.append(np.abs(model.state.theta - reference).max())
        evaluations.append(model.rule.evaluations)
        assert errors[-1] <= tolerance, (tolerance, errors[-1])
    assert errors[1] < errors[0] and evaluations[1] > evaluations[0], (errors, evaluations)


class _Blowup:
    """``C`` with ``−∂C/∂θ = θ²``: from ``θ = 1`` the flow blows up at ``t = 1``."""

    def gradient(self, theta, samples=None):
        return 0.0, -(theta**2)


def test_a_flow_that_blows_up_is_stopped_with_its_time():
    rule = AdaptiveFlow(_Blowup(), np.ones(2), 0.25, 1e-10)
    with (
        pytest.raises(FloatingPointError, match=r"NaN or inf at t = 1\b"),
        np.errstate(all="ignore"),
    ):
        list(rule.advance(rule.initial(np.ones(2)), 8))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (deep_tanh(rule="momentum", gamma=1.0), "rule 'momentum'"),
        (configured("deep-tanh", cells=4, dt=0.01), "dt = 0.01"),
    ],
)
def test_what_is_not_the_full_batch_flow_is_refused_by_name(config, message):
    with pytest.raises(ValueError, match=message):
        solved(config, "adaptive")


@pytest.mark.mpi
def test_an_adaptive_run_on_two_ranks_resumes_on_its_own_steps():
    """``scheme = "adaptive"`` on two ranks, cut after three of its six output steps and resumed
    there: the coefficients equal the uninterrupted two-rank run's bit for bit (the trial step
    carried in ``fields.h5`` is the same on every rank) and the one-rank run's to 1e-10."""
    comm = MPI.COMM_WORLD
    assert comm.size == 2, "run this test under mpiexec -n 2"
    tmp = shared_tmpdir(comm)
    config = deep_tanh()
    config = dataclasses.replace(
        config,
        continuum=dataclasses.replace(config.continuum, scheme="adaptive", tolerance=1e-6),
        output=dataclasses.replace(config.output, every=10),
    )
    run_experiment(config, tmp / "full", comm, quiet=True)
    run_experiment(config, tmp / "cut", comm, quiet=True)
    if comm.rank == 0:
        with h5py.File(tmp / "cut" / "fields.h5", "a") as f:  # as if killed after three steps
            for name in layout.TIME_SERIES:
                f[name].resize((3,))
        run_experiment(config, tmp / "one", MPI.COMM_SELF, quiet=True)
    comm.Barrier()
    run_experiment(config, tmp / "cut", comm, resume=True, quiet=True)
    if comm.rank == 0:
        name = layout.coefficient_group("layer1") + "/coefficients"
        with (
            h5py.File(tmp / "full" / "fields.h5") as full,
            h5py.File(tmp / "cut" / "fields.h5") as cut,
            h5py.File(tmp / "one" / "fields.h5") as one,
        ):
            assert cut.attrs["ranks"] == 2 and len(cut[layout.CONTINUUM_TIMES]) == 6
            np.testing.assert_array_equal(cut[name][()], full[name][()])
            np.testing.assert_allclose(cut[name][()], one[name][()], rtol=0, atol=1e-10)
