"""The sharpness λ_max(ηH(θ)) of any cost against a dense eigendecomposition, and the explicit
step's stability checked before a run and at its output steps (docs/parallel-and-output.md,
"Divergence")."""

import json
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
from mpi4py import MPI

from continuum.app.run import run_experiment
from continuum.settings import load_config, parse_config
from discrete.config import ConfigError
from discrete.errors import DivergenceError
from discrete.experiment import build
from discrete.stability import (
    max_growth,
    quadratic_cost,
    refuse_unstable_step,
    sharpness,
    stable_step,
)
from discrete.training import integrate
from tests.configs import SYNFIELD, problem, run_text

ROOT = Path(__file__).resolve().parent.parent


def dense_sharpness(setup, theta, h=1e-5):
    """The largest eigenvalue of ``D^½ H D^½`` with the Hessian ``H`` column by column,
    ``H e_i = (∇C(θ + h e_i) − ∇C(θ − h e_i)) / 2h``, symmetrised, and ``numpy.linalg.eigvalsh``."""
    grad = lambda th: setup.cost.gradient(th)[1]  # noqa: E731
    eye = np.eye(theta.size)
    H = np.array([(grad(theta + h * e) - grad(theta - h * e)) / (2 * h) for e in eye])
    root = np.sqrt(setup.rule.rates)
    A = root[:, None] * 0.5 * (H + H.T) * root[None, :]
    return float(np.linalg.eigvalsh(A)[-1])


TANH = """
[network]
widths = [6, 5, 4]
activation = "tanh"
[coordinates]
placement = "cell"
[data]
samples = 7
input = "sin(pi*(l+1)*y) + 0.5"
target = "0.5*cos(pi*(l+1)*x)"
[init]
weight = "1.5*cos(pi*(x - y)) + 0.3*m"
bias = "0.2*sin(pi*x)"
[training]
rule = "{rule}"
lr = {lr}
dt = {dt}
steps = 20
[continuum]
enabled = false
"""


def tanh(rule="flow", lr=1.0, dt=0.01):
    return TANH.format(rule=rule, lr=lr, dt=dt)


def digits(width=8, dt=0.0185):
    """The digits classifier (:data:`tests.configs.PROBLEMS`) of ``width`` on 100 rows, 20 steps."""
    return problem(
        "digits",
        network={"widths": [64, width, width, 10]},
        coordinates={"placement": "cell"},
        data={"samples": 100, "seed": 0},
        training={"dt": dt, "steps": 20},
        output={"every": 5},
    )


@pytest.mark.parametrize("text", [tanh(), digits(width=4)], ids=["tanh-mse", "cross-entropy"])
def test_the_sharpness_of_a_nonlinear_cost_is_the_dense_hessians(text):
    """A 2-layer tanh network under squared error (P = 54) and a softmax cross-entropy
    classifier on index layers (P = 350): the Rayleigh–Ritz estimate from central-difference
    products against the dense Hessian's largest eigenvalue, both to their difference error
    (≈ 1e-10 relative), and from below within it."""
    setup = build(parse_config(text))
    assert not quadratic_cost(setup)
    exact = dense_sharpness(setup, setup.theta0)
    found = sharpness(setup.rule, setup.theta0, seed=3, products=(1, 400))
    assert found.residual <= 1e-9 * found.value
    assert found.value == pytest.approx(exact, rel=1e-8)
    assert found.value <= exact * (1 + 1e-8)


def test_the_largest_mode_of_goldsteins_chain_to_rounding():
    """The periodic chain of N = 64 sites, κ = 1: λ_max = 4κ/a² = 4N² = 16384 (the lattice
    Laplacian's top mode, below a pair at 4N² cos²(π/N): a clustered top), which power
    iteration reached only to 16371 in 200 products."""
    setup = build(load_config(ROOT / "examples" / "goldstein.toml"))
    found = sharpness(setup.rule, setup.theta0, affine=quadratic_cost(setup), products=(1, 200))
    assert found.value == pytest.approx(4 * 64**2, rel=1e-8)
    assert found.products <= 100


@pytest.mark.parametrize(
    ("text", "rule"),
    [(tanh("gd", lr=100.0, dt=0.05), "'gd'"), (digits(dt=0.06), "'flow'")],
    ids=["tanh-gd", "cross-entropy-flow"],
)
def test_an_unstable_step_on_a_nonlinear_cost_is_refused_at_the_start(text, rule, tmp_path):
    """dt beyond the bound at θ₀ of forward Euler (hλ ≤ 2) on the tanh network and of RK4
    (hλ ≤ 2.785) on the classifier: refused before anything is written, with the bound of the
    dense Hessian's λ."""
    setup = build(parse_config(text))
    exact = dense_sharpness(setup, setup.theta0)
    assert max_growth(setup.rule, setup.dt, exact) > 1.0
    proc = run_text(text, tmp_path)
    assert proc.returncode == 1
    line = proc.stderr.strip()
    assert f"[training] dt = {setup.dt:g} is beyond the stability bound of rule {rule}" in line
    assert "at the initial parameters θ₀" in line
    assert f"choose dt below {stable_step(setup.rule, exact, setup.dt):.4g}" in line
    assert not (tmp_path / "out" / "fields.h5").exists()


