"""The output folder of a run: its lock, its protection, its ``summary.json``.

* **Lock.**  A run holds an advisory lock (``fcntl.flock``) on ``OUTDIR/.synfield.lock``
  while it writes; a second run into the same folder is refused at once, naming the process
  that holds it.  The kernel drops the lock when the process ends, however it ends.
* **No silent overwrite.**  A folder that already holds ``fields.h5`` is refused unless the
  run is asked to overwrite it (``synfield run --overwrite``) or to continue it
  (``--resume``).
* **Summary.**  ``summary.json`` is written atomically (a temporary file renamed over it);
  its ``status`` is ``"complete"``, ``"interrupted"`` (a signal) or ``"failed"`` (an error),
  with the last complete output step and training step.

docs/parallel-and-output.md, "The output folder".
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from continuum.settings import Config

LOCK_NAME = ".synfield.lock"


class FolderError(RuntimeError):
    """The output folder cannot be used as asked (locked, or holding a result)."""


def make_folder(folder: Path) -> None:
    """Create the output folder ``folder`` and its parents where missing.

    Raises:
        FolderError: a file stands where the folder or one of its parents would be, or the
            system refuses the folder (permissions, a read-only file system).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        file = next(p for p in (folder, *folder.parents) if p.exists() and not p.is_dir())
        raise FolderError(
            f"output folder {folder}: {file} is a file, not a folder; choose another with -o"
        ) from None
    except OSError as error:
        raise FolderError(
            f"cannot create the output folder {folder}: {error.strerror}; choose another with -o"
        ) from None


class FolderLock:
    """An exclusive advisory lock on ``outdir/.synfield.lock``, held until :meth:`release`."""

    def __init__(self, outdir: str | Path):
        self.path = Path(outdir) / LOCK_NAME
        self._file: IO[str] | None = None

    def acquire(self) -> FolderLock:
        make_folder(self.path.parent)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise FolderError(
                f"{self.path.parent} is in use by another synfield run (pid {holder}); wait for "
                "it to end or choose another output folder with -o"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the flock
            self._file = None


def refuse_existing_result(outdir: str | Path, overwrite: bool) -> None:
    """Refuse to start a fresh run over an existing ``fields.h5`` unless ``overwrite``."""
    path = Path(outdir) / "fields.h5"
    if overwrite or not path.exists():
        return
    status = read_summary(outdir).get("status", "unknown")
    raise FolderError(
        f"{outdir} already holds a result (fields.h5, summary status: {status}); pass "
        f"--overwrite to replace it, --resume {outdir} to continue it, or choose another "
        "folder with -o"
    )


def read_summary(outdir: str | Path) -> dict:
    """``outdir/summary.json``, or an empty dict when there is none (or it is unreadable)."""
    try:
        return json.loads((Path(outdir) / "summary.json").read_text())
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def whole(path: Path) -> Iterator[Path]:
    """The side file ``path.partial`` to write into, renamed over ``path`` once the block ends
    without an error: a reader sees the old file or the new, never half of one."""
    partial = path.with_name(f"{path.name}.partial")
    yield partial
    os.replace(partial, path)


def write_summary(outdir: str | Path, summary: dict) -> None:
    """Write ``summary.json`` whole (:func:`whole`)."""
    with whole(Path(outdir) / "summary.json") as partial:
        partial.write_text(json.dumps(summary, indent=2))


def config_differences(stored: Config, given: Config) -> list[str]:
    """``[section] key: stored → given`` for every key whose value differs (``[output]
    quiet`` and ``[experiment] description`` do not change a result and are not compared)."""
    ignored = {("output", "quiet"), ("experiment", "description")}
    found = []
    for section in dataclasses.fields(Config):
        a, b = getattr(stored, section.name), getattr(given, section.name)
        if not dataclasses.is_dataclass(a):
            continue
        for key in dataclasses.fields(a):
            if (section.name, key.name) in ignored:
                continue
            x, y = getattr(a, key.name), getattr(b, key.name)
            if x != y:
                show = [getattr(v, "text", v) for v in (x, y)]
                found.append(f"[{section.name}] {key.name}: {show[0]!r} → {show[1]!r}")
    return found
