"""fields.h5: the docs/parallel-and-output.md "fields.h5" schema read without DOLFINx, crash safety
and resume."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.configs import problem

ROOT = Path(__file__).resolve().parent.parent
SYNFIELD = Path(sys.executable).parent / "synfield"


def slow_config(steps: int) -> str:
    """Two 24-wide tanh layers under the heavy ball (RK4), ``steps`` steps of 0.01 on 48 P2
    cells, written every other step."""
    return problem(
        "deep_tanh",
        experiment={"name": "resume"},
        network={"widths": [24, 24, 24]},
        init={"weight": "0.8*cos(pi*(x - y))", "bias": None},
        training={
            "rule": "momentum",
            "gamma": 2.0,
            "momentum_scheme": "rk4",
            "dt": 0.01,
            "t_end": None,
            "steps": steps,
        },
        continuum={"cells": 48},
        output={"every": 2},
    )


def run_cli(*args, **kwargs):
    return subprocess.run([str(SYNFIELD), *args], capture_output=True, text=True, **kwargs)


def test_schema_readable_with_plain_h5py(tmp_path):
    """Every dataset docs/parallel-and-output.md "fields.h5" names, with its shape, read in a
    process without DOLFINx."""
    out = tmp_path / "run"
    proc = run_cli("run", str(ROOT / "examples" / "deep-tanh.toml"), "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    reader = textwrap.dedent(f"""
        import json, sys, h5py
        f = h5py.File({str(out / "fields.h5")!r}, "r")
        nt = len(f["/discrete/times"])
        found = {{}}
        f.visititems(lambda n, o: found.__setitem__(n, list(o.shape))
                     if hasattr(o, "shape") else None)
        attrs = {{k: str(f.attrs[k]) for k in ("synfield_version", "config", "ranks", "created")}}
        print(json.dumps({{"nt": nt, "found": found, "attrs": attrs,
                          "dictionary": sorted(f["dictionary"].attrs.keys()),
                          "dolfinx": "dolfinx" in sys.modules}}))
    """)
    proc = subprocess.run([sys.executable, "-c", reader], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["dolfinx"] is False
    nt, found = info["nt"], info["found"]
    widths = [32, 32, 32, 32]
    assert nt == 6
    assert found["discrete/times"] == [nt] and found["continuum/times"] == [nt]
    for m in range(3):
        assert found[f"discrete/coords/layer{m}"] == [widths[m], 1]
        for name in ("W", "w", "w_at_lattice"):
            group = "continuum" if name == "w_at_lattice" else "discrete"
            assert found[f"{group}/layer{m}/{name}"] == [nt, widths[m + 1], widths[m]]
        for name in (
            "discrete/layer{m}/b",
            "discrete/layer{m}/bias",
            "continuum/layer{m}/b_at_lattice",
        ):
            assert found[name.format(m=m)] == [nt, widths[m + 1]]
        assert f"continuum/layer{m}/coefficients" in found
    for name in (
        "diagnostics/cost_discrete",
        "diagnostics/cost_continuum",
        "diagnostics/energy",
        "comparison/l2_error_w",
        "comparison/l2_error_b",
    ):
        assert found[name] == [nt]
    assert "[network]" in info["attrs"]["config"] and info["attrs"]["ranks"] == "1"
    assert {"lr", "gamma", "metric"} <= set(info["dictionary"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final"]["l2_error_w"] < 1e-3
    assert (out / "fields.xdmf").exists()


def complete_steps(path: Path) -> int:
    try:
        with h5py.File(path, "r", libver="latest", swmr=True) as f:
            return len(f["/discrete/times"])
    except (OSError, KeyError):
        return 0


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    config = tmp_path / "slow.toml"
    config.write_text(slow_config(1000))
    killed, full = tmp_path / "killed", tmp_path / "full"
    proc = subprocess.Popen([str(SYNFIELD), "run", str(config), "-o", str(killed), "-q"])
    deadline = time.monotonic() + 120
    while complete_steps(killed / "fields.h5") < 8 and time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with h5py.File(killed / "fields.h5", "r", libver="latest", swmr=True) as f:
        n = len(f["/discrete/times"])
        assert 8 <= n < 501
        np.testing.assert_allclose(f["/discrete/times"][:n], 0.02 * np.arange(n), atol=1e-12)
        assert f["/discrete/layer1/W"].shape[0] >= n
        assert np.all(np.isfinite(f["/continuum/layer1/w_at_lattice"][:n]))
    resumed = run_cli("run", "--resume", str(killed), "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert run_cli("run", str(config), "-o", str(full), "-q").returncode == 0
    with h5py.File(killed / "fields.h5") as a, h5py.File(full / "fields.h5") as b:
        assert len(a["/discrete/times"]) == len(b["/discrete/times"]) == 501
        for name in (
            "/discrete/layer1/W",
            "/continuum/layer1/w_at_lattice",
            "/continuum/layer0/coefficients",
            "/comparison/l2_error_w",
        ):
            np.testing.assert_allclose(a[name][()], b[name][()], rtol=0, atol=1e-12, err_msg=name)


def test_output_fields_select_the_per_step_arrays(tmp_path):
    config = tmp_path / "few.toml"
    config.write_text(
        '[network]\nwidths = [8, 8]\n[data]\ninput = "sin(pi*y)"\n'
        'target = "x"\n[training]\nsteps = 4\n[output]\nevery = 2\n'
        'fields = ["cost"]\n'
    )
    assert run_cli("run", str(config), "-o", str(tmp_path / "o"), "-q").returncode == 0
    with h5py.File(tmp_path / "o" / "fields.h5") as f:
        assert len(f["/diagnostics/cost_discrete"]) == len(f["/diagnostics/cost_continuum"]) == 3
        for absent in (
            "/discrete/layer0/W",
            "/continuum/layer0/w_at_lattice",
            "/discrete/layer0/b",
            "/diagnostics/energy",
        ):
            assert absent not in f
        assert len(f["/comparison/l2_error_w"]) == 3 and len(f["/discrete/state/theta"]) == 3


FINER_CONTINUUM_STEP = {
    # the mesh solvers step at their own [continuum] dt, here half the training step: a resume
    # at training step n continues them at their step 2n (it used to restart them at n)
    "perceptron": {"training": {"t_end": 0.4}, "continuum": {"dt": 0.005}},
    "goldstein": {"training": {"t_end": 0.2}, "continuum": {"dt": 0.001}},
}


@pytest.mark.parametrize(
    ("example", "changes"),
    [(name, None) for name in ("perceptron", "goldstein", "sgd", "toy-banded-unit-cell")]
    + [("image-layer", None)]
    + [(name, changes) for name, changes in FINER_CONTINUUM_STEP.items()],
    ids=["perceptron", "goldstein", "sgd", "toy-banded-unit-cell", "image-layer"]
    + [f"{name}-finer-continuum-dt" for name in FINER_CONTINUUM_STEP],
)
def test_resume_from_a_truncated_file_equals_the_uninterrupted_run(tmp_path, example, changes):
    """Every kind of continuum model restores its state: the file of an uninterrupted run is
    cut after a few output steps (as a kill would leave it) and resumed; both clocks and every
    field agree with the uninterrupted run."""
    from continuum import load_config
    from continuum.io.integrity import copy_steps

    config = ROOT / "examples" / f"{example}.toml"
    if changes is not None:
        text = load_config(config).replace(**changes).text
        config = tmp_path / f"{example}.toml"
        config.write_text(text)
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert run_cli("run", str(config), "-o", str(full), "-q").returncode == 0
    cut.mkdir()
    with (
        h5py.File(full / "fields.h5") as src,
        h5py.File(cut / "fields.h5", "w", libver="latest") as dst,
    ):
        steps = len(src["/discrete/times"])
        copy_steps(src, dst, steps // 2)
    resumed = run_cli("run", "--resume", str(cut), "-q")
    assert resumed.returncode == 0, resumed.stderr
    with h5py.File(full / "fields.h5") as a, h5py.File(cut / "fields.h5") as b:
        assert len(b["/discrete/times"]) == steps
        for clock in ("/discrete/times", "/continuum/times"):  # the same clock, bit for bit
            np.testing.assert_array_equal(b[clock][()], a[clock][()], err_msg=clock)
        for name in (
            "/continuum/layer0/w_at_lattice",
            "/comparison/l2_error_w",
            "/discrete/layer0/W",
            "/continuum/layer0/coefficients",
        ):
            np.testing.assert_allclose(b[name][()], a[name][()], rtol=0, atol=1e-12, err_msg=name)
