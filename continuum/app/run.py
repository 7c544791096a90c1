"""One experiment end to end: discrete training, continuum solve, comparison, output.

``run_experiment`` is what ``synfield run`` calls.  Every rank builds and trains the same
(replicated) discrete network; the continuum model distributes its output factor over the
ranks; rank 0 alone writes ``fields.h5`` and ``summary.json``.
"""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from mpi4py import MPI

from continuum.app.interrupt import Interrupts, RunInterrupted
from continuum.app.progress import Console
from continuum.io import layout
from continuum.io.output import FieldsFile, OutputError
from continuum.io.rundir import (
    FolderError,
    FolderLock,
    read_summary,
    refuse_existing_result,
    write_summary,
)
from continuum.io.stream_output import write_stream_xdmf
from continuum.io.xdmf import write_xdmf
from continuum.models.model import ContinuumModel
from continuum.models.registry import resolve
from continuum.models.theory import FieldTheory
from continuum.settings import Config
from discrete.errors import reference_size
from discrete.experiment import DiscreteSetup, build
from discrete.stability import refuse_unstable_step
from discrete.training import State, integrate

Array = np.ndarray
Row = Array | np.number  # one output step's value of a series: an array or a numpy scalar


def lattice_l2(diff: Array, dx: Array, dy: Array) -> float:
    """``(Σ_ij Δx_i Δy_j d_ij²)^½``: the L2 norm over ``Ω_{m+1} × Ω_m`` by the lattice rule."""
    return float(np.sqrt(np.sum(dx[:, None] * dy[None, :] * diff**2)))


def field_errors(
    network, convention, w: list[Array], b: list[Array], wc: list[Array], bc: list[Array]
) -> tuple[float, float]:
    """Distances of the discrete fields ``(w, b)`` from the continuum ``(w_h, b_h)`` at the
    lattice, summed over layers (residual blocks weighted by ``Δτ``): ``(Σ_m ‖w − w_h‖²)^½``
    and ``(Σ_m Σ_i Δx_i (b − b_h)²)^½``;
    both in the network's storage (banded layers: one column per offset)."""
    err_w = err_b = 0.0
    for m in range(network.depth):
        dx, dy = convention.layers[m + 1].measure, convention.layers[m].measure
        if convention.weights[m] != "product":  # components of a field at x_i: Σ_i Δx_i Σ_s
            dy = np.ones_like(dy)
        dtau = network.depth_measure(m)  # a residual block is a cell of the depth τ as well
        err_w += dtau * lattice_l2(network.layers[m].dense(w[m] - wc[m]), dx, dy) ** 2
        if network.bias:
            err_b += dtau * float(np.sum(dx * (b[m] - bc[m]) ** 2))
    return float(np.sqrt(err_w)), float(np.sqrt(err_b))


