"""The gradient flow to a tolerance compiled with JAX (continuum/schemes/jax_adaptive.py,
``[continuum] scheme = "jax-adaptive"``): the loop against closed forms (an exponential decay,
a finite-time blow-up), and the model against PETSc's own error-controlled Verner 8(7)
(``scheme = "adaptive"``) at a tight tolerance."""

from __future__ import annotations

import re

import h5py
import jax
import numpy as np
import pytest
from mpi4py import MPI
from test_jax_flow import DEEP_TANH as RK4_DEEP_TANH

from continuum import parse_config
from continuum.app.run import run_experiment
from continuum.io import layout
from continuum.models.limit import continuum_model
from continuum.schemes.jax_adaptive import COUNTS, FORCES_PER_STEP, ToleranceLoop
from discrete.config import ConfigError
from discrete.experiment import build

# the compiled RK4 flow's deep tanh network, twenty steps, on nodal spaces
DEEP_TANH = RK4_DEEP_TANH.replace("steps = 4", "steps = 20").replace(
    "cells = 2\n", 'cells = 2\nquadrature = "nodal"\n'
)


def compiled(loop: ToleranceLoop, force, size: int):
    return jax.jit(loop.trace(force)).lower(*loop.abstract(size), {}).compile()


def test_the_loop_meets_its_tolerance_on_a_decay_and_ends_on_the_output_time():
    """``θ̇ = −λ θ`` (λ = 1, 3, 9 per component): the global error of a leap is at most its
    accepted steps times the tolerance of a step (a contracting flow does not amplify local
    errors), and falls with the tolerance; the leap ends exactly on the output time."""
    rates = np.array([1.0, 3.0, 9.0])
    theta0 = np.array([1.0, -2.0, 0.5])
    errors = []
    for tolerance in (1e-5, 1e-8, 1e-11):
        loop = ToleranceLoop(0.1, tolerance)
        run = compiled(loop, lambda th, arrays: -rates * th, 3)
        theta = loop.leap(run, theta0, 10, {})  # ten training steps: t = 1
        error = np.abs(theta - theta0 * np.exp(-rates)).max()
        accepted = loop.last["accepted"]
        assert error <= accepted * tolerance * (1 + np.abs(theta0).max())
        attempts = accepted + loop.last["rejected"]
        assert loop.last["evaluations"] == 2 + FORCES_PER_STEP * attempts  # + the step choice
        errors.append(error)
        _, counts = run(theta0, 1.0, 0.1, tolerance, {})
        reached = float(counts[COUNTS.index("reached")])
        assert reached == 1.0  # the time reached is the output time itself
    assert errors[0] > 10 * errors[1] > 100 * errors[2]  # measured 5.3e-9, 7.6e-11, 7.5e-13
    assert errors[2] < 1e-11


def test_a_flow_that_blows_up_stops_with_a_message_naming_the_time():
    """``θ̇ = θ²`` from ``θ = 1`` blows up at ``t = 1``: a leap to ``t = 2`` fails just
    before 1."""
    loop = ToleranceLoop(0.5, 1e-8)
    run = compiled(loop, lambda th, arrays: th * th, 1)
    with pytest.raises(FloatingPointError, match=r"failed (\S+) into a leap of 2\b") as info:
        loop.leap(run, np.array([1.0]), 4, {})
    reached = float(re.search(r"failed (\S+) into", str(info.value)).group(1))
    assert abs(reached - 1.0) < 1e-6 and "blows up" in str(info.value)


def test_the_compiled_flow_to_a_tolerance_is_petscs_to_that_tolerance():
    """The same fields as PETSc's Verner 8(7) at tolerance 1e-12 (an independent pair and
    controller) within the steps' tolerances, with fewer forces than the training RK4."""

    def model(scheme: str, tolerance: float):
        setup = build(parse_config(DEEP_TANH + f'scheme = "{scheme}"\ntolerance = {tolerance}\n'))
        m = continuum_model(setup, MPI.COMM_SELF)
        m.advance_to(setup.steps * setup.dt)
        return m

    reference = model("adaptive", 1e-12).state.theta
    scale = 1 + np.abs(reference).max()
    for tolerance in (1e-6, 1e-9):
        compiled_model = model("jax-adaptive", tolerance)
        loop = compiled_model.rule.loop
        error = np.abs(compiled_model.state.theta - reference).max()
        assert error <= loop.last["accepted"] * tolerance * scale, (tolerance, error)
        assert loop.evaluations < 4 * 20  # RK4 at the training dt: 80 forces
    initial = build(parse_config(DEEP_TANH))
    start = continuum_model(initial, MPI.COMM_SELF).state.theta
    assert np.abs(reference - start).max() > 1e-2  # the flow moves the fields


def test_a_continuum_dt_is_refused_at_load():
    with pytest.raises(ConfigError) as info:
        parse_config(DEEP_TANH + 'scheme = "jax-adaptive"\ndt = 0.01\n')
    message = str(info.value)
    assert "[continuum] dt = 0.01 with [continuum] scheme = 'jax-adaptive'" in message
    assert "\n" not in message


@pytest.mark.parametrize("scheme", ["adaptive", "jax-adaptive"])
def test_a_run_resumed_from_an_output_step_takes_the_uninterrupted_runs_steps(tmp_path, scheme):
    """Each leap starts from the step the last one proposed, which ``fields.h5`` carries
    (``/continuum/scheme/next_step``): a run cut after two of its five output steps and resumed
    there ends on the uninterrupted run's coefficients bit for bit.  (Started again from the
    training ``dt``, as it was before the step was carried, the resumed run took other steps
    and ended 2.8e-12 (PETSc) and 1.6e-12 (JAX) away.)"""
    config = parse_config(DEEP_TANH + "[output]\nevery = 5\n").replace(
        continuum={"scheme": scheme, "tolerance": 1e-6}
    )
    full, cut = tmp_path / "full", tmp_path / "cut"
    run_experiment(config, full, MPI.COMM_SELF, quiet=True)
    run_experiment(config, cut, MPI.COMM_SELF, quiet=True)
    with h5py.File(cut / "fields.h5", "a") as f:  # as if killed after two output steps
        for name in layout.TIME_SERIES:
            f[name].resize((2,))
    run_experiment(config, cut, MPI.COMM_SELF, resume=True, quiet=True)
    coefficients = layout.coefficient_group("layer1") + "/coefficients"
    with h5py.File(full / "fields.h5") as a, h5py.File(cut / "fields.h5") as b:
        steps = a[layout.scheme_state("next_step")][()]
        assert len(steps) == 5 and np.all(steps[1:] > 0)  # the step proposed at each output
        np.testing.assert_array_equal(b[layout.scheme_state("next_step")][()], steps)
        np.testing.assert_array_equal(b[coefficients][()], a[coefficients][()])
