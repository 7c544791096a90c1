"""The output folder: a lock against a second run, no silent overwrite, resume guards
(CONFIG and -o beside --resume, a finished run) and the status in summary.json."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from continuum.io.rundir import FolderLock

ROOT = Path(__file__).resolve().parent.parent
SYNFIELD = Path(sys.executable).parent / "synfield"
GOLDSTEIN = ROOT / "examples" / "goldstein.toml"


def run_cli(*args, timeout=120):
    return subprocess.run([str(SYNFIELD), *args], capture_output=True, text=True, timeout=timeout)


def one_error_line(proc) -> str:
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    proc = run_cli("run", str(GOLDSTEIN), "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    return out


def test_a_second_run_into_a_locked_folder_is_refused(tmp_path):
    """(was: two runs into one folder both ended rc 0 and the first was lost)"""
    lock = FolderLock(tmp_path / "busy").acquire()
    try:
        line = one_error_line(run_cli("run", str(GOLDSTEIN), "-o", str(tmp_path / "busy"), "-q"))
    finally:
        lock.release()
    assert f"is in use by another synfield run (pid {os.getpid()})" in line
    assert not (tmp_path / "busy" / "fields.h5").exists()
    assert run_cli("run", str(GOLDSTEIN), "-o", str(tmp_path / "busy"), "-q").returncode == 0


def test_an_existing_result_is_kept_without_overwrite(finished, tmp_path):
    """(was: rerunning a config silently overwrote the previous results)"""
    before = (finished / "fields.h5").read_bytes()
    line = one_error_line(run_cli("run", str(GOLDSTEIN), "-o", str(finished), "-q"))
    assert "already holds a result (fields.h5, summary status: complete)" in line
    assert "--overwrite" in line and f"--resume {finished}" in line
    assert (finished / "fields.h5").read_bytes() == before
    again = tmp_path / "again"
    assert run_cli("run", str(GOLDSTEIN), "-o", str(again), "-q").returncode == 0
    assert run_cli("run", str(GOLDSTEIN), "-o", str(again), "-q", "--overwrite").returncode == 0
    assert json.loads((again / "summary.json").read_text())["status"] == "complete"


def test_resuming_a_finished_run_says_so_and_keeps_the_summary(finished):
    """(was: resuming a finished run emptied summary.json's "final")"""
    before = (finished / "summary.json").read_bytes()
    proc = run_cli("run", "--resume", str(finished), "-q")  # said even when quiet
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == (
        f"synfield: {finished}: the run already finished (step 500, t = 1); nothing to resume, "
        "summary.json left as it is"
    )
    assert (finished / "summary.json").read_bytes() == before
    assert json.loads(before)["final"]["l2_error_w"] > 0


def test_output_folder_beside_resume_is_refused(finished, tmp_path):
    """(was: -o X --resume DIR silently ignored -o)"""
    line = one_error_line(run_cli("run", "--resume", str(finished), "-o", str(tmp_path), "-q"))
    assert f"-o {tmp_path} with --resume {finished}" in line and "drop -o" in line


def test_a_config_beside_resume_must_equal_the_stored_one(finished, tmp_path):
    """(was: run CONFIG --resume DIR silently ignored CONFIG)"""
    changed = tmp_path / "changed.toml"
    changed.write_text(
        GOLDSTEIN.read_text()
        .replace("dt = 0.002", "dt = 0.001")
        .replace("cells = 128", "cells = 64")
    )
    line = one_error_line(run_cli("run", str(changed), "--resume", str(finished), "-q"))
    assert f"{changed} differs from the config of the run in {finished}" in line
    assert "[training] dt: 0.002 → 0.001" in line and "[continuum] cells: 128 → 64" in line
    same = run_cli("run", str(GOLDSTEIN), "--resume", str(finished), "-q")
    assert same.returncode == 0, same.stderr
