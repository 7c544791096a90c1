"""Random-initialisation ensembles: sampling error σ/√S and rank independence."""

import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from mpi4py import MPI

from continuum.app.ensemble import run_ensemble
from continuum.app.run import run_experiment
from continuum.settings import parse_config

CONFIG = parse_config("""
[network]
widths = [16, 16]
[data]
samples = 3
input = "sin(pi*(l+1)*y)"
target = "cos(pi*x)"
[init]
kind = "random"
weight = "0.5*sin(pi*x)*cos(pi*y)"
scale = 0.3
seed = 10
[training]
rule = "flow"
dt = 0.05
steps = 20
[continuum]
cells = 32
[output]
every = 10
""")


def test_mean_field_error_is_the_sampling_error(tmp_path):
    """Linear flow commutes with the average: ‖w̄_S − w_h‖ ≈ rms(σ_S)/√S (+ width error)."""
    for seeds in (8, 32):
        result = run_ensemble(CONFIG, seeds, tmp_path / str(seeds), MPI.COMM_SELF)
        with h5py.File(tmp_path / str(seeds) / "ensemble.h5") as f:
            sigma = np.sqrt(np.mean(f["/ensemble/layer0/w_std"][-1] ** 2))
        predicted = sigma / np.sqrt(seeds)
        assert result["l2_error_mean"][-1] == pytest.approx(predicted, rel=0.15)


def test_one_draw_is_compared_with_the_mean_and_says_so(tmp_path, capsys):
    """``synfield run`` of random initial fields: the lattice norm of the i.i.d. noise is its
    scale at every width (256 draws: 4 % relative spread), and the comparison table says that
    the error is the draw's (was: ‖w − w_h‖ = scale printed as the continuum's error)."""
    run_experiment(CONFIG, tmp_path / "run", MPI.COMM_SELF)
    with h5py.File(tmp_path / "run" / "fields.h5") as f:
        assert f["/comparison/l2_error_w"][0] == pytest.approx(0.3, rel=0.15)
    assert "[init] kind = 'random': the network started from one draw (scale = 0.3, seed = 10)" in (
        capsys.readouterr().out
    )


@pytest.mark.mpi
def test_ensemble_on_two_ranks_equals_one_rank():
    comm = MPI.COMM_WORLD
    path = Path(comm.bcast(tempfile.mkdtemp() if comm.rank == 0 else None, root=0))
    run_ensemble(CONFIG, 6, path / "two", comm)
    if comm.rank == 0:
        run_ensemble(CONFIG, 6, path / "one", MPI.COMM_SELF)
        with (
            h5py.File(path / "one" / "ensemble.h5") as a,
            h5py.File(path / "two" / "ensemble.h5") as b,
        ):
            for name in (
                "/ensemble/layer0/w_mean",
                "/ensemble/layer0/w_std",
                "/ensemble/layer0/b_mean",
                "/continuum/layer0/w_at_lattice",
            ):
                np.testing.assert_allclose(b[name][()], a[name][()], rtol=0, atol=1e-10)
    comm.Barrier()
