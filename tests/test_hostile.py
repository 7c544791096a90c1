"""Hostile inputs: each one ends with its own clear one-line message and exit code, or runs.

The small configs and data files are checked in under ``tests/hostile/``; damaged or
generated files (object, string, complex and empty arrays, a file that is not HDF5, arrays
nested 2000 deep, ``/dev/zero`` as a config) are written under ``tmp_path`` by the cases.
Every case runs the command in a subprocess bounded in time and in address space, so an
input that reads until memory runs out fails the case instead of taking the machine.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

HOSTILE = Path(__file__).resolve().parent / "hostile"
SYNFIELD = Path(sys.executable).parent / "synfield"
MEMORY_LIMIT = 4 << 30
"""Address-space bound of every case (bytes): far above what a refused input needs."""

DATA_CONFIG = (
    '[network]\nwidths = [4, 4]\n[data]\nkind = "file"\npath = "{}"\n[continuum]\nenabled = false\n'
)


NOT_INTEGRABLE = (
    '[network]\nwidths = [8, 8]\n[data]\nsamples = 2\ninput = "1/y"\ntarget = "x"\n'
    '[continuum]\nscheme = "theta"\n'
)
"""The perceptron's solver on inputs ``1/y``, whose moments on the first cell diverge."""


BOUNDED = (
    "import os, resource, sys; "
    f"resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_LIMIT}, {MEMORY_LIMIT})); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)
"""A launcher that bounds its address space and becomes the command it is given: the limit is
set in a fresh interpreter, not between fork and exec in this threaded one (``preexec_fn``)."""


def synfield(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BOUNDED, str(SYNFIELD), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def shipped(name: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["run", str(HOSTILE / name), "-q", "-o", str(tmp / "out")]


def written(path: Path, text: str, options: list[str], config: bool = True) -> list[str]:
    """Write ``text`` to ``path``; the ``run`` of that config (or of the default one, with a
    file at ``path``) with ``options``."""
    path.write_text(text)
    return ["run", *([str(path)] if config else []), *options]


def data_file(name: str, write: Callable[[Path], None]) -> Callable[[Path], list[str]]:
    """A run whose ``[data] path`` is the file ``name`` that ``write`` creates in ``tmp``."""

    def args(tmp: Path) -> list[str]:
        write(tmp / name)
        (tmp / "data.toml").write_text(DATA_CONFIG.format(name))
        return ["run", str(tmp / "data.toml"), "-q", "-o", str(tmp / "out")]

    return args


def npz(**arrays: np.ndarray) -> Callable[[Path], None]:
    return lambda path: np.savez(path, **arrays)


def h5(write: Callable[[h5py.File], None]) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with h5py.File(path, "w") as f:
            write(f)

    return make


def complex_h5(f: h5py.File) -> None:
    f["X"], f["Y"] = np.full((2, 4), 1j), np.zeros((2, 4))


def group_h5(f: h5py.File) -> None:
    f.create_group("X")
    f["Y"] = np.zeros((2, 4))


def text_config(name: str, text: str | bytes) -> Callable[[Path], list[str]]:
    def args(tmp: Path) -> list[str]:
        path = tmp / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return ["run", str(path), "-q", "-o", str(tmp / "out")]

    return args


def converge(*arguments: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["converge", str(HOSTILE / "valid.toml"), *arguments]


ZEROS = np.zeros((2, 4))
CASES: dict[str, tuple[Callable[[Path], list[str]], int, str]] = {
    "nested widths": (shipped("nested-widths.toml"), 2, "[network] widths: expected a list of"),
    "20-digit width": (shipped("huge-width.toml"), 2, "weight coefficients; at most 1e+08"),
    "byte-order mark": (shipped("bom.toml"), 0, ""),
    "init scale 1e300": (shipped("init-scale.toml"), 2, "[init] scale = 1e+300"),
    "text file named .npz": (shipped("text-npz.toml"), 2, "is not an .npz (zip) archive"),
    "arrays nested 2000 deep": (
        text_config("deep.toml", "[network]\nwidths = " + "[" * 2000 + "]" * 2000 + "\n"),
        2,
        "arrays nested too deeply",
    ),
    "/dev/zero as config": (
        lambda tmp: ["run", "/dev/zero", "-q", "-o", str(tmp / "out")],
        2,
        "/dev/zero: not a configuration file: larger than 1048576 bytes",
    ),
    "config not UTF-8": (
        text_config("latin1.toml", b"[network]\nwidths = [4, 4] # \xe9\n"),
        2,
        "cannot read configuration file",
    ),
    "object array": (
        data_file("data.npz", npz(X=np.array([[1, "a", None, 2]], dtype=object), Y=ZEROS)),
        2,
        "array X is an object array",
    ),
    "string array": (
        data_file("data.npz", npz(X=np.array([["1"] * 4]), Y=ZEROS)),
        2,
        "array X has dtype <U1; expected real numbers",
    ),
    "complex array": (
        data_file("data.npz", npz(X=ZEROS, Y=np.full((2, 4), 1 + 1j))),
        2,
        "array Y has dtype complex128; expected real numbers",
    ),
    "L = 0 arrays": (
        data_file("data.npz", npz(X=np.zeros((0, 4)), Y=np.zeros((0, 4)))),
        2,
        "holds no samples (L = 0)",
    ),
    "complex HDF5": (data_file("data.h5", h5(complex_h5)), 2, "array X has dtype complex128"),
    "HDF5 group for X": (data_file("data.h5", h5(group_h5)), 2, "X is not an array"),
    "text file named .h5": (
        data_file("data.h5", lambda path: path.write_text("X, Y")),
        2,
        "is not an HDF5 file",
    ),
    "converge --widths 0 16": (converge("--widths", "0", "16"), 2, "expected a positive integer"),
    "converge --widths -8 16": (converge("--widths", "-8", "16"), 2, "integer, got -8"),
    "converge --widths 16": (converge("--widths", "16"), 2, "at least 2 strictly increasing"),
    "converge --widths 16 16 16": (
        converge("--widths", "16", "16", "16"),
        2,
        "at least 2 strictly increasing widths, got 16 16 16",
    ),
    "converge --degrees 25": (
        converge("--widths", "8", "16", "--degrees", "25"),
        2,
        "argument --degrees: invalid choice: 25",
    ),
    "converge of the SGD fluctuations' law": (  # was: AttributeError (rc 1)
        lambda tmp: ["converge", "sgd-fluctuations", "--widths", "8", "16", "32"],
        2,
        "[continuum] fluctuations = 'moments': converge measures the width error",
    ),
    "converge --degrees of unit-cell layers": (  # was: rc 1
        lambda tmp: ["converge", "toy-banded-unit-cell", "--degrees", "1", "2", "3"],
        2,
        "p-convergence compares the fields of dense layers on product domains",
    ),
    "converge --degrees --refine": (  # was: rc 0, --refine ignored
        lambda tmp: ["converge", "perceptron", "--degrees", "1", "2", "3", "--refine"],
        2,
        "converge --refine refines the mesh of a width study (--widths)",
    ),
    "ensemble of one seed": (  # was: rc 1, after the config was read
        lambda tmp: ["ensemble", "ensemble", "--seeds", "1"],
        2,
        "argument --seeds: an ensemble needs at least 2 seeds, got 1",
    ),
    "plot --times nan": (  # was: rc 0, the first output step drawn
        lambda tmp: ["plot", str(tmp), "--times", "nan"],
        2,
        "argument --times: expected a finite number, got nan",
    ),
    "perceptron data not integrable": (  # was: rc 0, C continuum 4.44 against 1.78 at t = 0
        lambda tmp: written(tmp / "c.toml", NOT_INTEGRABLE, ["-q", "-o", str(tmp / "out")]),
        1,
        "the data moments do not converge with Gauss rules",
    ),
    "run -o below a file": (  # was: rc 1, "NotADirectoryError: [Errno 20] Not a directory"
        lambda tmp: written(tmp / "f", "", ["-q", "-o", str(tmp / "f" / "out")], config=False),
        1,
        "is a file, not a folder; choose another with -o",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_hostile_input_gives_its_message_and_exit_code(case, tmp_path):
    make_args, code, fragment = CASES[case]
    proc = synfield(*make_args(tmp_path), cwd=tmp_path)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    if code:
        message = proc.stderr.strip().splitlines()[-1]
        assert fragment in message
        assert len(message) < 400
