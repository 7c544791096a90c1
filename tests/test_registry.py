"""The registry of continuum models and schemes (continuum/models/registry.py): every combination of
network, data, training rule and ``[continuum] scheme`` either runs, with a continuum that
agrees with the discrete network at the width order 2, or is refused when the config is
loaded with one message naming the keys."""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mpi4py import MPI
from problems import observed_order

from continuum import load_config, parse_config, resolve
from continuum.app.run import field_errors, run_experiment
from continuum.models.limit import continuum_model
from continuum.models.model import ContinuumModel
from continuum.models.registry import ENTRIES, FAMILIES, SCHEMES, lookup, table
from discrete.config import ConfigError
from discrete.experiment import build
from discrete.training import RULES, integrate
from tests.configs import Document, document, problem

ROOT = Path(__file__).resolve().parents[1]

NETWORKS: dict[str, Callable[[int], Document]] = {
    "perceptron": lambda N: document(
        "perceptron", network={"widths": [N, N]}, training=None, continuum=None
    ),
    "tanh": lambda N: document(
        "deep_tanh", network={"widths": [N, N, N]}, training=None, continuum=None
    ),
    "banded": lambda N: {
        "network": {"widths": [N, N], "bias": False, "connectivity": "banded"},
        "coordinates": {"placement": "periodic", "weights": "unit-cell"},
        "data": {"samples": 3, "input": "1 + 0.5*sin(2*pi*(l+1)*y)", "target": "cos(2*pi*x)"},
        "init": {"weight": "0.5 + 0.2*sin(2*pi*x)"},
    },
    "probes": lambda N: {
        "network": {"widths": [N, 1], "bias": False},
        "coordinates": {"placement": "periodic"},
        "data": {"kind": "probes"},
        "init": {"weight": "0.3*sin(2*pi*y) + 0.1*cos(4*pi*y)"},
    },
}
"""The networks and data of width ``N`` (no ``[training]``, ``[continuum]``)."""

SCHEME_CHOICES = [None, *SCHEMES]


def config_text(
    network: str, N: int, rule: str, scheme: str | None, **sections: dict[str, Any]
) -> str:
    """A small run (and ``sections``, as in :func:`tests.configs.problem`); the clock keeps each
    side's time error below the width error at N = 32: the probe chain's flow is stiff (rates ~
    N²), and the implicit midpoint rule of the damped dynamics steps at dt/8 beside the
    network's RK4 (both second order otherwise)."""
    dt, t_end = 0.01, 0.1
    if network == "probes" and rule == "flow":
        dt, t_end = 2e-4, 0.01
    elif network == "probes":
        dt = 0.0025
    training = {"rule": rule, "dt": dt, "t_end": t_end}
    if rule == "momentum":
        training["gamma"] = 1.0
    continuum: dict[str, Any] = {"degree": 2, "cells": 64}
    if scheme is not None:
        continuum["scheme"] = scheme
    if rule == "momentum" and scheme == "implicit":
        training["momentum_scheme"] = "rk4"
        continuum["dt"] = dt / 8
    return problem(
        document(NETWORKS[network](N), training=training, continuum=continuum), **sections
    )


def lattice_error(config) -> float:
    """‖w − w_h‖ at ``t_end`` between the network and its continuum, at the lattice."""
    setup = build(config)
    model = continuum_model(setup, MPI.COMM_SELF)
    assert isinstance(model, ContinuumModel)
    *_, last = integrate(setup.rule, setup.rule.initial(setup.theta0), setup.steps, setup.steps)
    model.advance_to(last.t)
    w, b = setup.convention.to_fields(setup.network, last.theta)
    wc, bc = model.lattice_fields()
    err_w, err_b = field_errors(setup.network, setup.convention, w, b, wc, bc)
    return float(np.hypot(err_w, err_b))


COMBINATIONS = list(itertools.product(NETWORKS, RULES, SCHEME_CHOICES))


def _id(combination) -> str:
    network, rule, scheme = combination
    return f"{network}-{rule}-{scheme or 'default'}"