class Recorder:
    """Declares the output series of a run and fills one row per output step."""

    def __init__(self, setup: DiscreteSetup, model: ContinuumModel | None):
        self.setup = setup
        self.model = model
        # collective (the continuum's outputs are gathered over the ranks): here, on every
        # rank, not in declare(), which rank 0 alone calls
        self.continuum_figures = list(continuum_held_out(model)) if model is not None else []

    def declare(self, out: FieldsFile) -> None:
        """Create every dataset; ``[output] fields`` selects the per-step field arrays
        (``w``: W, w and w_at_lattice; ``b``: b, bias and b_at_lattice; ``cost``; ``energy``).
        Times, the training state (for ``--resume``), the SGD sample schedule and the comparison
        are always written."""
        s = self.setup
        net, conv = s.network, s.convention
        fields = set(s.config.output.fields)
        continuum = self.model is not None
        out.series(layout.DISCRETE_TIMES, ())
        for m, layer in enumerate(net.layers):
            shape = (layer.n_out, layer.n_in)
            if "w" in fields:
                out.series(layout.discrete_field(net.layer_name(m), "W"), shape)
                out.series(layout.discrete_field(net.layer_name(m), "w"), shape)
                if continuum:
                    out.series(layout.lattice_field(net.layer_name(m), "w"), shape)
            if "b" in fields:
                out.series(layout.discrete_field(net.layer_name(m), "b"), (layer.n_out,))
                out.series(layout.discrete_field(net.layer_name(m), "bias"), (layer.n_out,))
                if continuum:
                    out.series(layout.lattice_field(net.layer_name(m), "b"), (layer.n_out,))
        for m, c in enumerate(conv.layers):
            out.static(
                layout.coordinates(m),
                c.points,
                {"layout": c.layout, "placement": c.placement, "domain": c.domain},
            )
            out.static(layout.measure(m), c.measure)
            out.static(layout.axis(m), c.points[: c.shape[-1], 0])
        if s.schedule is not None:
            out.static(
                layout.SCHEDULE,
                s.schedule.astype(np.int64),
                {"sampling": s.config.training.sampling, "batch": s.config.training.batch},
            )
        out.series(layout.STATE_THETA, (net.params.size,))
        if s.rule.second_order:
            out.series(layout.STATE_VELOCITY, (net.params.size,))
        out.series(layout.STATE_STEP, (), dtype=np.int64)
        if "cost" in fields:
            out.series(layout.diagnostic("cost_discrete"), ())
        if "energy" in fields:
            out.series(layout.diagnostic("energy"), ())
        for name in held_out_figures(s):
            out.series(layout.diagnostic(name), ())
        if self.model is not None:
            out.series(layout.CONTINUUM_TIMES, ())
            if "cost" in fields:
                out.series(layout.diagnostic("cost_continuum"), ())
            out.series(layout.comparison("l2_error_w"), ())
            out.series(layout.comparison("l2_error_b"), ())
            for name, tail in self.model.series().items():
                out.series(name, tail)
            for name in self.continuum_figures:
                out.series(layout.diagnostic(f"continuum_{name}"), ())
            for name, data in self.model.static().items():
                out.static(name, data)

    def row(self, state: State) -> tuple[dict[str, Row], dict[str, float]]:
        s = self.setup
        net, conv = s.network, s.convention
        w, b = conv.to_fields(net, state.theta)
        cost = s.cost.value(state.theta)
        kinetic = 0.0
        if state.velocity is not None:
            kinetic = 0.5 * float(np.sum(state.velocity**2 / s.dictionary.rates()))
        rows: dict[str, Row] = {
            layout.DISCRETE_TIMES: np.float64(state.t),
            layout.STATE_THETA: state.theta,
            layout.STATE_STEP: np.int64(state.step),
            layout.diagnostic("cost_discrete"): np.float64(cost),
            layout.diagnostic("energy"): np.float64(kinetic + cost),
        }
        if state.velocity is not None:
            rows[layout.STATE_VELOCITY] = state.velocity
        for m, layer in enumerate(net.layers):
            name = net.layer_name(m)
            rows[layout.discrete_field(name, "W")] = layer.dense(net.params.W(state.theta, m))
            rows[layout.discrete_field(name, "w")] = layer.dense(w[m])
            rows[layout.discrete_field(name, "b")] = b[m]
            rows[layout.discrete_field(name, "bias")] = b[m]
        figures = {"cost": cost}
        held_out = held_out_figures(s, state.theta)
        figures.update(held_out)
        rows.update({layout.diagnostic(k): np.float64(v) for k, v in held_out.items()})
        if self.model is not None:
            self.model.advance_to(state.t)
            wc, bc = self.model.lattice_fields()
            err_w, err_b = field_errors(net, conv, w, b, wc, bc)
            for m in range(net.depth):
                rows[layout.lattice_field(net.layer_name(m), "w")] = net.layers[m].dense(wc[m])
                rows[layout.lattice_field(net.layer_name(m), "b")] = bc[m]
            rows[layout.CONTINUUM_TIMES] = np.float64(self.model.t)
            rows[layout.diagnostic("cost_continuum")] = np.float64(self.model.cost())
            rows[layout.comparison("l2_error_w")] = np.float64(err_w)
            rows[layout.comparison("l2_error_b")] = np.float64(err_b)
            rows.update(self.model.rows())
            for name, value in continuum_held_out(self.model).items():
                rows[layout.diagnostic(f"continuum_{name}")] = np.float64(value)
                figures[f"continuum_{name}"] = value
            figures["cost_continuum"] = float(rows[layout.diagnostic("cost_continuum")])
            figures["l2_error_w"] = err_w
            figures["l2_error_b"] = err_b
        return rows, figures


