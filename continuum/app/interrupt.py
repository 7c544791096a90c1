"""SIGINT and SIGTERM end a run cleanly, on every rank, at an output step.

:class:`Interrupts` replaces the handlers of both signals (Python's KeyboardInterrupt and
PETSc's error handler, which prints "recompile with --with-debugging") by one that only
records the signal.  The run asks :meth:`Interrupts.pending` after every output step, so the
file and ``summary.json`` are flushed in a consistent state; under MPI the ranks agree on it
with one ``Allreduce``, so all of them stop at the same step whichever rank the signal
reached.  A second signal ends the process at once.  The exit code is the shell's
``128 + signal number``: 130 for SIGINT, 143 for SIGTERM.

Every other command (``converge``, ``ensemble``, ``plot``), and a run outside its output loop,
stops at once on either signal (:func:`stop_at_once`, installed by the command line with PETSc
told to keep out of the signals: ``-no_signal_handler``) with one line and the same codes.

docs/parallel-and-output.md, "Interrupting a run".
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from mpi4py import MPI

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(Exception):
    """A run ended by a signal after its last complete output step ``step``."""

    def __init__(self, signum: int, step: int, outdir: str):
        self.signum, self.step = signum, step
        name = signal.Signals(signum).name
        super().__init__(
            f"{name}: interrupted at step {step}; resume with synfield run --resume {outdir}"
        )

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class Stopped(BaseException):
    """A signal that ended a command at once: outside a run's output loop (every command but
    ``run`` has none), or a second signal within it.  A ``BaseException``, as Python's
    KeyboardInterrupt, so that no ``except Exception`` holds it up."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def stop_at_once(signum: int, frame: FrameType | None) -> None:
    """The handler of :data:`SIGNALS` outside a run's output loop: raise :class:`Stopped`."""
    raise Stopped(signum)


class Interrupts:
    """Records SIGINT/SIGTERM while active (a context manager; main thread only)."""

    def __init__(self, comm: MPI.Comm = MPI.COMM_WORLD):
        self.comm = comm
        self.received = 0
        self._previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}

    def _record(self, signum: int, frame: FrameType | None) -> None:
        if self.received:
            raise Stopped(signum)  # a second signal: stop now
        self.received = signum

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is not threading.main_thread():
            return self
        try:  # PETSc's handler would print its own report first (when PETSc is loaded)
            from petsc4py import PETSc

            PETSc.Sys.popSignalHandler()
        except ImportError:
            pass
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._record)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def pending(self) -> int:
        """The signal received on any rank (0 if none): a collective call."""
        if self.comm.size == 1:
            return self.received
        return self.comm.allreduce(self.received, op=MPI.MAX)
