"""The continuum limit: field theories, the finite-element solver, comparison, output, CLI.

The configuration loaders here are those of :mod:`continuum.settings` (the discrete sections and
``[continuum]``, ``[output]``) followed by :func:`continuum.models.registry.resolve`: a
combination that no continuum solves is refused when the file is read, and the returned
configuration names the scheme that will run.
``mpi4py.MPI`` is imported first, so that ``import continuum`` (or any of its modules)
before ``import dolfinx`` initialises MPI in the order DOLFINx requires.
"""

from __future__ import annotations

import os

from mpi4py import MPI  # noqa: F401  (before dolfinx, whatever the caller imports next)

from continuum import settings
from continuum.models.registry import resolve

__all__ = ["default_config", "load_config", "parse_config", "resolve"]


def load_config(path: str | os.PathLike[str]) -> settings.Config:
    """Read, validate and resolve the TOML configuration at ``path`` (ConfigError if not)."""
    return resolve(settings.load_config(path))


def parse_config(
    text: str, source: str = "<string>", base_dir: str | os.PathLike[str] | None = None
) -> settings.Config:
    """Parse, validate and resolve TOML ``text`` (ConfigError if not)."""
    return resolve(settings.parse_config(text, source, base_dir))


def default_config() -> settings.Config:
    """The built-in experiment, resolved."""
    return resolve(settings.default_config())
