"""fields.h5 integrity: damaged files are refused with the first bad step, never a hang;
failed writes keep every complete step; a resume on another number of ranks is refused."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from continuum.io import layout
from continuum.io.integrity import (
    CHECKSUMS,
    checked_series,
    copy_steps,
    row_checksum,
    truncation,
    verify,
)

ROOT = Path(__file__).resolve().parent.parent
SYNFIELD = Path(sys.executable).parent / "synfield"
GOLDSTEIN = ROOT / "examples" / "goldstein.toml"
STEPS = 21  # output steps of the Goldstein example (500 steps, every 25, and step 0)


def run_cli(*args, timeout=120, **kwargs):
    return subprocess.run(
        [str(SYNFIELD), *args], capture_output=True, text=True, timeout=timeout, **kwargs
    )


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> Path:
    """An uninterrupted Goldstein run (its folder); tests work on copies."""
    out = tmp_path_factory.mktemp("full") / "run"
    proc = run_cli("run", str(GOLDSTEIN), "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    return out


def copy_of(full: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    out.mkdir()
    shutil.copy(full / "fields.h5", out / "fields.h5")
    return out


def cut_copy(full: Path, tmp_path: Path, steps: int) -> Path:
    """The file of ``full`` with its first ``steps`` output steps (as a kill leaves it)."""
    out = tmp_path / "cut"
    out.mkdir()
    with (
        h5py.File(full / "fields.h5") as src,
        h5py.File(out / "fields.h5", "w", libver="latest") as dst,
    ):
        copy_steps(src, dst, steps)
    return out


def assert_same_result(a: Path, b: Path) -> None:
    """Every time series equal bit for bit; the continuum's time to rounding (a resumed
    solver restarts its clock at ``step · dt`` instead of a running sum)."""
    with h5py.File(a / "fields.h5") as fa, h5py.File(b / "fields.h5") as fb:
        assert len(fa["/discrete/times"]) == len(fb["/discrete/times"]) == STEPS
        for name, ds in checked_series(fa):
            if name == "/continuum/times":
                np.testing.assert_allclose(ds[()], fb[name][()], rtol=0, atol=1e-14)
            else:
                np.testing.assert_array_equal(ds[()], fb[name][()], err_msg=name)


def chunk_offset(path: Path, name: str, step: int) -> tuple[int, int]:
    """Byte offset and size of the chunk that holds row ``step`` of series ``name``."""
    with h5py.File(path) as f:
        info = f[name].id.get_chunk_info_by_coord((step, 0)[: f[name].ndim])
        return info.byte_offset, info.size


def test_an_intact_file_verifies_every_step(full):
    verdict = verify(full / "fields.h5")
    assert (verdict.good, verdict.damaged, verdict.checked) == (STEPS, False, True)
    assert verdict.last_time == pytest.approx(1.0, abs=1e-12)
    assert truncation(full / "fields.h5") is None


@pytest.mark.parametrize("fraction", [0.9, None])
def test_a_truncated_file_is_refused_by_inspect_and_resume(full, tmp_path, fraction):
    """Cut to 90 % (was: "12 complete steps", resumed from a zeroed state, rc 0) and to
    20 kB (was: inspect and --resume hung > 90 s): both refused within seconds."""
    out = copy_of(full, tmp_path)
    path = out / "fields.h5"
    size = path.stat().st_size
    keep = int(fraction * size) if fraction else 20_000
    os.truncate(path, keep)
    expected = f"{path} is truncated: {keep} bytes of the {size} its superblock records"
    assert truncation(path) == expected
    env = {**os.environ, "SYNFIELD_OPEN_TIMEOUT": "10"}
    started = time.monotonic()
    inspect = run_cli("inspect", str(out), env=env, timeout=60)
    resume = run_cli("run", "--resume", str(out), "-q", env=env, timeout=60)
    assert time.monotonic() - started < 45
    for proc in (inspect, resume):
        assert proc.returncode == 1
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert f"{path} is damaged" in lines[0] and expected in lines[0]
        assert "Error:" not in lines[0]  # a sentence, not an exception's class name
    assert path.stat().st_size == keep  # a refused resume leaves the file as it was


def test_random_bytes_in_a_step_name_it_and_resume_from_the_last_good(full, tmp_path):
    """4 kB of seeded random bytes over step 13's coefficients (was: resumed with 3.6e307 in
    the coefficients, rc 0): refused naming step 13; ``--from-last-good`` continues from
    step 12 to the uninterrupted result, bit for bit."""
    out = copy_of(full, tmp_path)
    path = out / "fields.h5"
    offset, size = chunk_offset(path, "/continuum/layer0/coefficients", 13)
    noise = np.random.default_rng(15).integers(0, 256, size=4096, dtype=np.uint8).tobytes()
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(noise[:size])
    verdict = verify(path)
    assert (verdict.good, verdict.bad_step) == (13, 13)
    assert verdict.reason == "its rows fail their checksum"
    inspect = run_cli("inspect", str(path))
    assert inspect.returncode == 1
    assert "output step 13 is bad" in inspect.stderr
    assert "output steps 0-12 are intact" in inspect.stderr and "--from-last-good" in inspect.stderr
    refused = run_cli("run", "--resume", str(out), "-q")
    assert refused.returncode == 1 and "output step 13 is bad" in refused.stderr
    resumed = run_cli("run", "--resume", str(out), "--from-last-good", "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_result(out, full)


def test_random_bytes_mid_file_are_never_taken_for_intact(full, tmp_path):
    """4 kB of random bytes at the middle of the file, wherever they fall (metadata or data):
    the file is reported damaged, within the time bound."""
    out = copy_of(full, tmp_path)
    path = out / "fields.h5"
    noise = np.random.default_rng(7).integers(0, 256, size=4096, dtype=np.uint8).tobytes()
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2)
        f.write(noise)
    started = time.monotonic()
    verdict = verify(path, timeout=10)
    assert time.monotonic() - started < 15
    assert verdict.damaged and verdict.good < STEPS


def test_zero_rows_without_a_marker_are_an_interrupted_step(full, tmp_path):
    """The disk-full case: ``times`` grew for a step whose rows are zeros and whose marker
    was never written (was: taken for complete, a resume "resumed" and did nothing).  The
    step is dropped; the resume continues from step 9 to the uninterrupted result."""
    out = cut_copy(full, tmp_path, 10)
    with h5py.File(out / "fields.h5", "a") as f:
        series = []
        f.visititems(
            lambda n, o: (
                series.append(o)
                if isinstance(o, h5py.Dataset) and o.maxshape and o.maxshape[0] is None
                else None
            )
        )
        for ds in series:
            if ds.name != CHECKSUMS:
                ds.resize(11, axis=0)
                ds[10] = np.zeros(ds.shape[1:], ds.dtype)
    verdict = verify(out / "fields.h5")
    assert (verdict.good, verdict.damaged) == (10, False)
    resumed = run_cli("run", "--resume", str(out), "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_result(out, full)


def test_zeroed_rows_under_a_marker_are_damage(full, tmp_path):
    out = copy_of(full, tmp_path)
    with h5py.File(out / "fields.h5", "a") as f:
        f["/discrete/state/theta"][7] = 0.0
    verdict = verify(out / "fields.h5")
    assert (verdict.good, verdict.bad_step) == (7, 7)


def test_resume_on_another_number_of_ranks_is_refused(full, tmp_path):
    """(was: Goldstein written on 2 ranks resumed on 1 with rc 0, ‖w − w_h‖ 9.6e-6 → 0.44)"""
    out = cut_copy(full, tmp_path, 10)
    with h5py.File(out / "fields.h5", "a") as f:
        f.attrs["ranks"] = 2
    proc = run_cli("run", "--resume", str(out), "-q")
    assert proc.returncode == 1
    assert "written by a run on 2 MPI rank(s); this resume runs on 1" in proc.stderr
    assert "mpiexec -n 2" in proc.stderr
    with h5py.File(out / "fields.h5") as f:
        assert len(f["/discrete/times"]) == 10


LIMITED_RUN = """
import resource, signal, sys
from mpi4py import MPI
import continuum.io.output as output

