"""The RK4 flow of the Galerkin fields compiled with JAX (continuum/schemes/jax_flow.py,
``[continuum] scheme = "jax"``): the same RK4, the same force, so the same coefficients as the
numpy flow (``scheme = "matched"``) to rounding; what it does not cover is refused naming the
keys."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from mpi4py import MPI

from continuum import load_config, parse_config
from continuum.models.limit import continuum_model
from continuum.models.registry import lookup
from continuum.schemes.jax_flow import COMPILED, forget_compiled
from discrete.config import ConfigError
from discrete.experiment import build

ROOT = Path(__file__).resolve().parent.parent
SYNFIELD = Path(sys.executable).parent / "synfield"

DEEP_TANH = """
[network]
widths = [6, 6, 6, 6]
activation = "tanh"
[data]
samples = 4
input = "sin(pi*(l+1)*y) + 0.5"
target = "0.5*cos(pi*(l+1)*x)"
[init]
weight = "0.8*cos(pi*(x - y)) + 0.2*m"
bias = "0.1*sin(pi*x)"
[training]
rule = "flow"
dt = 0.05
steps = 4
[continuum]
degree = 4
cells = 2
"""

DIGITS_FEW = {
    "network": {"widths": [64, 6, 6, 10]},
    "data": {"samples": 24, "test": 8},
    "training": {"dt": 0.01, "t_end": 0.04},
    "continuum": {"degree": 3, "cells": 4},
}


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def solved(config, scheme: str, comm: MPI.Comm = MPI.COMM_SELF):
    """The continuum model of ``config`` with ``scheme``, advanced to the end."""
    setup = build(config.replace(continuum={"scheme": scheme}))
    model = continuum_model(setup, comm)
    model.advance_to(setup.steps * setup.dt)
    return model


@pytest.mark.parametrize(
    "config",
    [
        parse_config(DEEP_TANH),
        load_config(ROOT / "examples" / "digits.toml").replace(**DIGITS_FEW),
    ],
    ids=["deep-tanh-mse-line", "digits-cross-entropy-index"],
)
def test_the_compiled_flow_is_the_numpy_flow_to_rounding(config):
    numpy, compiled = solved(config, "matched"), solved(config, "jax")
    assert compiled.state.step == numpy.state.step == config.training.steps
    one_step = solved(config.replace(training={"steps": 1}), "matched").state.theta
    assert relative(numpy.state.theta, one_step) > 1e-4  # the steps move the fields
    assert relative(compiled.state.theta, numpy.state.theta) <= 1e-12
    theta = numpy.state.theta
    galerkin = numpy.galerkin.gradient(theta)[1]
    assert relative(compiled.rule.riesz_gradient(theta), galerkin) <= 1e-12
    assert compiled.rule.compile_seconds > 0


def test_models_of_equal_shapes_share_one_compiled_loop_and_keep_their_own_rates():
    """A second model that differs only in values (rate, initial fields) reuses the compiled
    loop and still follows its own flow; another dt compiles a loop of its own."""
    forget_compiled()
    base = parse_config(DEEP_TANH)
    solved(base, "jax")
    assert len(COMPILED) == 1
    other = base.replace(training={"lr": 0.5}, init={"weight": "0.6*cos(pi*(x + y))"})
    compiled = solved(other, "jax")
    assert len(COMPILED) == 1 and compiled.rule.compile_seconds < 0.05
    assert relative(compiled.state.theta, solved(other, "matched").state.theta) <= 1e-12
    solved(base.replace(training={"dt": 0.025, "steps": 8}), "jax")
    assert len(COMPILED) == 2


def test_biases_off_and_a_quadratic_output_activation():
    text = (
        DEEP_TANH.replace("widths = [6, 6, 6, 6]", "widths = [6, 6, 6]")
        .replace(
            'activation = "tanh"', 'activation = "quadratic"\noutput = "activation"\nbias = false'
        )
        .replace('bias = "0.1*sin(pi*x)"\n', "")
    )
    config = parse_config(text)
    numpy, compiled = solved(config, "matched"), solved(config, "jax")
    assert relative(compiled.state.theta, numpy.state.theta) <= 1e-12


UNIT_CELL = """
[network]
widths = [8, 8]
bias = false
connectivity = "banded"
[coordinates]
placement = "periodic"
weights = "unit-cell"
[data]
samples = 3
input = "1 + 0.5*sin(2*pi*(l+1)*y)"
target = "cos(2*pi*x)"
[init]
weight = "0.5 + 0.2*sin(2*pi*x)"
[training]
dt = 0.01
steps = 2
[continuum]
"""


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        (DEEP_TANH + 'input_layer = "data-span"\n', "[continuum] input_layer = 'data-span'"),
        (DEEP_TANH.replace('rule = "flow"', 'rule = "gd"'), "[training] rule = 'gd'"),
        (DEEP_TANH + 'distribute = "samples"\n', "[continuum] distribute = 'samples'"),
        (UNIT_CELL, "[continuum] scheme = 'jax' does not solve this network"),
    ],
    ids=["data-span", "gd", "samples", "unit-cell"],
)
def test_what_the_compiled_flow_does_not_cover_is_refused_at_load(text, keys):
    assert lookup(parse_config(DEEP_TANH + 'scheme = "jax"\n')).scheme == "jax"
    with pytest.raises(ConfigError) as info:
        parse_config(text + 'scheme = "jax"\n')
    message = str(info.value)
    assert keys in message and "\n" not in message, message


def test_without_jax_installed_the_scheme_is_refused_at_load(monkeypatch):
    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "jax" else found(name, *a)
    )
    with pytest.raises(ConfigError, match=r"scheme = 'jax' needs the jax package"):
        parse_config(DEEP_TANH + 'scheme = "jax"\n')


@pytest.mark.mpi
@pytest.mark.parametrize("scheme", ["jax", "jax-adaptive"])
def test_more_than_one_rank_is_refused_when_the_model_is_built(scheme):
    comm = MPI.COMM_WORLD
    config = parse_config(DEEP_TANH)
    if comm.size == 1:
        assert solved(config, scheme, comm).state.step == config.training.steps
        return
    with pytest.raises(ConfigError, match=rf"scheme = '{scheme}' runs on one MPI rank, not 2"):
        solved(config, scheme, comm)


def test_two_ranks_print_the_refusal_once(tmp_path):
    """Every rank refuses alike and rank 0 alone prints it (was: once per rank)."""
    path = tmp_path / "jax.toml"
    path.write_text(DEEP_TANH + 'scheme = "jax"\n')
    mpiexec = Path(sys.executable).parent / "mpiexec"
    command = [str(mpiexec), "-n", "2", str(SYNFIELD), "run", str(path), "-o", str(tmp_path / "o")]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("runs on one MPI rank, not 2") == 1, proc.stderr


def test_synfield_run_writes_the_fields_of_the_matched_scheme(tmp_path):
    files = {}
    for scheme in ("matched", "jax"):
        path = tmp_path / f"{scheme}.toml"
        path.write_text(DEEP_TANH + f'scheme = "{scheme}"\n[output]\nevery = 2\n')
        proc = subprocess.run(
            [str(SYNFIELD), "run", str(path), "-o", str(tmp_path / scheme)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        files[scheme] = h5py.File(tmp_path / scheme / "fields.h5", "r")
    matched, compiled = files["matched"], files["jax"]
    np.testing.assert_array_equal(compiled["/continuum/times"], matched["/continuum/times"])
    assert len(matched["/continuum/times"]) == 3
    for m in range(3):
        for part in ("coefficients", "bias_coefficients", "w_at_lattice"):
            name = f"/continuum/layer{m}/{part}"
            assert relative(np.array(compiled[name]), np.array(matched[name])) <= 1e-12, name
    for f in files.values():
        f.close()