@pytest.mark.parametrize("combination", COMBINATIONS, ids=[_id(c) for c in COMBINATIONS])
def test_every_combination_runs_at_width_order_two_or_is_refused_naming_the_keys(combination):
    network, rule, scheme = combination
    widths = (16, 32, 64) if network == "banded" else (8, 16, 32)  # asymptotic range
    try:
        configs = [parse_config(config_text(network, N, rule, scheme)) for N in widths]
    except ConfigError as exc:
        message = str(exc)
        assert message.count("\n") == 0
        keys = set(re.findall(r"\[(\w+)\] (\w+)", message))
        if scheme is None:  # nothing solves this rule on this network: the rule is named
            assert ("training", "rule") in keys or ("data", "kind") in keys, message
        else:  # the rule, or what selects the family, is named beside the scheme
            assert ("continuum", "scheme") in keys and len(keys) >= 2, message
        return
    resolved = configs[0].continuum.scheme
    assert resolved in SCHEMES and (scheme is None or resolved == scheme)
    errors = [lattice_error(c) for c in configs]
    expected = FAMILIES[lookup(configs[0]).family].width_order
    assert abs(observed_order(1 / np.array(widths), errors) - expected) <= 0.25, errors


def test_the_silent_combinations_of_the_old_integrator_key_are_refused():
    """Each was accepted before the registry and solved something else without a word."""
    perceptron = (ROOT / "examples" / "perceptron.toml").read_text()
    goldstein = (ROOT / "examples" / "goldstein.toml").read_text()
    deep = (ROOT / "examples" / "deep-tanh.toml").read_text()
    cases = [
        # the gradient flow solved for momentum, gd, sgd (θ-method and BDF2 of the flow)
        *[
            (perceptron.replace('rule = "flow"', f'rule = "{r}"\ngamma = 1.0'), "[training] rule")
            for r in ("momentum", "gd", "sgd")
        ],
        (
            perceptron.replace('rule = "flow"', 'rule = "momentum"').replace('"theta"', '"bdf2"'),
            "[continuum] scheme = 'bdf2'",
        ),
        # probe data: the wave solver built whatever the integrator said
        *[
            (goldstein.replace('"newmark"', f'"{s}"'), f"[continuum] scheme = '{s}'")
            for s in ("adaptive", "bdf2", "implicit", "exponential")
        ],
        # the linear chain's wave equation for a tanh output layer, or a banded layer
        (
            goldstein.replace(
                'activation = "linear"', 'activation = "tanh"\noutput = "activation"'
            ),
            "Goldstein's chain is the linear layer's",
        ),
        (
            goldstein.replace("bias = false", 'bias = false\nconnectivity = "banded"'),
            "Goldstein's chain is the dense layer's",
        ),
        # a circle of one cell (a ValueError naming no key, when the mesh was built)
        (goldstein.replace("cells = 128", "cells = 1"), "[continuum] cells = 1: the periodic"),
        # Newmark on a dense network
        (deep.replace("cells = 64", 'cells = 64\nintegrator = "newmark"'), "'newmark'"),
        # θ < ½ for the local flow solver
        (
            goldstein.replace('rule = "momentum"', 'rule = "flow"').replace(
                'scheme = "newmark"', "theta = 0.25"
            ),
            "[continuum] theta = 0.25",
        ),
    ]
    for text, fragment in cases:
        with pytest.raises(ConfigError) as info:
            parse_config(text)
        assert fragment in str(info.value), str(info.value)


