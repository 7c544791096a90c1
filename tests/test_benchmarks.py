"""The accuracy-per-cost benchmark's peer routes, and a run of every script in benchmarks/ at
tiny sizes (``--smoke``, or tiny sizes as arguments): the benchmarks themselves are not part
of the suite (benchmarks/README.md), but each must still run and pass its own checks."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from continuum.app.convergence import final_state
from continuum.settings import load_config, parse_config
from discrete.experiment import build
from tests.configs import problem

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from jax_flow import jax_flow  # noqa: E402  (benchmarks/ on the path)


def test_jax_route_with_cross_entropy_equals_the_numpy_network():
    """The JAX peer of the benchmark (jitted RK4, jax.grad of the softmax cross-entropy on
    index layers) ends where synfield's network does, to rounding."""
    setup = build(parse_config(problem("digits")))
    theta = jax_flow(setup)()
    numpy_theta = final_state(setup).theta
    assert np.abs(theta - numpy_theta).max() <= 1e-12 * np.abs(numpy_theta).max()
    assert np.abs(theta - setup.theta0).max() > 1e-3  # the flow moved the parameters


def test_jax_route_of_the_residual_network_equals_the_numpy_network():
    """The JAX residual network (the blocks as one lax.scan over stacked parameters, jitted
    RK4, jax.grad) ends where synfield's residual network does, to rounding, with and without
    biases."""
    config = load_config(ROOT / "examples/resnet.toml")
    for bias in (True, False):
        setup = build(
            config.replace(
                network={"widths": [6, 6, 6], "depth": 3, "bias": bias},
                init={} if bias else {"bias": None},
                training={"t_end": 0.1},
            )
        )
        theta = jax_flow(setup)()
        numpy_theta = final_state(setup).theta
        assert np.abs(theta - numpy_theta).max() <= 1e-13 * np.abs(numpy_theta).max()
        assert np.abs(theta - setup.theta0).max() > 1e-2  # the flow moved the parameters


