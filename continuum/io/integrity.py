"""Integrity of ``fields.h5``: per-step checksums, truncation check, bounded verification.

Every output step ``k`` ends with one row of ``/integrity/crc32``: the CRC-32 of the bytes of
row ``k`` of every time series, in the order of their names (docs/parallel-and-output.md,
"Integrity").  The row is written after the data rows are on disk, so it is the step's
completion marker: a step is *complete* when its marker exists and the recomputed CRC equals
it.  The static datasets (coordinates, measures, FE data) carry one CRC of their own, the
attribute ``crc32_static`` of ``/integrity``.

A reader checks the file before trusting it:

1. truncation: the end-of-file address stored in the HDF5 superblock must not lie beyond
   the file's size (HDF5 skips this check for single-writer/multiple-reader opens, the only
   opens that accept the file of a killed writer);
2. every marked step, in order, against its checksum; the first that fails is the first bad
   step, the steps before it are the last good prefix.  A step that lacks a marker or a row
   (the series only grow, and one flush writes a step's ``times`` rows and marker in no set
   order) is the interrupted last step: it and any after it are dropped, not reported.

A damaged file can make the HDF5 library retry unreadable metadata for minutes, so
verification and salvage run in a child process with a time bound
(:data:`OPEN_TIMEOUT_S`, environment variable ``SYNFIELD_OPEN_TIMEOUT``); the child reports
each verified step as it goes, so a hang still tells how far the file is good.

This module needs h5py and numpy only (no DOLFINx, no MPI).
"""

from __future__ import annotations

import ctypes
import json
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from h5py import h5f, h5p
from numpy.typing import ArrayLike

from continuum.io import layout
from continuum.io.layout import CHECKSUMS

Array = np.ndarray

READ_ATTEMPTS = 4  # of a metadata block by a single-writer/multiple-reader reader
OPEN_TIMEOUT_S = float(os.environ.get("SYNFIELD_OPEN_TIMEOUT", "60"))
_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class DamagedFileError(RuntimeError):
    """A ``fields.h5`` that fails its truncation or checksum verification."""


def row_checksum(rows: Iterable[tuple[str, ArrayLike]], dtypes: Mapping[str, np.dtype]) -> int:
    """CRC-32 of one output step: the rows' bytes (in the stored dtype) in name order."""
    crc = 0
    for name, row in sorted(rows, key=lambda item: item[0]):
        crc = zlib.crc32(np.ascontiguousarray(row, dtype=dtypes[name]).tobytes(), crc)
    return crc


def static_checksum(h5: h5py.File) -> int:
    """CRC-32 of every dataset that is not a time series, in name order."""
    crc = 0
    for _, ds in sorted(datasets(h5), key=lambda item: item[0]):
        if not is_series(ds):
            crc = zlib.crc32(np.ascontiguousarray(ds[()]).tobytes(), crc)
    return crc


def datasets(h5: h5py.File) -> list[tuple[str, h5py.Dataset]]:
    """Every dataset of the file as ``(absolute name, dataset)``."""
    found: list[tuple[str, h5py.Dataset]] = []
    h5.visititems(lambda n, o: found.append(("/" + n, o)) if isinstance(o, h5py.Dataset) else None)
    return found


def is_series(ds: h5py.Dataset) -> bool:
    return bool(ds.maxshape) and ds.maxshape[0] is None


def checked_series(h5: h5py.File) -> list[tuple[str, h5py.Dataset]]:
    """The time series a step's checksum covers (all but the checksums themselves)."""
    return [(n, ds) for n, ds in datasets(h5) if is_series(ds) and n != CHECKSUMS]


