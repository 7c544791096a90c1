"""SIGINT and SIGTERM end a run cleanly: one line, exit 128 + signal, a summary that says
so, and a resume that reaches the uninterrupted result."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_output import slow_config

from continuum.io.integrity import checked_series

SYNFIELD = Path(sys.executable).parent / "synfield"
MPIEXEC = Path(sys.executable).parent / "mpiexec"
STEPS = 400  # every 2: 201 output steps


def marked_steps(path: Path) -> int:
    try:
        with h5py.File(path, "r", libver="latest", swmr=True) as f:
            return len(f["/integrity/crc32"])
    except (OSError, KeyError):
        return 0


def interrupt(command: list[str], outdir: Path, signum: int) -> subprocess.CompletedProcess:
    """Start ``command``, send ``signum`` once 10 output steps are on disk, wait for it."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while marked_steps(outdir / "fields.h5") < 10 and time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.01)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "slow.toml"
    path.write_text(slow_config(STEPS))
    return path


@pytest.fixture(scope="module")
def uninterrupted(config, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("full") / "run"
    proc = subprocess.run(
        [str(SYNFIELD), "run", str(config), "-o", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_the_run_cleanly_and_it_resumes(config, uninterrupted, tmp_path, signum):
    """(was: Ctrl-C printed a Python traceback; SIGTERM PETSc's "recompile with
    --with-debugging"; neither said how to resume)"""
    out = tmp_path / "run"
    proc = interrupt([str(SYNFIELD), "run", str(config), "-o", str(out), "-q"], out, signum)
    assert proc.returncode == 128 + signum
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    name = signal.Signals(signum).name
    assert lines[0].startswith(f"synfield: {name}: interrupted at step ")
    assert lines[0].endswith(f"; resume with synfield run --resume {out}")
    step = int(lines[0].split("interrupted at step ")[1].split(";")[0])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["step"] == step
    with h5py.File(out / "fields.h5") as f:  # closed cleanly: opens with every check
        assert len(f["/discrete/times"]) == step // 2 + 1
        assert f["/discrete/state/step"][-1] == step
    resumed = subprocess.run(
        [str(SYNFIELD), "run", "--resume", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "summary.json").read_text())["status"] == "complete"
    with h5py.File(out / "fields.h5") as a, h5py.File(uninterrupted / "fields.h5") as b:
        for name, ds in checked_series(b):
            np.testing.assert_array_equal(a[name][()], ds[()], err_msg=name)


def test_sigint_under_mpi_stops_every_rank_at_one_step(config, tmp_path):
    """Two ranks: mpiexec forwards the signal; the ranks agree on the step and both exit
    130 with one line from rank 0 (was: two interleaved tracebacks)."""
    out = tmp_path / "run"
    command = [str(MPIEXEC), "-n", "2", str(SYNFIELD), "run", str(config), "-o", str(out), "-q"]
    proc = interrupt(command, out, signal.SIGINT)
    assert proc.returncode == 130, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("synfield")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "SIGINT: interrupted at step " in lines[0]


@pytest.mark.parametrize(
    ("args", "signum", "leaves"),
    [
        (["converge", "digits", "--widths", "8", "16", "32", "64"], signal.SIGTERM, "converge"),
        (
            ["ensemble", "sgd-fluctuations", "--over", "schedule", "--seeds", "400"],
            signal.SIGINT,
            "no ensemble.h5 was written",
        ),
    ],
    ids=["converge-SIGTERM", "ensemble-SIGINT"],
)
def test_a_command_without_output_steps_stops_at_once_with_one_line(args, signum, leaves, tmp_path):
    """Before: converge ended by SIGTERM printed PETSc's crash report and MPI_Abort(59), and by
    SIGINT a KeyboardInterrupt traceback, as did the ensemble."""
    out = ["-o", str(tmp_path / "ens")] if args[0] == "ensemble" else []
    proc = subprocess.Popen(
        [str(SYNFIELD), *args, *out], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(6.0)  # past the imports (PETSc's among them): inside the computation
    assert proc.poll() is None, "the command ended before it could be interrupted"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err and "PETSC ERROR" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"synfield: {signal.Signals(signum).name}: stopped at once; "), last
    assert leaves in last
    assert not (tmp_path / "ens" / "ensemble.h5").exists()
