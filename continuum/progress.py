"""Progress and console output on rank 0 only."""

from __future__ import annotations

import sys
from collections.abc import Iterator

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

    def progress(self, total: int, desc: str) -> ProgressBar:
        return ProgressBar(total, desc, enabled=self.root and not self.quiet)


class ProgressBar:
    """A tqdm bar (stderr) that shows time, step and the latest figures; a no-op off rank 0."""

    def __init__(self, total: int, desc: str, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                desc=desc,
                file=sys.stderr,
                unit="step",
                dynamic_ncols=True,
                mininterval=0.5,
            )

    def update(self, step: int, **figures: float) -> None:
        if self.bar is None:
            return
        self.bar.n = step
        self.bar.set_postfix({k: f"{v:.3e}" for k, v in figures.items()}, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> Iterator[None]:
        self.close()