def truncation(path: str | Path) -> str | None:
    """Why the file is cut short (its superblock's end-of-file address lies beyond its size),
    or None.  Reads the superblock directly (format versions 0-3, no user block)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(96)
    if len(head) < 9 or head[:8] != _SIGNATURE:
        return f"{path} is not an HDF5 file ({size} bytes, no HDF5 signature)"
    version = head[8]
    if version in (0, 1):
        offsets = head[13]
        start = 24 + (4 if version == 1 else 0)
        eof_at = start + 2 * offsets  # base address, free-space address, end-of-file address
    elif version in (2, 3):
        offsets = head[9]
        eof_at = 12 + 2 * offsets  # base address, superblock extension, end-of-file address
    else:
        return None
    if offsets != 8 or len(head) < eof_at + 8:
        return None
    (eof,) = struct.unpack_from("<Q", head, eof_at)
    if eof > size:
        return f"{path} is truncated: {size} bytes of the {eof} its superblock records"
    return None


@dataclass
class Verdict:
    """What verification found: ``good`` leading steps pass; ``bad_step`` (or None) is the
    first that does not, for ``reason``; ``checked`` is False for a file without checksums
    (written before they existed: its steps are counted by ``/discrete/times``)."""

    good: int
    bad_step: int | None = None
    reason: str = ""
    checked: bool = True
    last_time: float | None = None

    @property
    def damaged(self) -> bool:
        return self.bad_step is not None


def open_readonly(path: str | Path) -> h5py.File:
    """Open for reading: with all of HDF5's consistency checks when the last writer closed
    the file; else (the file of a killed writer, whose flags are still set, or a truncated
    one) as a single-writer/multiple-reader reader, which skips the truncation check that
    :func:`truncation` makes and the verification of every step stands in for."""
    try:
        return h5py.File(path, "r", libver="latest")
    except OSError as error:
        if not any(why in str(error) for why in ("already open for write", "truncated file")):
            raise
    fapl = h5p.create(h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5f.LIBVER_LATEST, h5f.LIBVER_LATEST)
    _limit_read_attempts(fapl)
    flags = h5f.ACC_RDONLY | h5f.ACC_SWMR_READ
    return h5py.File(h5f.open(os.fsencode(path), flags, fapl=fapl))


def _limit_read_attempts(fapl: h5p.PropFAID) -> None:
    """``H5Pset_metadata_read_attempts(fapl, READ_ATTEMPTS)`` (not wrapped by h5py): a
    single-writer/multiple-reader reader retries a metadata block whose checksum fails 100
    times with growing pauses, which on a damaged file is minutes per block."""
    library = next(
        (
            line.split()[-1]
            for line in open("/proc/self/maps")
            if "/libhdf5" in line and "libhdf5_hl" not in line
        ),
        None,
    )
    if library is not None:
        ctypes.CDLL(library).H5Pset_metadata_read_attempts(
            ctypes.c_int64(fapl.id), ctypes.c_uint(READ_ATTEMPTS)
        )


def _scan(path: str, emit) -> None:
    """Verify ``path`` step by step, calling ``emit`` with a JSON-able dict per finding."""
    cut = truncation(path)
    try:
        h5 = open_readonly(path)
    except OSError as error:
        emit({"fatal": _joined(f"HDF5 cannot open it: {error}", cut)})
        return
    with h5:
        times = h5[layout.DISCRETE_TIMES] if layout.DISCRETE_TIMES in h5 else None
        if CHECKSUMS not in h5:
            emit({"unchecked": 0 if times is None else len(times)})
            return
        expected = h5[layout.INTEGRITY].attrs.get(layout.STATIC_CHECKSUM)
        if expected is not None and static_checksum(h5) != int(expected):
            emit(
                {
                    "bad": 0,
                    "reason": "the static datasets (coordinates, FE data) fail their checksum",
                }
            )
            return
        crcs = h5[CHECKSUMS][()]
        series = checked_series(h5)
        dtypes = {n: ds.dtype for n, ds in series}
        for k, stored in enumerate(crcs):
            if any(ds.shape[0] <= k for _, ds in series):
                return  # rows missing (series only grow): the interrupted last step onwards
            try:
                crc = row_checksum(((n, ds[k]) for n, ds in series), dtypes)
            except (OSError, RuntimeError) as error:
                emit({"bad": k, "reason": _joined(f"its rows cannot be read: {error}", cut)})
                return
            if crc != int(stored):
                emit({"bad": k, "reason": _joined("its rows fail their checksum", cut)})
                return
            assert times is not None, "a checksummed step has its time"
            emit({"good": k, "t": float(times[k])})
    # A file cut short whose every marked step verifies lost only the rows of a step that
    # was being written (a failed write): those steps are intact.


def _joined(reason: str, cut: str | None) -> str:
    return reason if cut is None else f"{reason}; {cut}"


def _copy(src_path: str, dst_path: str, steps: int) -> None:
    """Copy ``src_path`` into a fresh ``dst_path`` keeping the first ``steps`` rows of every
    time series (groups, attributes and static datasets whole)."""
    with open_readonly(src_path) as src, h5py.File(dst_path, "w", libver="latest") as dst:
        copy_steps(src, dst, steps)


def copy_steps(src: h5py.Group, dst: h5py.Group, rows: int) -> None:
    """Copy groups, attributes and datasets; time series keep their first ``rows`` rows."""
    dst.attrs.update(src.attrs)
    for name, obj in src.items():
        if isinstance(obj, h5py.Group):
            copy_steps(obj, dst.create_group(name), rows)
            continue
        if is_series(obj):
            ds = dst.create_dataset(
                name, data=obj[:rows], maxshape=obj.maxshape, chunks=obj.chunks, dtype=obj.dtype
            )
        else:
            ds = dst.create_dataset(name, data=obj[()])
        ds.attrs.update(obj.attrs)


def _child_main(argv: list[str]) -> None:
    """Entry point of the bounded child process: one JSON object per line on stdout."""

    def emit(item: dict) -> None:
        print(json.dumps(item), flush=True)

    try:
        if argv[0] == "scan":
            _scan(argv[1], emit)
            emit({"done": True})
        elif argv[0] == "config":
            with open_readonly(argv[1]) as h5:
                emit({"config": str(h5.attrs["config"])})
        else:
            _copy(argv[1], argv[2], int(argv[3]))
            emit({"copied": int(argv[3])})
    except KeyError as error:  # h5py: an object whose metadata does not read back
        reason = f"its HDF5 metadata cannot be read ({error.args[0] if error.args else error})"
        emit({"fatal": _joined(reason, truncation(argv[1]))})
    except Exception as error:  # reported to the parent, which names the file
        emit({"fatal": _joined(f"{type(error).__name__}: {error}", truncation(argv[1]))})


def _bounded(args: list[str], timeout: float) -> tuple[list[dict], bool]:
    """Run :func:`_child_main` with ``args`` in a child process for at most ``timeout``
    seconds; return its findings and whether it finished in time."""
    root = str(Path(__file__).resolve().parents[2])
    # The check reads HDF5 only: importing the package must not initialise MPI in a child of
    # an MPI rank (continuum imports mpi4py.MPI first, and MPI_Init there fails or hangs).
    code = "import mpi4py; mpi4py.rc.initialize = False; import sys; "
    code += f"sys.path.insert(0, {root!r}); import continuum.io.integrity as m; "
    code += "m._child_main(sys.argv[1:])"
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # a Ctrl-C meant for the run does not end the check
    )
    try:
        out, _ = child.communicate(timeout=timeout)
        finished = True
    except subprocess.TimeoutExpired:
        child.kill()
        out, _ = child.communicate()
        finished = False
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")], finished


def verify(path: str | Path, timeout: float | None = None) -> Verdict:
    """Check ``path`` (truncation, then every step's checksum) within ``timeout`` seconds."""
    timeout = OPEN_TIMEOUT_S if timeout is None else timeout
    findings, finished = _bounded(["scan", str(path)], timeout)
    good, last_time = 0, None
    for item in findings:
        if "fatal" in item:
            return Verdict(0, 0, item["fatal"])
        if "unchecked" in item:
            cut = truncation(path)
            return Verdict(item["unchecked"], 0 if cut else None, cut or "", checked=False)
        if "good" in item:
            good, last_time = item["good"] + 1, item["t"]
        if "bad" in item:
            return Verdict(good, item["bad"], item["reason"], last_time=last_time)
    if not finished:
        reason = f"reading it did not finish within {timeout:g} s (damaged HDF5 metadata)"
        return Verdict(good, good, reason, last_time=last_time)
    if not any("done" in item for item in findings):  # the checking process was killed
        raise RuntimeError(f"{path}: the verification ended without a verdict; try again")
    return Verdict(good, last_time=last_time)


def salvage(src: str | Path, dst: str | Path, steps: int, timeout: float | None = None) -> None:
    """Copy the first ``steps`` output steps of ``src`` into a fresh file ``dst`` (bounded)."""
    timeout = OPEN_TIMEOUT_S if timeout is None else timeout
    findings, finished = _bounded(["copy", str(src), str(dst), str(steps)], timeout)
    if not finished or not any("copied" in item for item in findings):
        why = next((item["fatal"] for item in findings if "fatal" in item), "")
        why = why or f"copying did not finish within {timeout:g} s"
        raise DamagedFileError(f"{src}: cannot copy its first {steps} output steps: {why}")


def stored_config(path: str | Path, timeout: float | None = None) -> str:
    """The config text a run stored in ``path`` (read within the time bound); a file that
    cannot be read raises :class:`DamagedFileError` with the verification's message."""
    timeout = OPEN_TIMEOUT_S if timeout is None else timeout
    findings, _ = _bounded(["config", str(path)], timeout)
    for item in findings:
        if "config" in item:
            return item["config"]
    raise DamagedFileError(damage_message(path, verify(path, timeout)))


def damage_message(path: str | Path, verdict: Verdict, resume_hint: bool = True) -> str:
    """One message naming the first bad step and what can be recovered."""
    text = f"{path} is damaged: "
    if verdict.bad_step == 0 and verdict.good == 0:
        text += verdict.reason
    else:
        text += f"output step {verdict.bad_step} is bad ({verdict.reason})"
    if verdict.good:
        when = "" if verdict.last_time is None else f", t = {verdict.last_time:g}"
        text += f"; output steps 0-{verdict.good - 1} are intact (last good{when})"
        if resume_hint:
            text += (
                f"; to continue from step {verdict.good - 1}, discarding the rest: synfield run "
                f"--resume {Path(path).parent} --from-last-good"
            )
    else:
        text += "; no output step can be recovered"
    return text
