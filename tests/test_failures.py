"""Failures end with a clear message naming the step and the cause; output stays readable."""

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

SYNFIELD = Path(sys.executable).parent / "synfield"

BLOWUP = """
[experiment]
name = "blowup"
[network]
widths = [16, 16, 16]
activation = "tanh"
[data]
samples = 2
input = "sin(pi*(l+1)*y)"
target = "cos(pi*x)"
[training]
rule = "sgd"  # unchecked before the run: full-batch "gd" at this dt is refused (test_stability)
batch = 1
lr = 1.0
dt = 40.0
steps = 200
[continuum]
degree = 1
cells = 8
[output]
every = 1
"""


def test_explicit_blowup_names_step_and_keeps_output(tmp_path):
    config = tmp_path / "blowup.toml"
    config.write_text(BLOWUP)
    proc = subprocess.run(
        [str(SYNFIELD), "run", str(config), "-o", str(tmp_path / "out"), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    message = proc.stderr.strip().splitlines()[-1]
    assert "training diverged at step" in message and "times its initial size" in message
    step = int(message.split("diverged at step ")[1].split()[0])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["step"] == step - 1
    with h5py.File(tmp_path / "out" / "fields.h5", "r", libver="latest", swmr=True) as f:
        n = len(f["/discrete/times"])
        assert 1 <= n <= step
        assert np.all(np.isfinite(f["/discrete/layer0/W"][: n - 1]))


def test_bad_config_is_one_clear_line(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[network]\nwidths = [4, 4]\n[data]\ninput = \"__import__('os')\"\n")
    proc = subprocess.run(
        [str(SYNFIELD), "run", str(config), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2  # a config error
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "[data] input" in lines[0] and "__import__" in lines[0]
    assert "Traceback" not in proc.stderr
