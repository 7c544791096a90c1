"""RK4 of the flow with factored weight forces (:mod:`continuum.schemes.factored_flow`).

It is the classical RK4 of :class:`discrete.training.Flow` evaluated in another order, so the
two agree to rounding; measured after three steps: 1e-16 relative on every network below.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from mpi4py import MPI
from test_dataspan import configured

import continuum.schemes.factored_flow
from continuum.app.convergence import with_width
from continuum.models.limit import continuum_model
from continuum.schemes.factored_flow import FactoredFlow
from continuum.settings import Config
from discrete.experiment import build
from discrete.training import Flow


def model_of(config: Config):
    return continuum_model(build(with_width(config, 8)), MPI.COMM_SELF)


def without_bias(config: Config) -> Config:
    """``config`` with no biases (and so no initial bias fields)."""
    return config.replace(network={"bias": False}, init={"bias": None})


@pytest.mark.parametrize(
    ("example", "input_layer", "change"),
    [
        ("deep-tanh", "tensor", None),
        ("deep-tanh", "data-span", None),
        ("deep-tanh", "tensor", without_bias),
        ("image-layer", "data-span", None),  # one layer, linear readout in coefficient space
        ("perceptron", "tensor", None),
    ],
)
def test_factored_rk4_is_the_rk4_of_the_flow(example, input_layer, change):
    """Three steps of the factored RK4 equal three steps of the generic one to rounding."""
    config = configured(example, cells=4, input_layer=input_layer, scheme="matched")
    config = change(config) if change else config
    model = model_of(config)
    galerkin, setup = model.galerkin, model.setup
    rates = setup.dictionary.continuum_rates()
    generic = Flow(galerkin, galerkin.per_group(rates), setup.dt)
    factored = FactoredFlow(galerkin, rates, setup.dt)
    a = b = model.state
    for _ in range(3):
        a, b = generic.step(a), factored.step(b)
    assert b.t == a.t and b.step == a.step
    scale = np.abs(a.theta - model.state.theta).max()
    assert scale > 1e-3  # the fields moved
    assert np.abs(b.theta - a.theta).max() <= 1e-13 * np.abs(a.theta).max()


@pytest.mark.parametrize(
    ("rule", "threshold", "samples", "factored"),
    [
        ("flow", 0, 3, True),
        ("flow", None, 3, False),
        ("flow", 0, 8, False),
        ("momentum", 0, 3, False),
        ("gd", 0, 3, False),
    ],
)
def test_the_matched_flow_of_a_large_dense_network_is_factored(
    monkeypatch, rule, threshold, samples, factored
):
    """``integrator = "matched"`` uses the factored RK4 for the flow above the size threshold
    (here lowered to 0; 4 cells are below the real one) while its forces' rank is low: with 8
    samples on blocks of 9 × 9 the low-rank work per coefficient, ``2L²/n`` = 14, is above
    :data:`~continuum.schemes.factored_flow.LOW_RANK_WORK` and the generic RK4 runs; the
    training rule otherwise."""
    if threshold is not None:
        monkeypatch.setattr(continuum.schemes.factored_flow, "FACTORED_STEP_SIZE", threshold)
    config = configured("deep-tanh", cells=4, scheme="matched")
    config = dataclasses.replace(
        config,
        training=dataclasses.replace(
            config.training, rule=rule, gamma=1.0 if rule == "momentum" else 0.0
        ),
        data=dataclasses.replace(config.data, samples=samples),
    )
    assert isinstance(model_of(config).rule, FactoredFlow) == factored