def held_out_figures(setup: DiscreteSetup, theta: Array | None = None) -> dict[str, float]:
    """Accuracy on the training rows (class labels) and cost and accuracy on the test rows
    (when held out) of the discrete network at ``θ`` (docs/physics.md "Index layers"); with ``θ =
    None`` the
    names only (NaN)."""
    data, cost = setup.data, setup.cost
    out: dict[str, float] = {}
    if data.classes:
        out["accuracy_train"] = cost.on(theta, data.X, data.Y)[1] if theta is not None else np.nan
    if data.tested:
        assert data.X_test is not None and data.Y_test is not None
        c, a = cost.on(theta, data.X_test, data.Y_test) if theta is not None else (np.nan,) * 2
        out["cost_test"] = c
        if data.classes:
            out["accuracy_test"] = a
    return out


def continuum_held_out(model: ContinuumModel) -> dict[str, float]:
    """The continuum's held-out figures, for the models that classify tabular data."""
    held_out = getattr(model, "held_out", None)
    return held_out() if held_out is not None else {}


HELD_OUT_COLUMNS = (
    ("accuracy_train", "acc. train"),
    ("cost_test", "C test"),
    ("accuracy_test", "acc. test"),
    ("continuum_accuracy_test", "acc. test ∞"),
)


ONE_DRAW = (
    "  [init] kind = 'random': the network started from one draw (scale = {scale:g}, seed = "
    "{seed}) and the continuum from the draws' mean, so ‖w − w_h‖ and ‖b − b_h‖ hold that "
    "draw's noise at every width; synfield ensemble averages draws (docs/physics.md "
    '"Random initial fields")'
)
"""The caption of a comparison whose network started from random initial fields."""


