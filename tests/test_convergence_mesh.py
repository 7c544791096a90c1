"""Mesh-limited width orders: converge detects them, and --refine or --cells removes them.

The shipped perceptron (P2 on 32 cells) reaches its mesh error by N = 32, so over
N = 16…128 the measured orders are not the width's (fitted 0.69); the study must say so.
"""

import subprocess
import sys
from pathlib import Path

from mpi4py import MPI

from continuum.app.convergence import (
    MESH_MARGIN,
    Lattice,
    convergence_study,
    format_table,
    mesh_error,
    mesh_warnings,
    solved_model,
    time_error,
    with_cells,
    with_degree,
)
from continuum.settings import load_config

ROOT = Path(__file__).resolve().parent.parent
SYNFIELD = Path(sys.executable).parent / "synfield"
PERCEPTRON = load_config(ROOT / "examples" / "perceptron.toml")


def test_the_readme_command_warns_that_the_mesh_limits_the_order():
    proc = subprocess.run(
        [str(SYNFIELD), "converge", "perceptron", "--widths", "16", "32", "64", "128"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "warning: FE degree 2 on 32 cells" in proc.stdout
    assert "limited by the mesh: raise --cells or pass --refine" in proc.stdout


def test_refine_doubles_the_cells_until_the_width_order_two_is_measured():
    r = convergence_study(PERCEPTRON, [16, 32, 64], [2], MPI.COMM_WORLD, cells=16, refine=True)
    r = r["degrees"]["2"]
    assert not r["mesh_limited"] and r["cells"] > 16 and r["refinements"] >= 1
    assert r["continuum_error"] <= MESH_MARGIN * min(r["errors"])
    assert 1.8 <= r["fitted_order"] <= 2.2, r


def test_the_mesh_error_estimate_bounds_the_error_of_the_continuum():
    """‖u_32 − u_16‖ bounds ‖u_32 − u_256‖ (a reference with 8x finer cells) at the lattice,
    and is within the factor 2^q − 1 ≤ 15 of it (P2: q between 2 and 3 at the lattice)."""
    config = with_degree(PERCEPTRON, 2)
    lattice = Lattice.trained(config, 64)
    u16, u32, u256 = (
        solved_model(with_cells(config, cells), lattice, MPI.COMM_WORLD) for cells in (16, 32, 256)
    )
    estimate, actual = mesh_error(u32, u16, lattice), mesh_error(u32, u256, lattice)
    assert actual < estimate < 15 * actual


def test_exactly_agreeing_fields_have_no_order_instead_of_a_division_by_zero():
    """Zero initial fields and zero targets: w = b = 0 for all time, on both sides."""
    config = load_config(ROOT / "tests" / "hostile" / "valid.toml")
    r = convergence_study(config, [8, 16], None, MPI.COMM_WORLD)["degrees"]["2"]
    assert r["errors"] == [0.0, 0.0]
    assert r["orders"] == [None, None] and r["fitted_order"] is None
    assert "fitted order: none (an error is zero)" in format_table(
        {"experiment": "e", "t_end": 1.0, "degrees": {"2": r}}
    )


def test_the_time_step_of_the_continuum_is_measured_and_refine_halves_it():
    """The perceptron's Crank–Nicolson steps with its own dt, whose error does not cancel
    against the network's RK4: on 256 cells (mesh error ≲ 5e-8) it bends the last order to
    1.69 at the shipped dt = 0.01.  The study must name it, and ``refine`` must halve the step
    until the orders are the width's."""
    plain = convergence_study(PERCEPTRON, [32, 64, 128], [2], MPI.COMM_WORLD, cells=256)
    r = plain["degrees"]["2"]
    assert r["time_limited"] and not r["mesh_limited"] and r["continuum_dt"] == 0.01
    assert r["time_error"] > 10 * r["mesh_error"]
    assert r["orders"][-1] < 1.8, r  # the bent order the study warns about
    (warning,) = mesh_warnings(plain)
    assert "limited by the continuum's time step: lower [continuum] dt or pass --refine" in warning
    r = convergence_study(PERCEPTRON, [32, 64, 128], [2], MPI.COMM_WORLD, cells=256, refine=True)
    r = r["degrees"]["2"]
    assert not (r["time_limited"] or r["mesh_limited"]) and r["continuum_dt"] < 0.01
    assert all(1.9 <= order <= 2.1 for order in r["orders"][1:]), r


def test_the_time_error_estimate_bounds_the_time_error_of_the_continuum():
    """``2‖u_τ − u_{τ/2}‖`` bounds ``‖u_τ − u_{τ/8}‖`` and is within 2 × (2^q/(2^q − 1))
    ≤ 3 of it for Crank–Nicolson (q = 2)."""
    config = with_cells(with_degree(PERCEPTRON, 2), 64)
    lattice = Lattice.trained(config, 64)
    u, half, eighth = (
        solved_model(config.replace(continuum={"dt": dt}), lattice, MPI.COMM_WORLD)
        for dt in (0.01, 0.005, 0.00125)
    )
    estimate, actual = time_error(u, half, lattice), mesh_error(u, eighth, lattice)
    assert actual < estimate < 3 * actual, (estimate, actual)
