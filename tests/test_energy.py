"""Energy flow in depth for the continuum fields (docs/physics.md "Mechanics"): the per-layer
balance closes for the Galerkin system, and its energies and fluxes are the width limit of the
network's."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from continuum.fields.energy import continuum_energy_balance
from continuum.models.limit import continuum_model
from continuum.settings import load_config
from discrete.experiment import build
from discrete.mechanics import energy_balance
from discrete.training import integrate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def damped_config(N: int, input_layer: str = "tensor"):
    config = load_config(EXAMPLES / "deep-tanh.toml")
    return dataclasses.replace(
        config,
        network=dataclasses.replace(config.network, widths=(N,) * 4),
        continuum=dataclasses.replace(config.continuum, input_layer=input_layer),
        training=dataclasses.replace(
            config.training, rule="momentum", gamma=1.0, momentum_scheme="rk4", steps=25
        ),
    )


def final(rule, theta0, steps):
    *_, last = integrate(rule, rule.initial(theta0), steps, steps)
    return last


@pytest.mark.parametrize("input_layer", ["tensor", "data-span"])
def test_continuum_layer_balance_closes_and_is_the_width_limit(input_layer):
    """The input layer's kinetic energy in the data span is ``tr(Ȧᵀ M_1 Ȧ G)/(2η)``."""
    balances, widths = {}, [16, 32, 64]
    model = continuum_model(build(damped_config(16, input_layer)), MPI.COMM_SELF)
    g = model.galerkin
    rates = model.rule.rates
    model.advance_to(0.5)
    cont = continuum_energy_balance(g, model.state.theta, model.state.velocity, rates, 1.0)
    assert np.max(np.abs(cont.residual())) < 1e-12 * cont.scale()
    for N in widths:
        setup = build(damped_config(N))
        state = final(setup.rule, setup.theta0, setup.steps)
        balances[N] = energy_balance(
            setup.cost, state.theta, state.velocity, setup.dictionary.rates(), 1.0
        )
    errors = [
        np.max(
            np.abs(np.concatenate([balances[N].energy - cont.energy, balances[N].flux - cont.flux]))
        )
        / np.max(np.abs(np.concatenate([cont.energy, cont.flux])))
        for N in widths
    ]
    order = -np.polyfit(np.log(widths), np.log(errors), 1)[0]
    assert 1.8 <= order <= 2.2, errors
