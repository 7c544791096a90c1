"""The shipped example configs, found wherever synfield runs from.

The configs live in ``examples/`` at the top of the source tree; a built package carries
them as package data in ``continuum/examples/`` (``[tool.setuptools.package-dir]`` in
``pyproject.toml`` maps that package onto ``examples/``).  :func:`examples_dir` returns the
folder that exists, and :func:`resolve_config` lets ``synfield run perceptron`` name an
example from any working directory.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]
_CANDIDATES = (_PACKAGE / "examples", _PACKAGE.parent / "examples")


def examples_dir() -> Path:
    """The folder of the shipped ``*.toml`` examples (package data, else the source tree)."""
    for folder in _CANDIDATES:
        if any(folder.glob("*.toml")):
            return folder
    raise FileNotFoundError(
        "the shipped examples are missing (looked in " + ", ".join(map(str, _CANDIDATES)) + ")"
    )


def example_names() -> list[str]:
    return sorted(path.stem for path in examples_dir().glob("*.toml"))


def resolve_config(name: str) -> str:
    """``name`` itself when it is an existing path, else the shipped example of that name
    (``perceptron`` or ``perceptron.toml``); other names are returned unchanged, so the
    loader reports them as missing files."""
    if Path(name).exists() or "/" in name:
        return name
    stem = name.removesuffix(".toml")
    try:
        candidate = examples_dir() / f"{stem}.toml"
    except FileNotFoundError:
        return name
    return str(candidate) if candidate.is_file() else name
