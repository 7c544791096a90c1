"""continuum/io/layout.py owns every path of fields.h5 and ensemble.h5: no other module of the
package spells one, the documented layout and the files runs write hold only declared paths,
and the paths are those of files written before (which must still resume and verify)."""

import re
from pathlib import Path

import h5py
import pytest
from mpi4py import MPI

from continuum.app.run import run_experiment
from continuum.io import layout
from tests.configs import document, load

ROOT = Path(__file__).resolve().parent.parent
GROUPS = "continuum|discrete|diagnostics|comparison|ensemble|integrity|dictionary"
LITERAL = re.compile(rf"""(?<![\w`])[rfbRFB]*["'](/({GROUPS})\b[^"']*)""")
"""A string literal (plain or f-string) that starts with a path of one of the file's groups."""


def test_no_module_but_layout_spells_a_path():
    assert LITERAL.search('rows[f"/continuum/{name}/w_at_lattice"] = x')  # the check can fail
    assert LITERAL.search("h5['/discrete/times']")
    assert not LITERAL.search("the stream ``/continuum/stream/s`` of every sample")
    found = []
    for path in sorted((ROOT / "continuum").rglob("*.py")):
        if path == ROOT / "continuum" / "io" / "layout.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            found += [f"{path.relative_to(ROOT)}:{n}: {m[1]}" for m in LITERAL.finditer(line)]
    assert not found, "path literals outside continuum/io/layout.py:\n" + "\n".join(found)


def test_paths_are_those_of_earlier_files():
    """The names files written before carry (SPEC 3.3, docs/parallel-and-output.md)."""
    blocks = layout.CoefficientSeries.of(layout.coefficient_group("blocks"))
    assert [
        layout.DISCRETE_TIMES,
        layout.CONTINUUM_TIMES,
        layout.discrete_field("block2", "bias"),
        layout.coordinates(3),
        layout.measure(0),
        layout.axis(1),
        layout.SCHEDULE,
        layout.STATE_VELOCITY,
        layout.lattice_field("layer1", "b"),
        layout.lattice_variance("layer0", "w"),
        blocks.weights,
        blocks.bias_velocity,
        layout.mesh_state("acceleration"),
        layout.dof_coordinates(layout.space(2)),
        layout.degree(layout.DEPTH_SPACE),
        layout.gram(layout.space(0)),
        layout.STREAM_P,
        layout.STREAM_TAU,
        layout.fluctuation("propagator_second"),
        layout.equilibrium("layer_temperature"),
        layout.diagnostic("continuum_accuracy_test"),
        layout.comparison("l2_error_b"),
        layout.CHECKSUMS,
        layout.ensemble_statistic(1, "b", "std"),
        layout.COVARIANCE_VECTORS,
    ] == [
        "/discrete/times",
        "/continuum/times",
        "/discrete/block2/bias",
        "/discrete/coords/layer3",
        "/discrete/measure/layer0",
        "/discrete/axes/layer1",
        "/discrete/schedule",
        "/discrete/state/velocity",
        "/continuum/layer1/b_at_lattice",
        "/continuum/layer0/w_var_at_lattice",
        "/continuum/blocks/coefficients",
        "/continuum/blocks/bias_velocity",
        "/continuum/layer0/acceleration",
        "/continuum/space2/dof_coordinates",
        "/continuum/depth_space/degree",
        "/continuum/space0/gram",
        "/continuum/stream/p",
        "/continuum/stream/tau",
        "/continuum/fluctuations/propagator_second",
        "/continuum/fluctuations/equilibrium/layer_temperature",
        "/diagnostics/continuum_accuracy_test",
        "/comparison/l2_error_b",
        "/integrity/crc32",
        "/ensemble/layer1/b_std",
        "/ensemble/covariance/vectors",
    ]


def declared(path: str, entries: tuple[layout.Entry, ...], groups: bool = False) -> bool:
    """Whether ``path`` is a declared dataset (or, with ``groups``, a group above one)."""
    templates = [e.template for e in entries]
    if groups:
        templates += [t.rsplit("/", k)[0] for t in templates for k in range(1, t.count("/"))]
    return any(layout.matches(t, path) for t in templates)


