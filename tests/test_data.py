"""Data sets from files and probes (README "Using it")."""

import h5py
import numpy as np
import pytest

from continuum.settings import load_config
from discrete.experiment import build


def write_config(tmp_path, name: str) -> str:
    path = tmp_path / "file.toml"
    path.write_text(
        f'[network]\nwidths = [5, 3]\n[data]\nkind = "file"\npath = "{name}"\n'
        "[continuum]\nenabled = false\n"
    )
    return path


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_file_data_are_read_as_given(tmp_path, suffix):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((4, 5)), rng.standard_normal((4, 3))
    if suffix == ".npz":
        np.savez(tmp_path / "data.npz", X=X, Y=Y)
    else:
        with h5py.File(tmp_path / "data.h5", "w") as f:
            f["X"], f["Y"] = X, Y
    setup = build(load_config(write_config(tmp_path, f"data{suffix}")))
    np.testing.assert_array_equal(setup.data.X, X)
    np.testing.assert_array_equal(setup.data.Y, Y)


def test_file_data_of_the_wrong_shape_name_both_shapes(tmp_path):
    np.savez(tmp_path / "data.npz", X=np.zeros((4, 6)), Y=np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"X has shape \(4, 6\).*\(L, 5\) and \(L, 3\)"):
        build(load_config(write_config(tmp_path, "data.npz")))


def test_file_data_with_nan_are_refused(tmp_path):
    X = np.zeros((2, 5))
    X[1, 2] = np.nan
    np.savez(tmp_path / "data.npz", X=X, Y=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="X holds NaN"):
        build(load_config(write_config(tmp_path, "data.npz")))
