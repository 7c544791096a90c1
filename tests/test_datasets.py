"""Tabular data on index layers (docs/physics.md "Index layers"; README "Using it"): bundled sets,
splits, bad data, diagnostics."""

import h5py
import numpy as np
import pytest
import sklearn.datasets

from continuum.app.run import run_experiment
from continuum.settings import parse_config
from discrete.config import ConfigError
from discrete.datasets import DATASETS, SHAPES, bundled
from discrete.experiment import build
from tests.configs import document, load, problem

IRIS = document(
    "iris",
    network={"widths": [4, 8, 3]},
    init={"bias": None},
    training={"steps": 6},
    continuum={"degree": None, "cells": None, "enabled": False},
    output={"every": 3, "quiet": True},
)
"""The 4 → 8 → 3 iris classifier, six flow steps, no continuum."""


@pytest.mark.parametrize("name", list(DATASETS))
def test_bundled_sets_have_their_shapes_and_one_hot_targets(name):
    rows, d, k = SHAPES[name]
    data = bundled(name)
    assert data.X.shape == (rows, d) and data.Y.shape == (rows, k)
    _, y = getattr(sklearn.datasets, DATASETS[name][0])(return_X_y=True)
    if data.classes:
        np.testing.assert_array_equal(np.argmax(data.Y, axis=1), y)
        np.testing.assert_array_equal(data.Y.sum(axis=1), 1.0)
    else:
        np.testing.assert_array_equal(data.Y[:, 0], y)


def test_split_is_seeded_disjoint_and_standardized_on_the_training_rows():
    setup = build(load(IRIS))
    again = build(load(IRIS))
    np.testing.assert_array_equal(setup.data.X, again.data.X)
    assert setup.data.X.shape == (40, 4) and setup.data.X_test.shape == (20, 4)
    np.testing.assert_allclose(setup.data.X.mean(axis=0), 0.0, atol=1e-14)
    np.testing.assert_allclose(setup.data.X.std(axis=0), 1.0, rtol=1e-14)
    # the rows are iris rows under one affine map fitted on the training rows
    X, _ = sklearn.datasets.load_iris(return_X_y=True)
    order = np.random.default_rng(5).permutation(150)[:60]
    train, test = np.sort(order[20:]), np.sort(order[:20])
    mean, std = X[train].mean(axis=0), X[train].std(axis=0)
    np.testing.assert_allclose(setup.data.X, (X[train] - mean) / std, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(setup.data.X_test, (X[test] - mean) / std, rtol=1e-13, atol=1e-14)
    other = build(load(IRIS, data={"seed": 6}))
    assert not np.array_equal(other.data.X_test, setup.data.X_test)


def file_config(tmp_path, X, y, **data):
    np.savez(tmp_path / "data.npz", X=X, y=y)
    path = str(tmp_path / "data.npz")
    changes = {"kind": "file", "name": None, "samples": None, "test": None, "path": path}
    return problem(IRIS, data=changes | data)


def test_file_with_labels_gives_one_hot_targets(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((12, 4)), rng.integers(0, 3, 12)
    setup = build(parse_config(file_config(tmp_path, X, y, test=3)))
    assert setup.data.classes and setup.data.X.shape == (9, 4)
    rows = np.sort(np.random.default_rng(5).permutation(12)[3:])
    np.testing.assert_array_equal(setup.data.Y, np.eye(3)[y[rows]])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_features_are_refused(tmp_path, bad):
    X = np.ones((6, 4)) + np.arange(6)[:, None]
    X[4, 1] = bad
    text = file_config(tmp_path, X, np.zeros(6, dtype=int))
    with pytest.raises(
        ConfigError, match=r"\[data\] path: data array X holds NaN or inf \(rows \[4\]\)"
    ):
        build(parse_config(text))


def test_constant_feature_with_standardize_is_refused(tmp_path):
    with pytest.raises(
        ConfigError, match=r"\[data\] standardize: feature\(s\) \[0, 32, 39\] are constant"
    ):
        load(IRIS, network={"widths": [64, 8, 10]}, data={"name": "digits", "samples": None})
    X = np.column_stack([np.arange(6.0), np.full(6, 2.0), np.arange(6.0) ** 2, np.ones(6)])
    with pytest.raises(ConfigError, match=r"\[data\] standardize: feature\(s\) \[1, 3\]"):
        build(parse_config(file_config(tmp_path, X, np.zeros(6, dtype=int))))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            {"data": {"test": 60}},
            r"\[data\] test: 60 rows held out leave none of \[data\] samples = 60",
        ),
        ({"data": {"samples": 151}}, r"\[data\] samples: 151 exceeds the 150 rows"),
        (
            {"data": {"name": "irises"}},
            r'\[data\] name: expected one of .* got "irises" \(did you mean "iris"\?\)',
        ),
        (
            {"network": {"widths": [4, 8, 2]}},
            r"\[data\] name: 'iris' has 4 features and 3 output\(s\)",
        ),
        (
            {"coordinates": {"layout": ["line", "line", "index"]}},
            r'\[data\] kind: .* needs \[coordinates\] layout "index"',
        ),
        ({"training": {"batch": 41}}, r"\[training\] batch: 41 exceeds"),
    ],
)
def test_bad_data_configs_are_refused_naming_the_key(edit, message):
    with pytest.raises(ConfigError, match=message):
        load(IRIS, **edit)


def test_accuracies_and_test_cost_are_written_and_recomputable(tmp_path):
    config = load(IRIS)
    summary = run_experiment(config, tmp_path / "run")
    setup = build(config)
    with h5py.File(tmp_path / "run" / "fields.h5", "r") as f:
        theta = f["/discrete/state/theta"][-1]
        acc_train = f["/diagnostics/accuracy_train"][:]
        acc_test = f["/diagnostics/accuracy_test"][:]
        cost_test = f["/diagnostics/cost_test"][:]
    assert len(acc_train) == 3
    Z = setup.network.forward(theta, setup.data.X_test).output
    p = np.exp(Z - Z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(p[setup.data.Y_test.astype(bool)]))
    assert cost_test[-1] == pytest.approx(expected, rel=1e-12)
    assert acc_test[-1] == np.mean(Z.argmax(axis=1) == setup.data.Y_test.argmax(axis=1))
    Zt = setup.network.forward(theta, setup.data.X).output
    assert acc_train[-1] == np.mean(Zt.argmax(axis=1) == setup.data.Y.argmax(axis=1))
    assert summary["final"]["accuracy_test"] == acc_test[-1]


def test_digits_sgd_example_classifies_held_out_digits(tmp_path):
    """examples/digits-sgd.toml end to end: the network (N = 32) and its continuum classify
    the 300 held-out digits (measured 0.913 and 0.907 test accuracy at t = 10, dt = 0.005)."""
    from pathlib import Path

    from continuum.settings import load_config

    root = Path(__file__).resolve().parent.parent
    config = load_config(root / "examples" / "digits-sgd.toml")
    final = run_experiment(config, tmp_path / "run", quiet=True)["final"]
    assert final["accuracy_test"] > 0.85 and final["continuum_accuracy_test"] > 0.85, final
    assert abs(final["cost"] - final["cost_continuum"]) < 0.05 * final["cost"], final
    assert parse_config((root / "examples" / "digits.toml").read_text()).data.name == "digits"
