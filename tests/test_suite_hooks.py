"""The suite's own MPI hook (tests/conftest.py): a failure on one rank ends the job at once."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MPIEXEC = Path(sys.executable).parent / "mpiexec"


def test_a_failure_on_rank_0_ends_the_mpi_job_instead_of_hanging(tmp_path):
    """Rank 0 fails while rank 1 waits in a barrier: without the hook the job waits forever
    (the run's timeout fails this test); with it, it aborts with a non-zero code."""
    (tmp_path / "test_hang.py").write_text(
        textwrap.dedent(
            """
            import pytest
            from mpi4py import MPI

            @pytest.mark.mpi
            def test_rank0_fails_while_rank1_waits():
                if MPI.COMM_WORLD.rank == 0:
                    assert 1 == 2
                MPI.COMM_WORLD.Barrier()
            """
        )
    )
    proc = subprocess.run(
        [
            str(MPIEXEC),
            "-n",
            "2",
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-m",
            "mpi",
            "--rootdir",
            str(tmp_path),
            "-c",
            str(ROOT / "pyproject.toml"),
            str(tmp_path / "test_hang.py"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"},
    )
    assert proc.returncode != 0
    assert "test_rank0_fails_while_rank1_waits failed on rank 0 of 2 (call)" in proc.stderr
