"""The output file ``fields.h5`` (docs/parallel-and-output.md "fields.h5"), written with plain h5py.

Crash safety: the file is opened in HDF5's single-writer/multiple-reader mode, every output
step appends one row to each time series and flushes the file, and then — last — to the
``times`` datasets and the step's checksum ``/integrity/crc32`` (its completion marker,
:mod:`continuum.io.integrity`), and flushes it again.  A reader (or ``--resume``) counts complete
steps by their verified markers; rows beyond them belong to an interrupted step and are
discarded.  A failed write (disk full, I/O error) ends the run with :class:`OutputError`,
which names the complete steps the file keeps.

Only rank 0 writes; the other ranks hand their data to it (see :mod:`continuum.app.run`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np
from numpy.typing import ArrayLike

from continuum.io import layout
from continuum.io.integrity import (
    DamagedFileError,
    checked_series,
    damage_message,
    datasets,
    row_checksum,
    salvage,
    static_checksum,
    verify,
)
from discrete.dictionary import ScalingDictionary

Array = np.ndarray

OUTPUT_FIELDS = ("w", "b", "cost", "energy")
"""The per-step field arrays that ``[output] fields`` selects (``Recorder.declare`` in
:mod:`continuum.app.run`)."""


class OutputError(RuntimeError):
    """Writing ``fields.h5`` failed (disk full, I/O error); the complete steps are kept."""


def io_cause(error: Exception) -> str:
    """The operating system's reason inside an HDF5 write error (``errno = 28, error message
    = 'No space left on device'`` → ``[Errno 28] No space left on device``), else the error."""
    found = re.search(r"errno = (\d+), error message = '([^']*)'", str(error))
    if found:
        return f"[Errno {found[1]}] {found[2]}"
    return " ".join(str(error).split())


_ABANDONED: list[object] = []  # HDF5 handles of files whose writes failed (never closed)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("synfield")
    except PackageNotFoundError:
        return "unknown"


def _set_attrs(group: h5py.Group, values: Mapping) -> None:
    for key, value in values.items():
        if isinstance(value, Mapping):
            _set_attrs(group.require_group(key), value)
        elif isinstance(value, list) and value and isinstance(value[0], Mapping):
            for k, item in enumerate(value):
                _set_attrs(group.require_group(f"layer{k}"), item)
        else:
            group.attrs[key] = value


class FieldsFile:
    """Append-only writer of ``fields.h5``.

    ``series`` declares a time series (first axis grows by one per output step), ``static``
    writes a dataset once, ``append`` adds one output step to every declared series.
    """

    def __init__(self, path: str | Path, handle: h5py.File):
        self.path = Path(path)
        self.h5 = handle
        self._series: list[str] = []
        self.steps = 0  # complete output steps in the file
        self._abandoned = False  # a write failed: the handle is never closed
        self._datasets: dict[str, h5py.Dataset] = {}

    @classmethod
    def create(
        cls, path: str | Path, config_text: str, ranks: int, dictionary: ScalingDictionary
    ) -> FieldsFile:
        h5 = h5py.File(path, "w", libver="latest")
        h5.attrs["synfield_version"] = version()
        h5.attrs["config"] = config_text
        h5.attrs["ranks"] = ranks
        h5.attrs["created"] = datetime.now(UTC).isoformat(timespec="seconds")
        _set_attrs(h5.require_group(layout.DICTIONARY), dictionary.as_dict())
        h5[layout.DICTIONARY].attrs["json"] = json.dumps(dictionary.as_dict())
        return cls(path, h5)

    @classmethod
    def reopen(cls, path: str | Path, from_last_good: bool = False) -> tuple[FieldsFile, int]:
        """Reopen an interrupted file for appending; return it and its complete step count.

        The file is verified first (:func:`continuum.io.integrity.verify`): a damaged one is
        refused with a message naming its first bad step, unless ``from_last_good``, which
        keeps the intact steps before it.  A killed single writer leaves HDF5's
        file-consistency flags set, so the complete steps are copied (by a reader, which SWMR
        allows) into a fresh file that replaces the old one; rows of an interrupted step
        beyond the last marker are dropped.
        """
        path = Path(path)
        verdict = verify(path)
        if not verdict.checked:
            raise DamagedFileError(
                f"{path} has no per-step checksums (written by an older synfield): its steps "
                "cannot be verified for --resume; start the run afresh"
            )
        if verdict.damaged and not (from_last_good and verdict.good):
            raise DamagedFileError(damage_message(path, verdict))
        fresh = path.with_suffix(".resume.h5")
        salvage(path, fresh, verdict.good)
        os.replace(fresh, path)
        h5 = h5py.File(path, "a", libver="latest")
        self = cls(path, h5)
        self._series = [n for n, ds in checked_series(h5)]
        self.steps = verdict.good
        h5.swmr_mode = True
        return self, verdict.good

    def static(self, name: str, data: Array, attrs: Mapping | None = None) -> None:
        ds = self.h5.create_dataset(name, data=np.asarray(data))
        for k, v in (attrs or {}).items():
            ds.attrs[k] = v

    def series(self, name: str, tail: tuple[int, ...], dtype=np.float64) -> None:
        self.h5.create_dataset(
            name,
            shape=(0, *tail),
            maxshape=(None, *tail),
            dtype=dtype,
            chunks=(1, *tail) if tail else (1024,),
        )
        self._series.append(name)

    def start(self) -> None:
        """Seal the static datasets with their checksum, declare the per-step checksums and
        switch to single-writer/multiple-reader mode: no new datasets from here on."""
        self.h5.require_group(layout.INTEGRITY).attrs[layout.STATIC_CHECKSUM] = static_checksum(
            self.h5
        )
        self.h5.create_dataset(
            layout.CHECKSUMS, shape=(0,), maxshape=(None,), dtype=np.uint32, chunks=(1024,)
        )
        self.h5.swmr_mode = True

    def append(self, rows: Mapping[str, ArrayLike]) -> None:
        """One output step: every series gets its row and the file is flushed; then the
        ``times`` series and the step's checksum (its completion marker) get theirs, and the
        file is flushed again.

        The first flush puts every data row on disk before any marker grows (within one
        flush HDF5 writes its metadata in no set order, so a process killed during a single
        flush could leave ``times`` longer than a data series).  A failed write raises
        :class:`OutputError`: the step has no valid marker, so no reader takes it for
        complete."""
        missing = set(self._series) - set(rows)
        if missing:
            raise KeyError(f"output step lacks series {sorted(missing)}")
        data = [name for name in self._series if name not in layout.TIME_SERIES]
        times = [name for name in self._series if name in layout.TIME_SERIES]
        dtypes = {name: self._dataset(name).dtype for name in self._series}
        crc = row_checksum(((name, rows[name]) for name in self._series), dtypes)
        try:
            for names in (data, times):
                for name in names:
                    self._append_row(name, rows[name])
                if names is times:
                    self._append_row(layout.CHECKSUMS, np.uint32(crc))
                self.h5.flush()
        except (OSError, RuntimeError) as error:  # h5py raises either for a failed write
            self._abandon()
            raise OutputError(
                f"writing output step {self.steps} to {self.path} failed ({io_cause(error)}); "
                f"the file keeps its {self.steps} complete output steps: make room and continue "
                f"with synfield run --resume {self.path.parent}"
            ) from None
        self.steps += 1

    def _dataset(self, name: str) -> h5py.Dataset:
        """The open dataset ``name`` (kept open: no HDF5 object is released mid-step)."""
        if name not in self._datasets:
            self._datasets[name] = self.h5[name]
        return self._datasets[name]

    def _append_row(self, name: str, row: ArrayLike) -> None:
        ds = self._dataset(name)
        n = ds.shape[0]
        ds.resize(n + 1, axis=0)
        ds[n] = row

    def _abandon(self) -> None:
        """After a failed write the file is left open for good: HDF5 (2.0) retries the
        failed metadata writes when a dataset or the file is closed and can crash the
        process doing so (observed with a file-size limit); the complete steps are already
        on disk.  The process should end without closing it (:func:`continuum.app.cli.guarded`
        ends it with ``os._exit``)."""
        _ABANDONED.append((self.h5, self._datasets))
        self._abandoned = True

    def close(self) -> None:
        """Close the file (not after a failed write: see :meth:`_abandon`)."""
        if not self._abandoned:
            self.h5.close()


def describe(path: str | Path) -> str:
    """A human-readable listing of ``fields.h5`` (for ``synfield inspect``), after its
    verification (:func:`continuum.io.integrity.verify`): a damaged file raises
    :class:`~continuum.io.integrity.DamagedFileError` naming its first bad step."""
    verdict = verify(path)
    if verdict.damaged:
        raise DamagedFileError(damage_message(path, verdict))
    checked = "checksums verified" if verdict.checked else "no checksums: not verified"
    lines = []
    with h5py.File(path, "r", libver="latest", swmr=True) as h5:
        lines.append(f"{path}")
        for key in ("synfield_version", "ranks", "created"):
            lines.append(f"  {key}: {h5.attrs.get(key)}")
        if layout.ENSEMBLE_TIMES in h5:  # an ensemble.h5: written once, at its end
            lines.append(f"  complete output steps: {len(h5[layout.ENSEMBLE_TIMES])}")
        else:
            lines.append(f"  complete output steps: {verdict.good} ({checked})")
        for name, ds in datasets(h5):
            lines.append(f"  {name:<42} {ds.shape!s:<22} {ds.dtype}")
        if layout.DICTIONARY in h5:
            lines.append("  dictionary:")
            attrs = h5[layout.DICTIONARY].attrs
            lines.extend(f"    {k} = {v}" for k, v in attrs.items() if k != "json")
    return "\n".join(lines)
