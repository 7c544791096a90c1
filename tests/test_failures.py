"""Failures end with a clear message naming the step and the cause; output stays readable."""

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

from continuum.app.cli import message
from tests.configs import run_text

ROOT = Path(__file__).resolve().parents[1]
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


def test_an_overflowing_run_ends_with_its_one_line_and_no_numpy_warnings(tmp_path):
    """lr = 1e300 overflows the first gradient: the run stops with the divergence line alone
    (before, eight NumPy RuntimeWarnings came first, 17 lines in all)."""
    text = (ROOT / "examples" / "deep-tanh.toml").read_text().replace("lr = 1.0", "lr = 1e300")
    assert "lr = 1e300" in text
    proc = run_text(text, tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "training diverged at step 1" in lines[0] and "reduce dt or lr" in lines[0]


def test_the_limits_of_the_machine_are_named_with_the_keys_that_set_them():
    """A MemoryError (from NumPy's allocator, or DOLFINx's std::bad_alloc with no text) and
    an OverflowError of Python's float arithmetic name the keys that set the sizes and scales."""
    empty, allocator = MemoryError(), MemoryError("Unable to allocate 29.1 TiB for an array")
    assert message(empty).startswith("out of memory (MemoryError): the run's arrays do not fit")
    assert message(allocator).startswith("out of memory (Unable to allocate 29.1 TiB")
    assert "[continuum] cells" in message(empty) and "[network] widths" in message(empty)
    overflow = message(OverflowError(34, "Numerical result out of range"))
    assert overflow.startswith("a number overflowed float64") and "[training] lr" in overflow
    assert message(KeyError("x")) == "KeyError: 'x'"


def test_a_library_value_error_is_named_as_such():
    """A ``ValueError`` of synfield's own code prints as its text; one raised inside a library
    keeps its type (was: NumPy's "negative dimensions are not allowed" printed bare, as if it
    were one of synfield's messages)."""
    from mpi4py import MPI

    from meshes.domains import circle

    for call, printed in [
        (lambda: circle(MPI.COMM_SELF, 2), "a circle needs at least 3 cells, got 2"),
        (lambda: np.zeros(-1), "ValueError: negative dimensions are not allowed"),
    ]:
        try:
            call()
        except ValueError as error:
            assert message(error) == printed
        else:
            raise AssertionError("no ValueError")
    assert message(ValueError("made by hand")) == "ValueError: made by hand"
