"""The output file ``fields.h5`` (SPEC 3.3), written with plain h5py.

Crash safety: the file is opened in HDF5's single-writer/multiple-reader mode, every output
step appends one row to each time series and flushes the file, and then — last — to the
``times`` datasets, and flushes it again.  A reader (or ``--resume``) counts complete steps
by the length of ``/discrete/times``; rows beyond it belong to an interrupted step and are
discarded.

Only rank 0 writes; the other ranks hand their data to it (see :mod:`continuum.run`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np

from discrete.dictionary import ScalingDictionary

Array = np.ndarray

TIME_SERIES = ("/discrete/times", "/continuum/times")


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

    @classmethod
    def create(
        cls, path: str | Path, config_text: str, ranks: int, dictionary: ScalingDictionary
    ) -> FieldsFile:
        h5 = h5py.File(path, "w", libver="latest")
        h5.attrs["synfield_version"] = version()
        h5.attrs["config"] = config_text
        h5.attrs["ranks"] = ranks
        h5.attrs["created"] = datetime.now(UTC).isoformat(timespec="seconds")
        _set_attrs(h5.require_group("dictionary"), dictionary.as_dict())
        h5["dictionary"].attrs["json"] = json.dumps(dictionary.as_dict())
        return cls(path, h5)

    @classmethod
    def reopen(cls, path: str | Path) -> tuple[FieldsFile, int]:
        """Reopen an interrupted file for appending; return it and its complete step count.

        A killed single writer leaves HDF5's file-consistency flags set, so the complete
        steps are copied (by a reader, which SWMR allows) into a fresh file that replaces
        the old one; rows of an interrupted step beyond the ``times`` series are dropped.
        """
        path = Path(path)
        fresh = path.with_suffix(".resume.h5")
        with (
            h5py.File(path, "r", libver="latest", swmr=True) as old,
            h5py.File(fresh, "w", libver="latest") as new,
        ):
            complete = len(old["/discrete/times"])
            _copy_truncated(old, new, complete)
        os.replace(fresh, path)
        h5 = h5py.File(path, "a", libver="latest")
        self = cls(path, h5)
        self._series = [n for n, o in _walk(h5) if o.maxshape and o.maxshape[0] is None]
        h5.swmr_mode = True
        return self, complete

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
        """Switch to single-writer/multiple-reader mode: no new datasets from here on."""
        self.h5.swmr_mode = True

    def append(self, rows: Mapping[str, Array]) -> None:
        """One output step: every series gets its row and the file is flushed; then the
        ``times`` series get theirs, and the file is flushed again.

        The first flush puts every data row on disk before any ``times`` series grows (within
        one flush HDF5 writes its metadata in no set order, so a process killed during a single
        flush could leave ``times`` longer than a data series)."""
        missing = set(self._series) - set(rows)
        if missing:
            raise KeyError(f"output step lacks series {sorted(missing)}")
        data = [name for name in self._series if name not in TIME_SERIES]
        times = [name for name in self._series if name in TIME_SERIES]
        for names in (data, times):
            for name in names:
                self._append_row(name, rows[name])
            self.h5.flush()

    def _append_row(self, name: str, row: Array) -> None:
        ds = self.h5[name]
        n = ds.shape[0]
        ds.resize(n + 1, axis=0)
        ds[n] = row

    def close(self) -> None:
        self.h5.close()


def _copy_truncated(src: h5py.Group, dst: h5py.Group, rows: int) -> None:
    """Copy groups, attributes and datasets; time series keep their first ``rows`` rows."""
    dst.attrs.update(src.attrs)
    for name, obj in src.items():
        if isinstance(obj, h5py.Group):
            _copy_truncated(obj, dst.create_group(name), rows)
            continue
        if obj.maxshape and obj.maxshape[0] is None:
            ds = dst.create_dataset(
                name, data=obj[:rows], maxshape=obj.maxshape, chunks=obj.chunks, dtype=obj.dtype
            )
        else:
            ds = dst.create_dataset(name, data=obj[()])
        ds.attrs.update(obj.attrs)


def _walk(h5: h5py.File) -> list[tuple[str, h5py.Dataset]]:
    found: list[tuple[str, h5py.Dataset]] = []
    h5.visititems(lambda n, o: found.append(("/" + n, o)) if isinstance(o, h5py.Dataset) else None)
    return found


def describe(path: str | Path) -> str:
    """A human-readable listing of ``fields.h5`` (for ``synfield inspect``)."""
    lines = []
    with h5py.File(path, "r", libver="latest", swmr=True) as h5:
        lines.append(f"{path}")
        for key in ("synfield_version", "ranks", "created"):
            lines.append(f"  {key}: {h5.attrs.get(key)}")
        times = [name for name in ("/discrete/times", "/ensemble/times") if name in h5]
        complete = len(h5[times[0]]) if times else 0  # fields.h5, or an ensemble.h5
        lines.append(f"  complete output steps: {complete}")
        for name, ds in _walk(h5):
            lines.append(f"  {name:<42} {ds.shape!s:<22} {ds.dtype}")
        if "dictionary" in h5:
            lines.append("  dictionary:")
            lines.extend(f"    {k} = {v}" for k, v in h5["dictionary"].attrs.items() if k != "json")
    return "\n".join(lines)
