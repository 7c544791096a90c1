"""The exact flow of one linear layer (``[continuum] integrator = "exponential"``).

Measured on the image layer (P1 on 8 cells, ``t = 1``): RK4 at ``dt`` = 0.2 / 0.1 / 0.05
differs from the exponential fields by 5.0e-6 / 2.9e-7 / 1.7e-8 in coefficients (data span;
tensor input 5.9e-6 / 3.3e-7 / 2.0e-8), order 4.11; one leap over 20 steps equals 20 single
steps to 1.4e-16.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from mpi4py import MPI
from problems import observed_order
from test_dataspan import configured

from continuum.app.convergence import with_width
from continuum.models.limit import continuum_model
from continuum.settings import Config
from discrete.config import ConfigError
from discrete.experiment import build


def image_layer(input_layer: str = "data-span", **training) -> Config:
    """The image layer on 8 P1 cells, with ``training`` changes (``dt`` keeps ``t = 1``)."""
    config = configured("image-layer", input_layer=input_layer, cells=8, degree=1)
    if "dt" in training:
        training["steps"] = round(1.0 / training["dt"])
    return dataclasses.replace(config, training=dataclasses.replace(config.training, **training))


def final_coefficients(config: Config, integrator: str) -> np.ndarray:
    config = dataclasses.replace(
        config, continuum=dataclasses.replace(config.continuum, scheme=integrator)
    )
    model = continuum_model(build(with_width(config, 8)), MPI.COMM_SELF)
    model.advance_to(1.0)
    return model.state.theta


@pytest.mark.parametrize("input_layer", ["data-span", "tensor"])
def test_rk4_converges_to_the_exponential_flow_at_order_four(input_layer):
    """The matched RK4 continuum and the exact flow solve one equation: their difference is
    RK4's global error, ``O(dt⁴)``."""
    exact = final_coefficients(image_layer(input_layer), "exponential")
    steps = [0.2, 0.1, 0.05]
    differences = [
        np.abs(final_coefficients(image_layer(input_layer, dt=dt), "matched") - exact).max()
        for dt in steps
    ]
    order = observed_order(steps, differences)
    assert 3.7 <= order <= 4.3, (differences, order)


def test_one_leap_equals_every_step_taken_singly():
    """``S(t)`` is a semigroup integral, ``S(a + b) = S(a) + e^{−Ka} S(b)``: leaping over all
    steps and stepping one by one give one state to rounding."""
    setup = build(with_width(image_layer(), 8))
    model = continuum_model(setup, MPI.COMM_SELF)
    rule, state = model.rule, model.state
    (leap,) = rule.advance(state, setup.steps)
    for _ in range(setup.steps):
        state = rule.step(state)
    assert leap.step == state.step == setup.steps
    np.testing.assert_allclose(leap.theta, state.theta, rtol=0, atol=1e-14)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (configured("deep-tanh", cells=4), "one layer with a linear output"),
        (image_layer(rule="momentum", gamma=1.0), "rule 'momentum'"),
        (configured("image-layer", dt=0.01), "dt = 0.01"),
    ],
)
def test_what_has_no_closed_form_is_refused_by_name(config, message):
    with pytest.raises(ConfigError, match=message):
        final_coefficients(config, "exponential")
