"""The tests' TOML problems: named base problems and their variants, written as TOML text.

A base problem in :data:`PROBLEMS` is a TOML document held as section dictionaries,
``{section: {key: value}}`` (values: numbers, booleans, strings, lists of them).
:func:`problem` applies per-section overrides to one (or to a document derived from one with
:func:`document`, a test module's own variant) and returns the TOML text:

- a key given replaces the base's value, or is appended to the section;
- a key given as ``None`` is removed (it must be in the base: a misspelt key is an error);
- a section the base lacks is appended; a section given as ``None`` is removed.

The text is what a test writes to a file or hands to a parser: :func:`load` validates it
(:func:`continuum.settings.parse_config`, the whole configuration, ``[continuum]`` and
``[output]`` included), :func:`resolved` validates and resolves it
(:func:`continuum.parse_config`: the scheme that will run named, a combination no continuum
solves refused).  For example ``problem("iris", training={"rule": "sgd", "batch": 8})`` is the
two-layer iris classifier trained by SGD (batches of 8) instead of gradient flow, and
``problem("iris", continuum=None)`` the classifier with the default ``[continuum]``.

The tests pin numbers to these problems: a change to a base changes every test built on it.
"""

from __future__ import annotations

import copy
import json
import math
import numbers
import subprocess
import sys
from pathlib import Path
from typing import Any

import continuum
from continuum.settings import Config, parse_config

Document = dict[str, dict[str, Any]]

SMOOTH_DATA = {"samples": 3, "input": "sin(pi*(l+1)*y) + 0.5", "target": "0.5*cos(pi*(l+1)*x)"}
"""Three smooth samples on ``[0, 1]``: inputs ``sin(π(l+1)y) + ½``, targets ``½cos(π(l+1)x)``."""

PROBLEMS: dict[str, Document] = {
    # index → line → index (docs/physics.md "Index layers"): 60 standardized iris rows, 20 held out
    "iris": {
        "network": {"widths": [4, 16, 3], "activation": "tanh", "loss": "cross-entropy"},
        "coordinates": {"layout": ["index", "line", "index"]},
        "data": {
            "kind": "dataset",
            "name": "iris",
            "samples": 60,
            "test": 20,
            "standardize": True,
            "seed": 5,
        },
        "init": {
            "weight": ["0.5*cos(pi*(j+1)*x)", "sin(pi*(i+1)*y)"],
            "bias": ["0.3*cos(pi*x)", "0.1*i"],
        },
        "training": {"rule": "flow", "lr": 1.0, "dt": 0.05, "steps": 20},
        "continuum": {"degree": 2, "cells": 128},
    },
    # index → line → line → index: 40 standardized wine rows, 10 held out
    "wine": {
        "network": {"widths": [13, 16, 16, 3], "activation": "tanh", "loss": "cross-entropy"},
        "coordinates": {"layout": ["index", "line", "line", "index"]},
        "data": {
            "kind": "dataset",
            "name": "wine",
            "samples": 40,
            "test": 10,
            "standardize": True,
            "seed": 2,
        },
        "init": {
            "weight": ["0.5*cos(pi*x + j)", "cos(pi*(x - y))", "sin(pi*(i+1)*y)"],
            "bias": ["0.2*x", "0.1*cos(pi*x)", "0.1*i"],
        },
        "training": {"rule": "flow", "lr": 1.0, "dt": 0.05, "steps": 20},
        "continuum": {"degree": 2, "cells": 64},
    },
    # a linear layer under i.i.d. SGD batches with its moment law (docs/physics.md "SGD
    # fluctuations")
    "linear_sgd": {
        "network": {"widths": [6, 6]},
        "data": {
            "samples": 4,
            "input": "sin(pi*(l+1)*y) + 0.3*l",
            "target": "cos(pi*(l+1)*x) * (1 + x)",
        },
        "init": {"weight": "0.5*sin(pi*x)*cos(pi*y)", "bias": "0.1*x"},
        "training": {
            "rule": "sgd",
            "sampling": "replacement",
            "batch": 2,
            "dt": 0.08,
            "steps": 40,
        },
        "continuum": {"fluctuations": "moments"},
    },
    # the linear perceptron of examples/perceptron.toml under gradient flow, narrow, its
    # bilinear field on P1 cells (theta scheme)
    "perceptron": {
        "network": {"widths": [8, 8], "activation": "linear"},
        "data": {
            "samples": 3,
            "input": "sin(pi*(l+1)*y) + 0.5*cos(pi*l*y)",
            "target": "cos(pi*(l+1)*x) * (1 + x)",
        },
        "init": {"weight": "0.5*sin(pi*x)*cos(pi*y)", "bias": "0.1*x"},
        "training": {"rule": "flow", "dt": 0.01, "t_end": 1.0},
        "continuum": {"degree": 1, "cells": 8, "scheme": "theta"},
    },
    # the three-layer tanh network N → N → N → N of examples/deep-tanh.toml, narrow and short
    "deep_tanh": {
        "network": {"widths": [8, 8, 8, 8], "activation": "tanh"},
        "data": SMOOTH_DATA,
        "init": {"weight": "0.8*cos(pi*(x - y)) + 0.2*m", "bias": "0.1*sin(pi*x)"},
        "training": {"rule": "flow", "dt": 0.02, "t_end": 1.0},
        "continuum": {"degree": 2, "cells": 8},
    },
    # the digits classifier of examples/digits.toml (64 pixels → N → N → 10 classes, index
    # input and output layers), narrow, on 40 rows, the network alone
    "digits": {
        "network": {
            "widths": [64, 8, 8, 10],
            "activation": "tanh",
            "loss": "cross-entropy",
        },
        "coordinates": {"layout": ["index", "line", "line", "index"]},
        "data": {"kind": "dataset", "name": "digits", "samples": 40, "scale": 0.0625},
        "init": {
            "weight": [
                "0.5*cos(pi*x*(1 + j/32) + j)",
                "2*cos(pi*(x - y))",
                "2*cos(pi*y*(1 + i/3))",
            ],
            "bias": ["0.5*cos(pi*x)", "0.2*sin(pi*x)", "0"],
        },
        "training": {"rule": "flow", "lr": 20.0, "dt": 0.02, "steps": 5},
        "continuum": {"enabled": False},
    },
    # a tanh residual network (docs/physics.md "Depth as a coordinate"): a stream of N = 8
    # through 4 blocks, the fields smooth in x, y and the depth τ
    "resnet": {
        "network": {
            "architecture": "residual",
            "widths": [8, 8, 8],
            "depth": 4,
            "activation": "tanh",
        },
        "data": SMOOTH_DATA,
        "init": {
            "weight": ["cos(pi*(x - y))", "1.5*sin(pi*(x + 2*y))*cos(2*pi*tau)", "1 + x*y"],
            "bias": ["0.1*x", "0.5*cos(pi*x)*sin(pi*tau)", "0"],
        },
        "training": {"rule": "flow", "dt": 0.02, "steps": 10},
        "continuum": {"cells": 4, "degree": 2, "depth_cells": 4},
    },
}
"""The base problems by name, each a TOML document ``{section: {key: value}}``."""


