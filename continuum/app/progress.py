"""Progress and console output on rank 0 only."""

from __future__ import annotations

import sys
from typing import TextIO

from mpi4py import MPI


class Console:
    """Prints on rank 0 of ``comm`` unless ``quiet``; a tqdm bar for long loops."""

    def __init__(self, comm: MPI.Comm = MPI.COMM_WORLD, quiet: bool = False):
        self.comm = comm
        self.quiet = quiet

    @property
    def root(self) -> bool:
        return self.comm.rank == 0

    def print(self, *args, **kwargs) -> None:
        if self.root and not self.quiet:
            print(*args, **kwargs, flush=True)

    def notice(self, message: str) -> None:
        """One line on stderr from rank 0, quiet or not: what a run did instead of its work."""
        if self.root:
            print(f"synfield: {message}", file=sys.stderr, flush=True)

    def progress(self, total: int, desc: str) -> ProgressBar:
        return ProgressBar(total, desc, enabled=self.root and not self.quiet)


class ProgressBar:
    """Progress on stderr, a no-op off rank 0: a tqdm bar on a terminal; elsewhere (a log
    file, a pipe, a batch job) one plain line per tenth of the run, with the latest figures,
    instead of a bar's carriage returns."""

    LINES = 10
    """Lines written over a run when stderr is not a terminal (plus the last step)."""

    def __init__(self, total: int, desc: str, enabled: bool, stream: TextIO | None = None):
        self.bar = None
        self.stream = None
        self.total, self.desc = total, desc
        self.next_line = 0
        self.last_line: int | None = None
        stream = sys.stderr if stream is None else stream
        if not enabled:
            return
        if stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                desc=desc,
                file=stream,
                unit="step",
                dynamic_ncols=True,
                mininterval=0.5,
            )
        else:
            self.stream = stream

    def update(self, step: int, **figures: float) -> None:
        shown = {k: f"{v:.3e}" for k, v in figures.items()}
        if self.bar is not None:
            self.bar.n = step
            self.bar.set_postfix(shown, refresh=False)
            self.bar.refresh()
        elif self.stream is not None and step != self.last_line:
            if step >= self.next_line or step == self.total:
                values = "".join(f", {k}={v}" for k, v in shown.items())
                print(
                    f"{self.desc}: step {step}/{self.total}{values}", file=self.stream, flush=True
                )
                self.next_line = step + max(1, -(-self.total // self.LINES))
                self.last_line = step

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