def test_a_run_that_sharpens_past_the_edge_stops_at_that_output_step(tmp_path):
    """The classifier's λ grows from 50.7 at θ₀ to 111.6, 139.9 and 158.2 at the output steps
    5, 10 and 15 (progressive sharpening): RK4 at dt = 0.0185 (stable for λ ≤ 2.785/dt = 150.6)
    is stable at θ₀ and at the output steps 5 and 10, not at 15.  The run stops there (its own
    estimate warm-started from the previous output step's) with dt, the step, the time, λ and
    the stable step, and keeps the output steps 0, 5 and 10 in its files, from which
    ``--resume`` continues (and stops again at step 15)."""
    text = digits()
    setup = build(parse_config(text))
    states = list(integrate(setup.rule, setup.rule.initial(setup.theta0), setup.steps, 5))
    lams = [dense_sharpness(setup, s.theta) for s in states[:4]]
    assert [max_growth(setup.rule, setup.dt, lam) > 1.0 for lam in lams] == [False] * 3 + [True]
    exact = lams[3]
    proc = run_text(text, tmp_path)
    assert proc.returncode == 1
    line = proc.stderr.strip()
    assert line.startswith("synfield: error: training diverged at step 15 (t = 0.2775): ")
    assert "[training] dt = 0.0185 is past the stability bound of rule 'flow'" in line
    lam = float(line.split("ηH eigenvalue λ = ")[1].split(",")[0])
    assert lam == pytest.approx(exact, rel=1e-5)  # printed to 6 digits
    assert f"choose dt below {stable_step(setup.rule, exact, setup.dt):.4g}" in line
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["step"] == 10
    with h5py.File(tmp_path / "out" / "fields.h5") as h5:
        steps = h5["/discrete/state/step"][:]
        assert list(steps) == [0, 5, 10]
        np.testing.assert_allclose(h5["/discrete/state/theta"][2], states[2].theta, rtol=1e-12)
    resumed = subprocess.run(
        [str(SYNFIELD), "run", "--resume", str(tmp_path / "out"), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 1 and resumed.stderr.strip() == line  # from step 10, again


def test_the_check_along_the_run_is_skipped_only_by_its_key():
    """``[training] stability_check = false`` leaves the check at θ₀ (a refusal stands) and
    drops the monitor; a value that is not a boolean is refused naming the key; stochastic
    rules and constant Hessians have no monitor."""
    sharpening = digits()
    assert refuse_unstable_step(build(parse_config(sharpening))) is not None
    off = sharpening.replace("[training]", "[training]\nstability_check = false")
    assert refuse_unstable_step(build(parse_config(off))) is None
    with pytest.raises(ValueError, match=r"\[training\] dt = 0.06 is beyond"):
        refuse_unstable_step(build(parse_config(off.replace("dt = 0.0185", "dt = 0.06"))))
    with pytest.raises(ConfigError, match=r"\[training\] stability_check: expected true or false"):
        parse_config(sharpening.replace("[training]", '[training]\nstability_check = "yes"'))
    sgd = sharpening.replace('rule = "flow"', 'rule = "sgd"\nbatch = 10')
    assert refuse_unstable_step(build(parse_config(sgd))) is None
    goldstein = build(load_config(ROOT / "examples" / "goldstein.toml"))
    assert refuse_unstable_step(goldstein) is None


@pytest.mark.mpi
def test_every_rank_stops_at_the_unstable_output_step(tmp_path):
    """The estimate is rank 0's, its verdict every rank's: under ``mpiexec -n 2`` both ranks
    raise the error of one rank at step 15, and the file keeps the steps 0, 5 and 10."""
    comm = MPI.COMM_WORLD
    out = Path(comm.bcast(str(tmp_path), root=0)) / "out"
    with pytest.raises(DivergenceError) as caught:
        run_experiment(parse_config(digits()), out, comm, quiet=True)
    assert caught.value.step == 15
    assert "[training] dt = 0.0185 is past the stability bound" in str(caught.value)
    if comm.rank == 0:
        with h5py.File(out / "fields.h5") as h5:
            assert list(h5["/discrete/state/step"][:]) == [0, 5, 10]
    comm.Barrier()