def toml_value(value: object) -> str:
    """``value`` written as TOML (strings as JSON strings, which TOML basic strings accept;
    numbers as Python's ``int`` and ``float`` write them, non-finite ones as ``nan``, ``inf``,
    ``-inf``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):  # numpy floats too, written as Python floats
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(float(value))
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"not a TOML value: {value!r}")


def toml_text(document: Document) -> str:
    """The TOML text of ``document``: one ``[section]`` table per entry, keys in order."""
    return "".join(
        f"[{name}]\n" + "".join(f"{key} = {toml_value(value)}\n" for key, value in keys.items())
        for name, keys in document.items()
    )


def document(base: str | Document, **sections: dict[str, Any] | None) -> Document:
    """``base`` (a name in :data:`PROBLEMS`, or a document) with ``sections`` applied (module
    docstring), as a new document.

    Raises:
        KeyError: ``base`` is not a base problem, or a key or section to remove is not in it.
    """
    doc = copy.deepcopy(PROBLEMS[base] if isinstance(base, str) else base)
    for section, keys in sections.items():
        if keys is None:
            del doc[section]
            continue
        values = doc.setdefault(section, {})
        for key, value in keys.items():
            if value is None:
                del values[key]
            else:
                values[key] = copy.deepcopy(value)
    return doc


def problem(base: str | Document, **sections: dict[str, Any] | None) -> str:
    """The TOML text of :func:`document` ``(base, **sections)``."""
    return toml_text(document(base, **sections))


def load(base: str | Document, **sections: dict[str, Any] | None) -> Config:
    """The validated configuration of :func:`problem` ``(base, **sections)``."""
    return parse_config(problem(base, **sections))


def resolved(base: str | Document, **sections: dict[str, Any] | None) -> Config:
    """The validated and resolved configuration of :func:`problem` ``(base, **sections)``."""
    return continuum.parse_config(problem(base, **sections))


SYNFIELD = Path(sys.executable).parent / "synfield"
"""The command, beside the interpreter that runs the tests."""


def run_text(text: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """``synfield run`` of the configuration ``text`` (written to ``tmp_path/case.toml``) into
    ``tmp_path/out``, quietly."""
    config = tmp_path / "case.toml"
    config.write_text(text)
    return subprocess.run(
        [str(SYNFIELD), "run", str(config), "-o", str(tmp_path / "out"), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
