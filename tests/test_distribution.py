"""Rows or samples of the Galerkin fields over the MPI ranks (``[continuum] distribute``,
:mod:`continuum.fem.distribution`).

Measured (2 ranks against 1, largest difference of any coefficient after the steps): the
factored RK4 flow of a 4 → 201-dof → 201-dof → 3 iris classifier, samples split, 3.3e-16; the
heavy ball on the same network at 65 dofs, 1.1e-16; the data-span input layer of deep-tanh (3
samples over 2 ranks: 2 and 1), 2.2e-16; SGD with batches of one sample (one rank idle at
every step), 0; costs within 2.2e-16; every array of fields.h5 of
the index examples of ``test_index_continuum.py`` for flow and SGD, rows or samples, within
1e-10.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

import continuum.schemes.factored_flow
from continuum.models.limit import continuum_model
from continuum.models.registry import resolve
from continuum.schemes.factored_flow import FactoredFlow
from continuum.settings import load_config, parse_config
from discrete.config import ConfigError
from discrete.experiment import build
from tests.configs import problem

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def iris(rule: str, cells: int, **continuum: str) -> str:
    """A 4 → 8 → 8 → 3 iris classifier (the wine problem's layers and fields, 50 rows) trained
    by ``rule``, its continuum on ``cells`` P2 cells."""
    return problem(
        "wine",
        network={"widths": [4, 8, 8, 3]},
        data={"name": "iris", "samples": 50, "seed": 3},
        training={"rule": rule, "steps": 6, **({"gamma": 2.0} if rule == "momentum" else {})},
        continuum={"cells": cells, **continuum},
    )


def model_of(config, comm: MPI.Comm):
    return continuum_model(build(config), comm)


@pytest.mark.parametrize(
    ("name", "changes", "chosen"),
    [
        ("digits", {}, "samples"),  # L = 300 samples ≥ 65 dofs
        ("digits-sgd", {}, "rows"),  # a batch of 30 < 65 dofs
        ("digits", {"distribute": "rows"}, "rows"),
        ("deep-tanh", {}, "rows"),  # L = 3 samples < 129 dofs
        ("deep-tanh", {"distribute": "samples"}, "samples"),
    ],
)
def test_auto_splits_the_samples_when_they_outnumber_the_rows(name, changes, chosen):
    config = load_config(EXAMPLES / f"{name}.toml").replace(
        training={"t_end": 0.02}, continuum=changes
    )
    model = model_of(config, MPI.COMM_SELF)
    assert model.distribution == model.galerkin.distribution == chosen
    split = {"rows": "the rows of every weight block", "samples": "the samples of every batch"}
    assert split[chosen] in model.split


def test_the_run_header_names_the_split(tmp_path, capsys):
    from continuum.app.run import run_experiment

    config = parse_config(iris("flow", 8))  # 50 − 10 samples ≥ 17 dofs
    run_experiment(config, tmp_path / "run", MPI.COMM_SELF)
    header = capsys.readouterr().out.split("comparison")[0]
    assert (
        "continuum on 1 MPI rank(s), distributed by samples: each rank its share of the samples "
        "of every batch ([continuum] distribute = 'auto': 40 samples per gradient, largest "
        "factor space 17)"
    ) in header


def test_samples_are_refused_where_the_scheme_splits_rows_only():
    config = load_config(EXAMPLES / "deep-tanh.toml").replace(
        continuum={"scheme": "implicit", "distribute": "samples"}
    )
    with pytest.raises(ConfigError, match=r"\[continuum\] distribute = 'samples'.*'implicit'"):
        resolve(config)
    perceptron = load_config(EXAMPLES / "perceptron.toml").replace(
        continuum={"distribute": "samples"}
    )
    with pytest.raises(ConfigError, match=r"\[continuum\] distribute = 'samples'"):
        resolve(perceptron)
    # auto: the rows, where the scheme cannot split samples
    assert resolve(perceptron.replace(continuum={"distribute": "auto"})).continuum.scheme


def test_an_unknown_distribution_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"\[continuum\] distribute.*\"samples\""):
        parse_config(iris("flow", 8, distribute="columns"))


@pytest.mark.mpi
@pytest.mark.parametrize(
    ("text", "training", "factored"),
    [
        (iris("flow", 100), {}, True),  # 201² coefficients: factored RK4 (chosen below)
        (iris("momentum", 32), {}, False),
        (iris("sgd", 16), {"batch": 1}, False),  # one rank has no sample
    ],
    ids=["factored-flow", "heavy-ball", "sgd-batch-1"],
)
def test_two_ranks_splitting_the_samples_give_the_fields_of_one_rank(
    monkeypatch, text, training, factored
):
    """Samples split over two ranks give one rank's fields; the flow case is stepped by the
    factored RK4, which the cost rule leaves to the generic one for 40 samples on 201 DOFs
    (``factored_pays``), so its bounds are lifted here."""
    if factored:
        monkeypatch.setattr(continuum.schemes.factored_flow, "LOW_RANK_WORK", (np.inf, np.inf))
    comm = MPI.COMM_WORLD
    assert comm.size == 2, "run this test under mpiexec -n 2"
    config = parse_config(text).replace(training=training, continuum={"distribute": "samples"})
    split, one = model_of(config, comm), model_of(config, MPI.COMM_SELF)
    assert split.galerkin.distribution == "samples"
    assert isinstance(split.rule, FactoredFlow) == factored
    T = config.training.steps * config.training.dt
    split.advance_to(T)
    one.advance_to(T)
    a, b = split.rows(), one.rows()
    assert set(a) == set(b)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=0, atol=1e-10, err_msg=name)
    assert abs(split.cost() - one.cost()) <= 1e-12
    assert split.held_out() == pytest.approx(one.held_out(), abs=1e-12)


@pytest.mark.mpi
def test_the_data_span_input_layer_splits_its_samples():
    """deep-tanh's three samples over two ranks (2 and 1): the coefficient fields ``a_l`` of
    ``w^(0) − w^(0)(0) = Σ_l a_l X^l`` equal one rank's."""
    comm = MPI.COMM_WORLD
    assert comm.size == 2, "run this test under mpiexec -n 2"
    config = load_config(EXAMPLES / "deep-tanh.toml").replace(
        training={"t_end": 0.2}, continuum={"distribute": "samples", "input_layer": "data-span"}
    )
    split, one = model_of(config, comm), model_of(config, MPI.COMM_SELF)
    split.advance_to(0.2)
    one.advance_to(0.2)
    a, b = split.rows(), one.rows()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=0, atol=1e-10, err_msg=name)
    assert abs(split.cost() - one.cost()) <= 1e-12