def smoke_run(script: str, *args: str, smoke: bool = True) -> str:
    """The standard output of ``benchmarks/<script> --smoke *args`` (without ``--smoke`` if not
    ``smoke``), which must succeed."""
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    flag = ["--smoke"] if smoke else []
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *flag, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_benchmarks_run_on_one_core_unless_told_otherwise():
    """Importing benchmarks/one_core.py binds the process to one core of those it may use (and
    its threads, started after it), with one BLAS thread; ``BENCHMARK_CORES=all`` keeps them
    all."""
    code = (
        "import os, one_core; import numpy; "
        "print(len(os.sched_getaffinity(0)), os.environ['OPENBLAS_NUM_THREADS'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    env["PYTHONPATH"] = str(ROOT / "benchmarks")
    available = len(os.sched_getaffinity(0))
    for cores, expected in (("1", "1"), ("all", str(available))):
        out = subprocess.run(
            [sys.executable, "-c", code],
            env=dict(env, BENCHMARK_CORES=cores),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert out == [expected, "1"], (cores, out)


def test_one_core_script_gives_its_children_the_cores_they_ask_for():
    """benchmarks/one_core.py (``--smoke``): the script's own import pins it, yet its
    ``every core`` children run on every core this process may use and the pinned child on one,
    each with a rate for both libraries."""
    out = smoke_run("one_core.py")
    cores = [len(c.split(",")) for c in re.findall(r"^  cores \[([\d, ]+)\]", out, re.M)]
    assert cores == [len(os.sched_getaffinity(0))] * 2 + [1], out
    assert len(re.findall(r"n = +81: jax +\S+ GFLOP/s, numpy +\S+ GFLOP/s", out)) == 3, out


def test_accuracy_per_cost_smoke_run():
    """Every route of the user-scale deep tanh and residual problems runs at tiny sizes; the
    JAX networks agree with numpy's, the gradient-rate line is printed and the residual
    networks are extrapolated at first order (N and M = N/2 doubled together); every nodal
    run is measured over its own nodes as well, where its error is smaller (the GLL rule's
    alone, docs/physics.md "The fields at the nodes"); the routes of the compiled flow to a
    tolerance run at the tolerance their name gives; the rows of the ratios at 1e-6 and 1e-9
    are timed again side by side."""
    out = smoke_run("accuracy_per_cost.py", "--problems", "deep-tanh-L256", "resnet")
    rows = re.findall(
        r"^ +(FEM p c=\d nodal(?: jax(?: adapt tol=\S+)?)?)( at nodes)? p=(\d+) .* error (\S+)",
        out,
        re.M,
    )
    errors = {(route, bool(nodes), p): float(e) for route, nodes, p, e in rows}
    between = {(r, p): e for (r, nodes, p), e in errors.items() if not nodes}
    assert len(between) == 12 and len(errors) == 24, rows
    assert all(errors[(r, True, p)] < e for (r, p), e in between.items()), errors
    differences = [float(d) for d in re.findall(r"max relative difference (\S+)", out)]
    assert len(differences) == 2 and max(differences) < 1e-12, out
    # the compiled flow to a tolerance runs at its route's tolerance, off RK4 by about it
    adaptive = re.search(
        r"time error of FEM p c=1 nodal jax adapt tol=1e-6 p=\d+ at tolerance "
        r"1e-06 \(against RK4 at dt/2\): (\S+);",
        out,
    )
    assert adaptive and 0 < float(adaptive.group(1)) < 1e-6, out
    assert "continuum gradient, P2 4 cells, gauss" in out
    assert re.search(r"deep-tanh-L256: at 0\.001 FEM .* -> (MET|MISSED)", out), out
    assert re.search(r"richardson +N=16 .* N and 2N = 32, order 1", out), out
    # the rows of the ratios are timed again, in turn, and keep their best
    again = re.findall(r"side by side: (\d+) runs .*", out)
    timed = re.findall(r"(\d+\.\d+) -> (\d+\.\d+) ms", "\n".join(re.findall("side by side.*", out)))
    assert again and sum(map(int, again)) == len(timed) > 0, out
    assert all(float(after) <= float(before) for before, after in timed), timed


def test_gradient_rate_smoke_run():
    """benchmarks/gradient_rate.py at P2 on 4 cells: a rate line per problem and rule; on
    nodal spaces the factor spaces' products are element-wise, so all counted products are
    the weight products, while Gauss spaces add their tabulations and loads."""
    out = smoke_run("gradient_rate.py", "--quadrature", "gauss", "nodal")
    rows = re.findall(
        r"^  (\S+): continuum gradient, P2 4 cells, (gauss|nodal) .* weight products (\S+) "
        r"GFLOP/s = \S+ of dgemm, all counted products (\S+) GFLOP/s",
        out,
        re.M,
    )
    assert {(name, rule) for name, rule, _, _ in rows} == {
        (name, rule) for name in ("digits", "deep-tanh-L256") for rule in ("gauss", "nodal")
    }, out
    for _, rule, weights, total in rows:
        assert (float(total) == float(weights)) == (rule == "nodal"), rows


def test_fem_cost_smoke_run():
    """benchmarks/fem_cost.py at tiny sizes: the operator table, the gradients and every FEM
    route run; a looser quadrature tolerance takes a coarser Gauss rule, and each FEM row's
    error with τ = 1e-8 (deep-tanh) equals the τ = 1e-12 row's to 10τ; the compiled flow's
    rows have the errors of the numpy RK4's."""
    out = smoke_run("fem_cost.py")
    rules = dict(re.findall(r"after  deep-tanh-L256  P2  4 cells  tau (\S+)  q = +(\d+)", out))
    assert int(rules["1e-08"]) < int(rules["1e-12"]), rules
    rows = re.findall(r"after (FEM p c=4(?: adapt)?) tau=(\S+) +p=(\d) .* error (\S+)", out)
    errors = {(route, tau, p): float(e) for route, tau, p, e in rows}
    pairs = [(e, errors[(r, "1e-12", p)]) for (r, tau, p), e in errors.items() if tau == "1e-08"]
    assert len(pairs) == 4, rows
    assert all(abs(a - b) <= 1e-7 for a, b in pairs), pairs
    # the compiled flow (scheme "jax") solves the same RK4 flow: the same errors
    compiled = re.findall(
        r"after FEM p c=4 jax(?: -compile)? tau=(\S+) +p=(\d) .* error (\S+)", out
    )
    assert len(compiled) == 12, compiled
    assert all(float(e) == errors[("FEM p c=4", tau, p)] for tau, p, e in compiled), compiled
    assert re.search(r"jax: call +\S+ ms, in the RK4 loop +\S+ ms \(compile", out), out
    assert re.search(r"44 x 33  @  33 x 256  numpy +\S+ µs +\S+ GFLOP/s \| XLA", out), out


def test_nodal_quadrature_smoke_run():
    """benchmarks/nodal_quadrature.py at tiny sizes: every (problem, cells, p) row has both
    routes, the nodal rule has one point per DOF where the Gauss rule has more, and the two
    errors against the one reference agree to within 1.5× (same limit, same rate)."""
    out = smoke_run("nodal_quadrature.py")
    rows = re.findall(
        r"^ +(\d+) +(\d) +(\d+) +(\d+) \| +(\S+) +\S+ \| +(\S+) +\S+ \| +\S+ +(\S+) \| +\S+ +\S+$",
        out,
        re.M,
    )
    assert len(rows) == 4, out
    for _, _, dofs, points, gauss, nodal, ratio in rows:
        assert int(points) > int(dofs), rows
        assert 1 / 1.5 < float(nodal) / float(gauss) < 1.5, rows
        assert abs(float(ratio) - float(nodal) / float(gauss)) < 0.02, rows


def test_residual_degree_smoke_run():
    """benchmarks/residual_degree.py at tiny sizes: the networks (numpy and JAX, equal to
    rounding) and the depth continuum at x degrees 2 and 4 with τ degree 2, one and two RK4
    steps per τ-cell, run; at 4 τ-cells the x degree 4 is closer to the reference (x degree 6)
    than degree 2; every route compiled with JAX (``scheme = "jax"``), on Gauss or nodal x
    spaces, has the errors of its numpy twin (the same RK4 flow) to the printed digits."""
    out = smoke_run("residual_degree.py")
    differences = [float(d) for d in re.findall(r"max relative difference (\S+)", out)]
    assert len(differences) == 1 and differences[0] < 1e-12, out
    rows = dict(re.findall(r"^  (FEM P\d c=2 τP2 k=\d) +D=4 .* (\S+) +\S+$", out, re.M))
    assert float(rows["FEM P4 c=2 τP2 k=1"]) < 0.5 * float(rows["FEM P2 c=2 τP2 k=1"]), out
    assert len(rows) == 4, out  # x degrees 2 and 4, one and two RK4 steps per τ-cell
    table = re.findall(r"^  (FEM [^\n]*?)( jax)? +(D=\d) +\d+ +\S+ +(\S+) +(\S+)$", out, re.M)
    errors = {(route, size, bool(jax)): (e, c) for route, jax, size, e, c in table}
    compiled = [key for key in errors if key[2]]
    assert len(compiled) == 24, table  # 6 routes × Gauss and nodal x spaces × 2 depth cells
    assert all(errors[key] == errors[(key[0], key[1], False)] for key in compiled), errors


def test_mass_solve_smoke_run():
    """benchmarks/mass_solve.py on two small spaces: every space and column count timed (the
    script checks each condensed solve against SuperLU's), in blocks of 8 cells at P2 and 2 at
    P8 (at most 15 interior DOFs a block), and the rule's pick named below the dense size; with
    ``--sweep`` one time for each distinct block of P2 on 16 cells (1 to 31 interior DOFs)."""
    out = smoke_run("mass_solve.py")
    rows = re.findall(
        r"^\s+P(\d+)x(\d+)\s+\d+\s+(\d+)(?:\s+\S+){4}\s+(\d+)\s+(dense|condensed) ", out, re.M
    )
    assert {(p, k) for p, _, k, _, _ in rows} == {
        (p, k) for p in ("2", "8") for k in ("1", "3", "30", "300")
    }, out
    assert {(p, g) for p, _, _, g, _ in rows} == {("2", "8"), ("8", "2")}, out
    sweep = re.search(r"^\s+P2x16\s+33\s+(.*)$", smoke_run("mass_solve.py", "--sweep"), re.M)
    assert sweep and re.findall(r"(\d+): \d", sweep.group(1)) == ["1", "3", "7", "15", "31"], sweep


@pytest.mark.parametrize(
    "options", [("--quadrature", "nodal"), ("--scheme", "adaptive")], ids=["nodal", "adaptive"]
)
def test_samples_scaling_smoke_run(options):
    """benchmarks/samples_scaling.py for 5 steps of ``examples/digits.toml``: one rank, two ranks
    splitting rows and two splitting samples each run under ``mpiexec`` (the script checks that
    each took the split asked for), and both splits give one rank's coefficients to 1e-10; the
    work split is printed, with half the samples cheaper than all of them."""
    out = smoke_run("samples_scaling.py", *options)
    split = re.search(r"all samples (\S+) ms, half of them (\S+) ms", out)
    assert split and float(split.group(2)) < float(split.group(1)), out
    assert re.search(r"^repeat 1 \(5 steps\)", out, re.M), out
    rows = dict(re.findall(r"^  (2 ranks, \w+) +\S+ +\S+ +(\S+)$", out, re.M))
    assert set(rows) == {"2 ranks, rows", "2 ranks, samples"}, out
    assert all(float(d) < 1e-10 for d in rows.values()), rows


def test_quadrature_check_smoke_run():
    """benchmarks/quadrature_check.py, one repeat: both builds of each model are timed, and the
    check, which starts from the mass matrix's exact rule ``q = 2p``, raised every model's rule
    above it (the exp and tanh data and activation terms are not polynomials)."""
    out = smoke_run("quadrature_check.py")
    rows = re.findall(r"^  (.+?) P(\d)\b.*? +(\d+) +(\S+) +(\S+) +\S+$", out, re.M)
    assert len(rows) == 4, out
    assert all(int(q) > 2 * int(p) and float(a) > 0 and float(b) > 0 for _, p, q, a, b in rows)


def test_node_errors_smoke_run():
    """benchmarks/node_errors.py, p = 4 against 6 to t = 0.02: every hidden coordinate of the
    three weight layers gets its four cells' maxima, each with its spread, and two degrees
    lower the route's error (p-convergence, not a plateau)."""
    out = smoke_run("node_errors.py")
    rows = re.findall(
        r"^  layer \d w, +(?:rows x|columns y): by cell((?: +\S+){4}) +spread (\S+)$", out, re.M
    )
    assert len(rows) == 4, out
    for cells, spread in rows:
        maxima = [float(v) for v in cells.split()]
        assert all(v > 0 for v in maxima)
        assert abs(float(spread) - max(maxima) / min(maxima)) <= 0.06 * float(spread)
    coarse, fine = map(float, re.search(r"p = 2 (\S+), p = 4 (\S+)", out).groups())
    assert fine < coarse / 2, out


def script_run(script: str, *args: str) -> str:
    """The standard output of ``benchmarks/<script> *args`` (tiny sizes given as arguments;
    the script must succeed)."""
    return smoke_run(script, *args, smoke=False)


def test_operator_benchmarks_at_tiny_sizes_check_their_products():
    """benchmarks/kernel_apply.py, bandwidth.py, residual_flow.py and factored_flow.py at one
    tiny size each: the factored operators equal the dense product, DOLFINx's Gram matrix and
    the generic RK4 steps to rounding (their own checks, printed)."""
    out = script_run("kernel_apply.py", "--sizes", "1000", "--samples", "3", "--budget", "0.05")
    row = re.search(r"^ +1000 +3 .* (\S+)$", out, re.M)
    assert row and float(row.group(1)) < 1e-12, out
    out = script_run(
        "bandwidth.py", "--sizes", "10000", "--samples", "3", "--copy-mb", "8", "--budget", "0.05"
    )
    gram = re.search(r"factor check: .* rel\. diff (\S+)", out)
    assert gram and float(gram.group(1)) < 1e-12, out
    out = script_run(
        "residual_flow.py", *"--cells 4 --depth-cells 4 --samples 3 --budget 0.05".split()
    )
    row = re.search(r"^ +3 +4 +4 .* (\S+)$", out, re.M)
    assert row and float(row.group(1)) < 1e-12, out
    out = script_run("factored_flow.py", "--cells", "4", "--budget", "0.05")
    row = re.search(r"^ +3 +4 +270 .* (\S+) +(generic|factored)$", out, re.M)
    assert row and float(row.group(1)) < 1e-12, out


def test_timing_benchmarks_run_at_tiny_sizes(tmp_path):
    """The timing scripts at tiny sizes: every case they time is printed (allocator.py,
    step_cost.py, startup.py, mpi_scaling.py), serial stepping of the local theory calls no
    collective of more than one rank (local_mpi.py), and digits_accuracy.py writes its figure
    where it is told, with accuracies that are fractions of the test rows."""
    out = script_run("allocator.py", "--widths", "16", "--cells", "4")
    assert re.search(r"network N=16 .* \d\.\d\d$", out, re.M), out
    assert re.search(r"FEM span P2 c=4 .* \d\.\d\d$", out, re.M), out
    out = script_run(
        "step_cost.py", "--sizes", "1000", "3000", "--budget", "0.05", "--fit-from", "1000"
    )
    solvers = re.findall(r"^(flow|wave|perceptron row|perceptron square) +\d+ ", out, re.M)
    assert len(solvers) == 8 and len(set(solvers)) == 4, out
    out = script_run("startup.py", "--configs", "default", "--repeats", "1")
    assert re.search(r"cold cache: +\S+ s", out) and re.search(r"warm cache: +\S+ s", out), out
    out = script_run("local_mpi.py", "--steps", "5", "--ranks", "1", "2", "--repeats", "1")
    one = re.search(r"^ +1 +\(one rank\) +\S+ +(\S+) +(\S+)", out, re.M)
    assert one and float(one.group(1)) == 0 and float(one.group(2)) == 0, out
    assert re.search(r"^ +2 +replicated ", out, re.M) and re.search(
        r"^ +2 +distributed ", out, re.M
    )
    out = script_run("mpi_scaling.py", "--cells", "16", "--width", "8", "--ranks", "1", "2")
    assert len(re.findall(r"^ +2 +\S.*%", out, re.M)) == 4, out
    figure = tmp_path / "digits-accuracy.png"
    tiny = "--widths 16 32 --samples 100 --test 50 --t-end 0.1 --cells 8".split()
    out = script_run("digits_accuracy.py", *tiny, "--figure", str(figure))
    accuracies = re.findall(r"^\| (?:16|32|∞) \| \S+ \| (\S+) \| \S+ \| (\S+) \|", out, re.M)
    assert len(accuracies) == 3, out
    assert all(
        0 <= float(a) <= 1 and (50 * float(a)).is_integer() for row in accuracies for a in row
    )
    assert figure.stat().st_size > 0
