"""SGD sample schedules: seeded epochs or i.i.d. draws, validated, recorded (docs/physics.md "SGD
fluctuations")."""

import h5py
import numpy as np
import pytest

from continuum.app.run import run_experiment
from continuum.settings import parse_config
from discrete.config import ConfigError
from discrete.experiment import build
from discrete.training import sample_schedule

SGD = """
[network]
widths = [5, 4]
[data]
samples = 7
[training]
rule = "sgd"
batch = 3
steps = 12
sampling = "replacement"
seed = 9
[continuum]
enabled = false
[output]
every = 4
quiet = true
"""


def test_replacement_draws_are_uniform_and_independent():
    """3000 draws of 7 samples: every count within 4σ of Binomial(3000, 1/7), and the share
    of batches of 3 without a repeat within 4σ of 1·(6/7)·(5/7) = 30/49 (epochs: always 1)."""
    s = sample_schedule(7, 3, 1000, seed=2, sampling="replacement")
    assert s.shape == (1000, 3) and s.min() >= 0 and s.max() <= 6
    counts = np.bincount(s.ravel(), minlength=7)
    assert np.all(np.abs(counts - 3000 / 7) <= 4 * np.sqrt(3000 * (1 / 7) * (6 / 7)))
    distinct = np.mean([len(set(row)) == 3 for row in s])
    p = 30 / 49
    assert abs(distinct - p) <= 4 * np.sqrt(p * (1 - p) / 1000)
    np.testing.assert_array_equal(s, sample_schedule(7, 3, 1000, seed=2, sampling="replacement"))
    assert not np.array_equal(s, sample_schedule(7, 3, 1000, seed=3, sampling="replacement"))


def test_replacement_needs_sgd():
    text = SGD.replace('rule = "sgd"', 'rule = "gd"')
    with pytest.raises(ConfigError, match=r'\[training\] sampling: "replacement" draws the'):
        parse_config(text)
    assert parse_config(SGD).training.sampling == "replacement"
    assert parse_config(SGD.replace('sampling = "replacement"\n', "")).training.sampling == (
        "epochs"
    )


def test_run_records_the_schedule_it_trained_on(tmp_path):
    """``/discrete/schedule`` is the schedule of the seed, and replaying it by hand reproduces
    the recorded final weights to rounding."""
    config = parse_config(SGD)
    run_experiment(config, tmp_path, quiet=True)
    with h5py.File(tmp_path / "fields.h5", "r") as f:
        schedule = f["/discrete/schedule"][()]
        assert f["/discrete/schedule"].attrs["sampling"] == "replacement"
        W_end = f["/discrete/layer0/W"][-1]
        b_end = f["/discrete/layer0/b"][-1]
    np.testing.assert_array_equal(schedule, sample_schedule(7, 3, 12, 9, "replacement"))
    setup = build(config)
    X, Y = setup.data.X, setup.data.Y
    dx = setup.convention.layers[1].measure
    dy = setup.convention.layers[0].measure
    W, b = setup.network.params.W(setup.theta0, 0).copy(), setup.network.params.b(setup.theta0, 0)
    b = b.copy()
    for batch in schedule:
        r = X[batch] @ W.T + b - Y[batch]  # (B, N_out)
        W -= 0.01 * (dy[None, :] / dx[:, None]) * (dx[:, None] * r.T @ X[batch]) / 3
        b -= 0.01 / dx * dx * r.sum(axis=0) / 3
    np.testing.assert_allclose(W, W_end, rtol=0, atol=1e-13)
    np.testing.assert_allclose(b, b_end, rtol=0, atol=1e-13)