@pytest.mark.mpi
def test_the_flow_to_a_tolerance_splits_the_samples_with_the_steps_of_one_rank():
    """``scheme = "adaptive"`` with the samples split runs one PETSc TS per rank on the whole
    ``θ`` (``COMM_SELF``), every force the reduced gradient: the ranks take one rank's steps
    (the same number of forces) and give its fields.  Before, the scheme split rows only, and
    on two ranks the digits example ran slower than on one (benchmarks/README.md)."""
    comm = MPI.COMM_WORLD
    assert comm.size == 2, "run this test under mpiexec -n 2"
    config = parse_config(iris("flow", 8, scheme="adaptive"))
    split, one = model_of(config, comm), model_of(config, MPI.COMM_SELF)
    assert split.galerkin.distribution == "samples"  # auto: 40 samples ≥ 17 dofs
    assert split.rule.ts.getComm().getSize() == 1
    T = config.training.steps * config.training.dt
    split.advance_to(T)
    one.advance_to(T)
    assert split.rule.evaluations == one.rule.evaluations > 0
    a, b = split.rows(), one.rows()
    for name in a:  # the step proposed next is the error estimate's, a rounding: 9e-8 here
        bound = {"rtol": 1e-6} if name.endswith("next_step") else {"rtol": 0, "atol": 1e-10}
        np.testing.assert_allclose(a[name], b[name], err_msg=name, **bound)
    assert abs(split.cost() - one.cost()) <= 1e-12
