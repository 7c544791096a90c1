"""The RK4 flow of a residual network's depth continuum compiled with JAX
(continuum/schemes/jax_depth_flow.py, ``[continuum] scheme = "jax"``): ``jax.grad`` of the
depth rule's forward map is the hand-written discrete adjoint, so the force and the
coefficients equal the numpy flow's (``scheme = "matched"``) to rounding, under either depth
rule, with sub-steps, without biases and on nodal x spaces; what it does not cover is
refused."""

from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from continuum import parse_config
from continuum.models.limit import continuum_model
from continuum.schemes.jax_depth_flow import JaxDepthFlow
from discrete.config import ConfigError
from discrete.experiment import build
from tests.configs import problem, resolved

CASES = {
    "rk4": {"continuum": {"degree": 3, "depth_degree": 2}},
    "dop853-two-steps": {
        "continuum": {"degree": 3, "depth_degree": 4, "depth_rule": "dop853", "depth_steps": 2}
    },
    "no-biases": {
        "network": {"bias": False},
        "init": {"bias": None},
        "continuum": {"degree": 3, "depth_degree": 2},
    },
    "nodal-x": {"continuum": {"degree": 3, "depth_degree": 2, "quadrature": "nodal"}},
}


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def model(case: str, scheme: str, comm: MPI.Comm = MPI.COMM_SELF):
    sections = CASES[case]
    continuum = {**sections["continuum"], "scheme": scheme}
    config = resolved("resnet", **{**sections, "continuum": continuum})
    return continuum_model(build(config), comm)


@pytest.mark.parametrize("case", list(CASES))
def test_the_compiled_depth_flow_is_the_numpy_flow_to_rounding(case):
    """At the initial and at a random θ the compiled Riesz gradient equals
    ``DepthFields.gradient`` to 1e-12 relative (measured 1e-15 … 8e-15), and ten RK4 steps of
    the compiled loop give the numpy flow's coefficients to 1e-12, steps that move them by more
    than 1e-3."""
    numpy, compiled = model(case, "matched"), model(case, "jax")
    assert isinstance(compiled.rule, JaxDepthFlow)
    theta = numpy.state.theta
    shaken = theta + 0.1 * np.random.default_rng(1).standard_normal(theta.shape)
    for at in (theta, shaken):
        force = numpy.galerkin.gradient(at)[1]
        assert relative(compiled.rule.riesz_gradient(at), force) < 1e-12
    t_end = numpy.setup.steps * numpy.setup.dt
    numpy.advance_to(t_end)
    compiled.advance_to(t_end)
    assert compiled.state.step == numpy.state.step == 10
    assert relative(numpy.state.theta, theta) > 1e-3
    assert relative(compiled.state.theta, numpy.state.theta) < 1e-12


def test_training_rules_other_than_the_flow_are_refused_at_load():
    text = problem("resnet", training={"rule": "gd"}, continuum={"scheme": "jax"})
    with pytest.raises(ConfigError, match=r"\[training\] rule = 'gd' with \[continuum\] scheme"):
        parse_config(text)


@pytest.mark.mpi
def test_more_than_one_rank_is_refused_when_the_model_is_built():
    comm = MPI.COMM_WORLD
    if comm.size == 1:
        assert model("rk4", "jax", comm).rule.h > 0
        return
    with pytest.raises(ConfigError, match=r"scheme = 'jax' runs on one MPI rank, not 2"):
        model("rk4", "jax", comm)


def test_the_depth_flow_to_a_tolerance_is_the_limit_the_rk4_flow_converges_to():
    """``scheme = "jax-adaptive"`` on the depth continuum (the same compiled force, DOP853 to
    ``tolerance = 1e-9``, to ``t = 1``): RK4 at ``dt`` and ``dt/2`` converge to it at order 4
    (the distance at ``dt/2`` at most a quarter of the step between them; a fifteenth for an
    exact limit), with fewer forces than RK4's four per step."""
    sections = CASES["nodal-x"]

    def solved(scheme: str, dt: float, steps: int, **continuum):
        training = {"rule": "flow", "dt": dt, "steps": steps}
        options = {**sections["continuum"], "scheme": scheme, **continuum}
        m = continuum_model(
            build(resolved("resnet", continuum=options, training=training)), MPI.COMM_SELF
        )
        m.advance_to(steps * dt)
        return m

    coarse, fine = solved("jax", 0.02, 50), solved("jax", 0.01, 100)
    adaptive = solved("jax-adaptive", 0.02, 50, tolerance=1e-9)
    step = np.abs(coarse.state.theta - fine.state.theta).max()
    assert step > 1e-9  # RK4's time error is measurable here
    assert np.abs(adaptive.state.theta - fine.state.theta).max() <= step / 4
    assert adaptive.rule.loop.evaluations < 4 * 50  # measured 7.3e-8, 4.7e-9 (1/15.7), 122