def test_file_data_are_refused_by_the_continuum_that_would_ignore_them(tmp_path):
    """A file's samples are vectors at the lattice, not functions of the coordinates: the
    Galerkin fields cannot use them (before: the default expressions were used instead)."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", X=rng.standard_normal((3, 8)), Y=rng.standard_normal((3, 8)))
    data = {"samples": None, "kind": "file", "path": "data.npz", "input": None, "target": None}
    text = config_text("perceptron", 8, "flow", None, data=data)
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"\[data\] kind = 'file'.*\[continuum\] enabled"):
        load_config(tmp_path / "c.toml")
    off = config_text("perceptron", 8, "flow", None, data=data, continuum={"enabled": False})
    (tmp_path / "c.toml").write_text(off)
    assert load_config(tmp_path / "c.toml").continuum.enabled is False


def test_unknown_scheme_and_both_spellings_are_errors():
    text = config_text("tanh", 8, "flow", "matchd")
    with pytest.raises(ConfigError, match="did you mean 'matched'"):
        parse_config(text)
    both = config_text("tanh", 8, "flow", "matched", continuum={"integrator": "matched"})
    with pytest.raises(ConfigError, match="former spelling"):
        parse_config(both)
    alias = config_text("tanh", 8, "flow", None, continuum={"integrator": "adaptive"})
    assert parse_config(alias).continuum.scheme == "adaptive"
    # the switch keeps the settings for the next run, but not a name no run can use
    off = text.replace("[continuum]\n", "[continuum]\nenabled = false\n", 1)
    assert "enabled = false" in off
    with pytest.raises(ConfigError, match="did you mean 'matched'"):
        parse_config(off)
    assert parse_config(off.replace("matchd", "jax")).continuum.enabled is False


def test_the_registry_declares_every_scheme_and_family_it_builds():
    assert {e.scheme for e in ENTRIES} == set(SCHEMES)
    assert {e.family for e in ENTRIES} == set(FAMILIES)
    for entry in ENTRIES:
        assert callable(entry.builder())
        assert set(entry.rules) <= set(RULES)


def test_readme_integrator_table_is_the_registry():
    readme = (ROOT / "README.md").read_text()
    assert table() in readme


def test_a_config_changed_through_the_api_records_what_ran_and_reproduces_it(tmp_path):
    """``Config.replace`` re-validates; ``fields.h5`` stores the resolved config that ran, and
    that config, loaded again, reproduces the run bit for bit."""
    import h5py

    base = load_config(ROOT / "examples" / "deep-tanh.toml")
    changed = base.replace(
        network={"widths": [8, 8, 8, 8]},
        training={"steps": 6, "rule": "momentum", "gamma": 1.0},
        continuum={"cells": 4, "scheme": None},
        output={"every": 3},
    )
    with pytest.raises(ConfigError, match=r"\[training\] rule = 'momentum'"):
        resolve(changed.replace(continuum={"scheme": "adaptive"}))
    run_experiment(changed, tmp_path / "a", MPI.COMM_SELF, quiet=True)
    with h5py.File(tmp_path / "a" / "fields.h5", "r") as h5:
        stored = str(h5.attrs["config"])
        first = np.array(h5["/continuum/layer1/coefficients"])
    again = parse_config(stored, source=base.source)
    assert again == dataclasses.replace(changed, continuum=again.continuum)
    assert again.continuum.scheme == "matched" and again.training.steps == 6
    run_experiment(again, tmp_path / "b", MPI.COMM_SELF, quiet=True)
    with h5py.File(tmp_path / "b" / "fields.h5", "r") as h5:
        assert str(h5.attrs["config"]) == stored
        np.testing.assert_array_equal(np.array(h5["/continuum/layer1/coefficients"]), first)


def test_lookup_is_what_the_model_is_built_from():
    config = load_config(ROOT / "examples" / "goldstein.toml")
    entry = lookup(config)
    assert (entry.family, entry.scheme) == ("local", "newmark")


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.toml")), ids=lambda p: p.stem)
def test_every_example_resolves_and_its_resolved_text_reads_back_equal(path):
    """``Config.text`` is the configuration that runs: read again, it is the same config."""
    config = load_config(path)
    assert config.continuum.scheme in SCHEMES or not config.continuum.enabled
    assert parse_config(config.text, source=config.source) == config


@pytest.mark.parametrize(
    ("example", "step"),
    [("goldstein", 0.3), ("goldstein", 0.003), ("perceptron", 0.015), ("deep-tanh", 1e300)],
)
def test_an_own_step_that_does_not_divide_the_training_dt_is_refused(example, step):
    """A scheme with a step of its own reaches the output times, multiples of the training
    dt, only if its step divides that dt: before, Goldstein's chain at dt = 0.3 reported its
    fields of t = 0.9 as those of t = 1, and the implicit flow at dt = 1e300 never left t = 0."""
    config = load_config(ROOT / "examples" / f"{example}.toml")
    if example == "deep-tanh":
        config = config.replace(continuum={"scheme": "implicit"})
    with pytest.raises(ConfigError) as info:
        resolve(config.replace(continuum={"dt": step}))
    assert "the continuum's own step must divide [training] dt" in str(info.value)
    halved = resolve(config.replace(continuum={"dt": config.training.dt / 2}))
    assert halved.continuum.dt == config.training.dt / 2


def test_noisy_targets_are_refused_by_the_continuum_that_would_drop_the_noise():
    """Target noise drawn at each output neuron has no field: the continuum trained on the
    noise-free targets and its distance to the network grew with the noise at every width
    (deep-tanh at t = 1: ‖w − w_h‖ 2.5e-5, 7.4e-4, 7.5e-3 at noise 0, 0.01, 0.1; before)."""
    deep = load_config(ROOT / "examples" / "deep-tanh.toml")
    with pytest.raises(ConfigError, match=r"\[data\] noise = 0.01: the target noise is drawn"):
        resolve(deep.replace(data={"noise": 0.01}))
    alone = resolve(deep.replace(data={"noise": 0.01}, continuum={"enabled": False}))
    assert alone.data.noise == 0.01