def comparison_table(table: list[tuple[float, dict[str, float]]], continuum: bool) -> str:
    """Discrete against continuum at (at most ten of) the output times."""
    head = f"  {'t':>10}  {'C discrete':>12}"
    if continuum:
        head += f"  {'C continuum':>12}  {'‖w − w_h‖':>12}  {'‖b − b_h‖':>12}"
    held_out = [(k, title) for k, title in HELD_OUT_COLUMNS if table and k in table[0][1]]
    head += "".join(f"  {title:>10}" for _, title in held_out)
    lines = ["comparison (L2 norms over the lattice):", head]
    stride = max(1, len(table) // 10)
    for t, f in table[::stride] + ([table[-1]] if (len(table) - 1) % stride else []):
        line = f"  {t:>10.4g}  {f['cost']:>12.5e}"
        if continuum:
            line += (
                f"  {f['cost_continuum']:>12.5e}  {f['l2_error_w']:>12.4e}"
                f"  {f['l2_error_b']:>12.4e}"
            )
        line += "".join(f"  {f[k]:>10.4g}" for k, _ in held_out)
        lines.append(line)
    return "\n".join(lines)


def restore_state(h5, setup: DiscreteSetup, index: int) -> State:
    theta = np.array(h5[layout.STATE_THETA][index])
    velocity = None
    if setup.rule.second_order:
        velocity = np.array(h5[layout.STATE_VELOCITY][index])
    step = int(h5[layout.STATE_STEP][index])
    return State(step * setup.dt, step, theta, velocity)


def on_root(comm: MPI.Comm, func):
    """``func()`` on rank 0, its result broadcast; an error there is raised on every rank
    (marked ``reported_by_root`` off rank 0, so that :func:`continuum.app.cli.guarded` prints it
    once)."""
    payload: tuple[Any, Exception | None] | None = None
    if comm.rank == 0:
        try:
            payload = (func(), None)
        except Exception as exc:
            payload = (None, exc)
    result, error = comm.bcast(payload, root=0)
    if error is not None:
        if comm.rank != 0:
            error.reported_by_root = True
        raise error
    return result


def open_for_resume(path: Path, setup: DiscreteSetup, model, ranks: int, from_last_good: bool):
    """Rank 0: the verified file of an interrupted run, its last complete state and the
    continuum arrays of that step.  A different number of ranks is refused: the coefficient
    arrays of a distributed mesh are numbered by the partition, and no other run is
    guaranteed bit-identical across rank counts.  So is a file without a series the model
    writes (an older synfield's): the run could neither restart from it nor append to it."""
    out, complete = FieldsFile.reopen(path, from_last_good)
    stored = int(out.h5.attrs["ranks"])
    if stored != ranks or complete == 0:
        out.close()
        if complete == 0:
            raise RuntimeError(f"{path} holds no complete output step to resume from")
        raise ValueError(
            f"{path} was written by a run on {stored} MPI rank(s); this resume runs on "
            f"{ranks}: resume with mpiexec -n {stored} (coefficients on a distributed mesh "
            "are numbered by its partition)"
        )
    missing = [name for name in model.series() if name not in out.h5] if model is not None else []
    if missing:
        out.close()
        raise ValueError(
            f"{path} lacks {', '.join(missing)}, which this synfield writes at every output "
            "step and --resume reads back (the file was written by an older synfield): start "
            "the run afresh"
        )
    state = restore_state(out.h5, setup, complete - 1)
    arrays = model.read_state(out.h5, complete - 1) if model is not None else None
    return out, state, arrays


def run_experiment(
    config: Config,
    outdir: str | Path,
    comm: MPI.Comm = MPI.COMM_WORLD,
    resume: bool = False,
    quiet: bool = False,
    overwrite: bool = False,
    from_last_good: bool = False,
    interrupts: Interrupts | None = None,
) -> dict:
    """Train, solve, compare and write ``outdir/fields.h5`` and ``outdir/summary.json``.

    The configuration is resolved first (:func:`continuum.models.registry.resolve`: refused if no
    continuum solves it), and the resolved one is what ``fields.h5`` records; the continuum
    model is :func:`continuum.models.limit.continuum_model` (``[continuum] enabled = false``
    runs the discrete side alone).  The folder is locked for the run and an existing result is kept
    unless ``overwrite`` (:mod:`continuum.io.rundir`); ``resume`` continues the file there
    (``from_last_good``: from the last intact step of a damaged file).  ``interrupts``
    (:class:`continuum.app.interrupt.Interrupts`) ends the run at the next output step after a
    signal.  A run that ends early leaves ``summary.json`` with ``status`` "interrupted" or
    "failed" and its last complete step, and raises.
    """
    config = resolve(config)
    console = Console(comm, quiet or config.output.quiet)
    outdir = Path(outdir)
    lock = FolderLock(outdir)

    def claim() -> None:
        lock.acquire()
        try:
            if not resume:
                refuse_existing_result(outdir, overwrite)
        except FolderError:
            lock.release()
            raise

    on_root(comm, claim)
    try:
        return _run(config, outdir, comm, resume, console, from_last_good, interrupts)
    finally:
        lock.release()


def _run(
    config: Config,
    outdir: Path,
    comm: MPI.Comm,
    resume: bool,
    console: Console,
    from_last_good: bool,
    interrupts: Interrupts | None,
) -> dict:
    """:func:`run_experiment` once the folder is claimed."""
    from continuum.models.limit import continuum_model

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    setup = build(config)
    stability = refuse_unstable_step(setup)
    console.print(f"synfield: experiment '{config.experiment.name}'")
    console.print(str(FieldTheory(setup)))
    model = continuum_model(setup, comm)
    split = getattr(model, "split", None)  # the Galerkin fields' rows or samples over the ranks
    if split is not None:
        console.print(f"  {split}")
    timings["setup"] = time.perf_counter() - t0
    recorder = Recorder(setup, model)
    path = outdir / "fields.h5"
    state = setup.rule.initial(setup.theta0)
    out = None
    if resume:
        opened: list[FieldsFile] = []

        def reopen() -> tuple[State, dict | None]:
            out, state, arrays = open_for_resume(path, setup, model, comm.size, from_last_good)
            opened.append(out)
            return state, arrays

        state, arrays = on_root(comm, reopen)
        out = opened[0] if opened else None
        if state.step >= setup.steps:
            if out is not None:
                out.close()
            console.notice(
                f"{outdir}: the run already finished (step {state.step}, t = {state.t:g}); "
                "nothing to resume, summary.json left as it is"
            )
            return read_summary(outdir)
        if model is not None:
            model.set_state(arrays, state.step)
        console.print(f"  resuming from step {state.step} (t = {state.t:g})")
    elif comm.rank == 0:
        out = FieldsFile.create(path, config.text, comm.size, setup.dictionary)
        recorder.declare(out)
        out.start()
    every = config.output.every
    t1 = time.perf_counter()
    figures: dict[str, float] = {}
    table: list[tuple[float, dict[str, float]]] = []
    summary: dict[str, Any] = {  # summary.json
        "experiment": config.experiment.name,
        "steps": setup.steps,
        "dictionary": setup.dictionary.as_dict(),
        "ranks": comm.size,
    }
    last, written = state, figures  # the last complete output step and its figures
    try:
        with console.progress(setup.steps, "training") as bar:
            start = reference_size(setup.theta0)  # the same bound on a resumed run
            states = integrate(setup.rule, state, setup.steps, every, reference=start)
            if resume:
                next(states)  # the restored step is already in the file
            for s in states:
                if stability is not None:  # λ(θ) on rank 0: every rank stops together
                    on_root(comm, partial(stability.check, s))
                rows, figures = recorder.row(s)
                table.append((s.t, figures))
                if out is not None:
                    out.append(rows)
                last, written = s, figures
                bar.update(s.step, **figures)
                if interrupts is not None and (signum := interrupts.pending()):
                    raise RunInterrupted(signum, s.step, str(outdir))
    except (RunInterrupted, OutputError, FloatingPointError) as error:
        status = "interrupted" if isinstance(error, RunInterrupted) else "failed"
        summary.update(status=status, reason=str(error), step=last.step, t=last.t, final=written)
        if comm.rank == 0:
            write_summary(outdir, summary)
        raise
    finally:
        if out is not None:
            out.close()
    timings["run"] = time.perf_counter() - t1
    summary.update(status="complete", step=last.step, t=last.t, final=figures, timings_s=timings)
    fluctuations = getattr(model, "summary", None)
    if fluctuations is not None:  # SGD fluctuations: the law now and its equilibrium (1.8)
        summary["fluctuations"] = fluctuations()
    if comm.rank == 0:
        write_summary(outdir, summary)
        write_xdmf(path)
        write_stream_xdmf(path)
    console.print(comparison_table(table, recorder.model is not None))
    if recorder.model is not None and config.init.kind == "random":
        console.print(ONE_DRAW.format(scale=config.init.scale, seed=config.init.seed))
    if fluctuations is not None:
        console.print(
            "SGD fluctuations: "
            + ", ".join(f"{k} = {json.dumps(v)}" for k, v in summary["fluctuations"].items())
        )
    console.print(f"  wrote {path}")
    return summary