def test_matches_tells_declared_paths_from_others():
    assert declared("/continuum/block3/w_at_lattice", layout.FIELDS_H5)
    assert declared("/continuum/fluctuations/equilibrium", layout.FIELDS_H5, groups=True)
    assert not declared("/continuum/fluctuations/equilibrium", layout.FIELDS_H5)
    assert not declared("/continuum/stream/q", layout.FIELDS_H5)
    assert not declared("/continuum/block3/w_mean", layout.FIELDS_H5)
    assert declared("/ensemble/layer2/w_mean", layout.ENSEMBLE_H5)


def documented_paths(section: str) -> list[str]:
    """Every absolute path in backticks in the section, its ``{a, b}`` alternatives expanded
    and its placeholders (``{m}``, ``{k}``, ``{M+1}``) set to an index."""
    out = []
    for token in re.findall(r"`(/[^`\s]*(?:\{[^}`]*\}[^`\s]*)*)`", section):
        expanded = [token]
        while any("{" in p for p in expanded):
            nxt = []
            for p in expanded:
                inner = re.search(r"\{([^}]*)\}", p)
                assert inner is not None
                choices = inner[1].split(",") if "," in inner[1] else ["1"]
                nxt += [p[: inner.start()] + c.strip() + p[inner.end() :] for c in choices]
            expanded = nxt
        out += [p.rstrip("/") for p in expanded]
    return out


def test_documented_layout_is_declared():
    """docs/parallel-and-output.md "fields.h5" names only paths of continuum/io/layout.py."""
    text = (ROOT / "docs" / "parallel-and-output.md").read_text()
    section = text.split("\n## fields.h5\n")[1].split("\n## ")[0]
    assert "continuum/io/layout.py" in section
    fields, ensemble = section.split("`ensemble.h5` (from `synfield ensemble`)")
    paths = documented_paths(fields)
    assert len(paths) > 20 and "/continuum/blocks/coefficients" in paths
    assert [p for p in paths if not declared(p, layout.FIELDS_H5, groups=True)] == []
    paths = documented_paths(ensemble.split("`fields.xdmf`")[0])
    assert "/ensemble/layer1/b_std" in paths
    assert [p for p in paths if not declared(p, layout.ENSEMBLE_H5, groups=True)] == []


RESIDUAL = document(
    "resnet",
    network={"widths": [6, 6, 6], "depth": 2},
    data={"samples": 2},
    init={
        "weight": ["cos(pi*(x - y))", "sin(pi*(x + y))*cos(pi*tau)", "1 + x*y"],
        "bias": ["0.1*x", "0.2*x*tau", "0"],
    },
    training={"rule": "momentum", "gamma": 2.0, "momentum_scheme": "rk4", "steps": 4},
    continuum={"cells": 2, "depth_cells": 2},
)
MOMENTS = document("linear_sgd", data={"samples": 3}, training={"steps": 4})
PERCEPTRON = document(
    "perceptron",
    network={"widths": [6, 6]},
    data={"samples": 2, "input": "sin(pi*(l+1)*y) + 0.5", "target": "cos(pi*(l+1)*x)"},
    training={"t_end": None, "steps": 4},
    continuum={"cells": 4},
)


KINDS = {
    "residual": (RESIDUAL, [layout.STREAM_S, "/continuum/blocks/velocity", layout.DEPTH_SPACE]),
    "sgd": (MOMENTS, [layout.SCHEDULE, layout.equilibrium("temperatures")]),
    "fem": (PERCEPTRON, [layout.mesh_state("coefficients"), layout.space(1)]),
}


@pytest.mark.parametrize("kind", KINDS)
def test_runs_write_only_declared_paths(tmp_path, kind):
    """The fields.h5 of a residual network under momentum (blocks, stream, depth space,
    velocities), of SGD with its law (schedule, variances, equilibrium) and of the
    perceptron's solver (its state, two spaces): every dataset is in :data:`FIELDS_H5`."""
    base, expected = KINDS[kind]
    config = load(base, output={"every": 2, "quiet": True})
    run_experiment(config, tmp_path, MPI.COMM_SELF)
    names: list[str] = []
    with h5py.File(tmp_path / "fields.h5", "r") as f:
        assert all(path in f for path in expected)
        f.visititems(lambda n, o: names.append("/" + n) if isinstance(o, h5py.Dataset) else None)
    assert layout.CHECKSUMS in names and layout.CONTINUUM_TIMES in names
    assert [n for n in names if not declared(n, layout.FIELDS_H5)] == []
