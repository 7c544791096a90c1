"""``synfield plot``: valid PNGs of the expected size, and the plotted data are the file's."""

import json
import struct
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from continuum.app.plot import DPI, plot_run

SYNFIELD = Path(sys.executable).parent / "synfield"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SMALL = """
[network]
widths = {widths}
[coordinates]
layout = {layout}
[data]
samples = 2
input = "{input}"
target = "cos(pi*x)"
[init]
weight = "0.5*sin(pi*x)*cos(pi*{y})"
[training]
dt = 0.05
steps = 4
[continuum]
degree = 1
cells = 8
[output]
every = 2
"""


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk of a PNG (the first chunk, at byte 16)."""
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def synfield(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SYNFIELD), *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A line-by-line layer, a grid input layer and a one-output chain, each run with --plot."""
    root = tmp_path_factory.mktemp("plots")
    cases = {
        "line": ("[8, 8]", '"line"', "sin(pi*(l+1)*y)", "y"),
        "grid": ("[16, 4]", '["grid", "line"]', "sin(pi*(l+1)*y1)*y2", "y1"),
        "chain": ("[8, 1]", '"line"', "sin(pi*(l+1)*y)", "y"),
    }
    for name, (widths, layout, inp, y) in cases.items():
        config = root / f"{name}.toml"
        config.write_text(SMALL.format(widths=widths, layout=layout, input=inp, y=y))
        plot = ["--plot"] if name == "line" else []
        proc = synfield("run", str(config), "-q", "-o", name, *plot, cwd=root)
        assert proc.returncode == 0, proc.stderr
    return root


@pytest.fixture(scope="module")
def drawn_runs(runs) -> dict:
    return {name: plot_run(runs / name) for name in ("line", "grid", "chain")}


def test_run_plot_writes_the_figures(runs):
    names = {"cost.png", "errors.png", "fields-layer0.png"}
    assert {p.name for p in (runs / "line").glob("*.png")} == names


@pytest.mark.parametrize("name", ["line", "grid", "chain"])
def test_plot_writes_valid_pngs_of_the_reported_size(drawn_runs, name):
    drawn = drawn_runs[name]
    assert set(drawn) == {"cost.png", "errors.png", "fields-layer0.png"}
    for item in drawn.values():
        assert png_size(item.path) == item.size
        assert item.size[0] >= 6 * DPI and item.size[1] >= 4 * DPI
        assert item.path.stat().st_size > 10_000  # drawn, not blank


def test_the_plotted_series_and_fields_are_those_of_fields_h5(runs):
    drawn = plot_run(runs / "line", times=[0.0, 0.2])
    with h5py.File(runs / "line" / "fields.h5", "r") as f:
        times = f["/discrete/times"][()]
        np.testing.assert_array_equal(
            drawn["cost.png"].data["discrete C(θ)"], f["/diagnostics/cost_discrete"][()]
        )
        np.testing.assert_array_equal(
            drawn["errors.png"].data["‖w − w_h‖"], f["/comparison/l2_error_w"][()]
        )
        fields = drawn["fields-layer0.png"].data
        steps = [0, len(times) - 1]
        np.testing.assert_array_equal(fields["times"], times[steps])
        np.testing.assert_array_equal(fields["w"], f["/discrete/layer0/w"][steps])
        np.testing.assert_array_equal(
            fields["w_continuum"], f["/continuum/layer0/w_at_lattice"][steps]
        )


def test_a_time_outside_the_output_times_is_refused(runs):
    """The output times are 0, 0.1, 0.2: a time up to half an interval beyond them draws the
    nearest step; further out it is refused (before: the last step, drawn for t = 10⁹)."""
    drawn = plot_run(runs / "line", times=[0.24])["fields-layer0.png"]
    np.testing.assert_allclose(drawn.data["times"], [0.2])
    for t in (0.26, -0.06, 1e9):
        with pytest.raises(ValueError, match=r"outside the output times of this run, t = 0 … 0\.2"):
            plot_run(runs / "line", times=[t])


def test_a_grid_layer_is_shown_on_its_middle_row(runs, drawn_runs):
    fields = drawn_runs["grid"]["fields-layer0.png"].data
    with h5py.File(runs / "grid" / "fields.h5", "r") as f:
        coords = f["/discrete/coords/layer0"][()]
        w = f["/discrete/layer0/w"][-1]
    # 4 x 4 grid, cell placement: rows y2 = 1/8, 3/8, 5/8, 7/8; the middle one is 5/8
    on_row = np.flatnonzero(np.isclose(coords[:, 1], 5 / 8))
    assert fields["w"].shape[1:] == (4, 4)
    np.testing.assert_array_equal(fields["w"][-1], w[:, on_row[np.argsort(coords[on_row, 0])]])


def test_an_ensemble_plot_shows_mean_and_spread(tmp_path, runs):
    config = runs / "line.toml"
    text = config.read_text().replace("[init]\n", '[init]\nkind = "random"\nscale = 0.1\n')
    (tmp_path / "random.toml").write_text(text)
    proc = synfield("ensemble", "random.toml", "--seeds", "3", "-o", "ens", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    written = (tmp_path / "ens" / "ensemble.h5").read_bytes()
    again = synfield("ensemble", "random.toml", "--seeds", "2", "-o", "ens", cwd=tmp_path)
    assert again.returncode == 1 and "already holds an ensemble" in again.stderr, again.stderr
    assert (tmp_path / "ens" / "ensemble.h5").read_bytes() == written
    proc = synfield("plot", "ens", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "ensemble.png" in proc.stdout
    drawn = plot_run(tmp_path / "ens")["ensemble.png"]
    assert png_size(drawn.path) == drawn.size
    summary = json.loads((tmp_path / "ens" / "summary.json").read_text())
    np.testing.assert_array_equal(drawn.data["l2_error_mean"], summary["l2_error_mean"])
    with h5py.File(tmp_path / "ens" / "ensemble.h5", "r") as f:
        np.testing.assert_array_equal(drawn.data["w_std"], f["/ensemble/layer0/w_std"][-1, 4])


def test_plot_of_a_folder_without_output_is_one_clear_error(tmp_path):
    proc = synfield("plot", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 1
    assert "holds no fields.h5 or ensemble.h5" in proc.stderr and "Traceback" not in proc.stderr
