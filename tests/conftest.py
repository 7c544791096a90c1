"""Suite-wide hooks.

Under ``mpiexec -n 2`` a test that fails on one rank while the other waits in a collective
would hang the job until its timeout; the failing rank prints its report and aborts the job
instead, so a failure ends the MPI run at once with a non-zero exit code.

Every rank of an ``mpiexec`` run also gets a root for its temporary directories of its own
(``tmp_path``): two pytest processes sharing ``/tmp/pytest-of-<user>`` race to delete its
old entries (pytest's ``rm_rf`` warnings).
"""

import getpass
import os
import sys
import tempfile
from pathlib import Path

import pytest


def pytest_configure(config):
    rank = os.environ.get("PMI_RANK")  # set by mpiexec (MPICH's Hydra) in every rank
    if rank is not None and config.option.basetemp is None:
        root = Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}-rank{rank}"
        config.option.basetemp = str(root)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and "mpi" in item.keywords:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
        if comm.size > 1:
            print(
                f"\n{item.nodeid} failed on rank {comm.rank} of {comm.size} ({report.when}):\n"
                f"{report.longreprtext}",
                file=sys.stderr,
                flush=True,
            )
            comm.Abort(1)