start = output.FieldsFile.start

def start_limited(self):
    # the limit applies from the first output step: MPI, DOLFINx and the form cache are set up
    start(self)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (SIZE_LIMIT, SIZE_LIMIT))

output.FieldsFile.start = start_limited
from continuum.app.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_failed_write_keeps_every_complete_step(full, tmp_path):
    """A file-size limit stops the writer part-way (was: disk full gave a segfault after 204
    tracebacks and steps of zeros listed as complete): one line naming the step, every
    complete step kept and verified, and the resume reaches the uninterrupted result."""
    out = tmp_path / "limited"
    script = LIMITED_RUN.replace("SIZE_LIMIT", "160_000")
    proc = subprocess.run(
        [sys.executable, "-c", script, "run", str(GOLDSTEIN), "-o", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "synfield: error: writing output step " in lines[0] and "File too large" in lines[0]
    failed = int(lines[0].split("writing output step ")[1].split()[0])
    assert 1 <= failed < STEPS
    verdict = verify(out / "fields.h5")
    assert verdict.good == failed and not verdict.damaged
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["step"] == 25 * (failed - 1)
    resumed = run_cli("run", "--resume", str(out), "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_result(out, full)


def test_resume_across_rank_counts_under_mpi(full, tmp_path):
    """A real two-rank file resumed on one rank, and a one-rank file resumed on two: both
    refused with one line naming both counts, the files untouched."""
    mpiexec = Path(sys.executable).parent / "mpiexec"
    two = tmp_path / "two"
    proc = subprocess.run(
        [str(mpiexec), "-n", "2", str(SYNFIELD), "run", str(GOLDSTEIN), "-o", str(two), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "a").mkdir()
    cut = cut_copy(two, tmp_path / "a", 10)
    line = run_cli("run", "--resume", str(cut), "-q").stderr.strip()
    assert line.endswith(
        "written by a run on 2 MPI rank(s); this resume runs on 1: resume "
        "with mpiexec -n 2 (coefficients on a distributed mesh are numbered "
        "by its partition)"
    )
    (tmp_path / "b").mkdir()
    one = cut_copy(full, tmp_path / "b", 10)
    proc = subprocess.run(
        [str(mpiexec), "-n", "2", str(SYNFIELD), "run", "--resume", str(one), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("synfield")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "written by a run on 1 MPI rank(s); this resume runs on 2" in lines[0]
    for folder in (cut, one):
        assert verify(folder / "fields.h5").good == 10


def test_a_marker_ahead_of_the_times_is_an_interrupted_step(full, tmp_path):
    """One flush writes a step's ``times`` row and its marker in no set order: a kill can
    leave the marker without the ``times`` row. The step is dropped, not called damage."""
    out = cut_copy(full, tmp_path, 10)
    with h5py.File(out / "fields.h5", "a") as f:
        f["/discrete/times"].resize(9, axis=0)
    verdict = verify(out / "fields.h5")
    assert (verdict.good, verdict.damaged) == (9, False)


def test_a_file_without_checksums_is_listed_unverified_and_not_resumed(full, tmp_path):
    """Files written before the checksums: ``inspect`` counts their steps by
    ``/discrete/times`` and says they are not verified; ``--resume`` refuses them."""
    out = cut_copy(full, tmp_path, 10)
    with h5py.File(out / "fields.h5", "a") as f:
        del f["/integrity"]
    inspect = run_cli("inspect", str(out))
    assert inspect.returncode == 0, inspect.stderr
    assert "complete output steps: 10 (no checksums: not verified)" in inspect.stdout
    line = one_line(run_cli("run", "--resume", str(out), "-q"))
    assert "has no per-step checksums (written by an older synfield)" in line


def test_a_file_without_a_series_the_model_writes_is_not_resumed(full, tmp_path):
    """A file intact but without a series this synfield writes (an older one's: here the
    solver's velocities removed and the checksums recomputed without them): ``--resume``
    refuses it by the series' name, instead of restarting from it or failing at its first
    append."""
    out = cut_copy(full, tmp_path, 10)
    name = layout.mesh_state("velocity")
    with h5py.File(out / "fields.h5", "a") as f:
        del f[name]
        series = checked_series(f)
        dtypes = {n: ds.dtype for n, ds in series}
        for k in range(10):
            f[CHECKSUMS][k] = row_checksum(((n, ds[k]) for n, ds in series), dtypes)
    verdict = verify(out / "fields.h5")
    assert (verdict.good, verdict.damaged) == (10, False)
    line = one_line(run_cli("run", "--resume", str(out), "-q"))
    assert f"lacks {name}," in line and "older synfield" in line, line


def one_line(proc) -> str:
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]
