"""The ``synfield`` command line: a thin layer over the Python API.

    synfield run [CONFIG.toml | EXAMPLE] [-o OUTDIR] [--overwrite] [--plot] [--quiet]
    synfield run --resume OUTDIR [CONFIG.toml] [--from-last-good] [--quiet]
    synfield converge CONFIG.toml --widths 16 32 64 [--degrees 1 2] [--cells N] [--json]
    synfield converge CONFIG.toml --degrees 1 2 3 4 5 6 7 8 [--json]   (p on a fixed mesh)
    synfield inspect OUTDIR/fields.h5
    synfield examples
    synfield ensemble CONFIG.toml --seeds S [--over init|schedule] [-o OUTDIR] [--overwrite]
    synfield plot OUTDIR [--times T ...]

A config argument is a path, or the name of a shipped example (``synfield examples``).
Usage and config errors end with exit code 2, other failures with 1.

Errors end every MPI rank: the rank that fails prints one line naming the cause and calls
``MPI.Abort``, so no rank is left waiting in a collective.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import threadpoolctl
from mpi4py import MPI

from continuum import default_config, parse_config
from continuum.app.shipped import example_names, examples_dir, resolve_config
from continuum.io.integrity import DamagedFileError
from continuum.io.output import OutputError, version
from continuum.io.rundir import FolderError
from continuum.settings import DEGREES, Config
from discrete.config import ConfigError
from discrete.errors import DivergenceError

# One BLAS thread per process unless the environment says otherwise; synfield parallelises
# with MPI ranks.  Under mpiexec every rank would otherwise start one BLAS thread per core (two
# ranks on two cores ran 3-5x slower than one), and on one rank two threads made the skinny
# products of a large continuum step 2-3x slower (benchmarks/README.md, MPI scaling and
# factored flow); on a loaded machine a two-thread (33 x 33)(33 x 1089) product of the residual
# model's τ map took 56 ms instead of 0.08 ms.  The variables cover libraries loaded later and
# subprocesses; numpy's BLAS is already loaded when this module runs (``import continuum``
# loads it), so its pool is limited directly, unless the user set its variable.
_USER_THREADS = {"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"} & set(os.environ)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
if not _USER_THREADS:
    threadpoolctl.threadpool_limits(limits=1, user_api="blas")

OUTPUT_FILES = ("fields.h5", "ensemble.h5")
DESCRIPTION = (
    "Continuum limits of neural-network training: train a network, solve its field theory "
    "with the finite-element method, compare."
)


def load_on_root(path: str | None, comm: MPI.Comm) -> Config:
    """Read and validate the config on rank 0, then share its text with every rank."""
    payload = None
    if comm.rank == 0:
        config = default_config() if path is None else _load(path)
        base = str(Path(config.source).resolve().parent) if path else None
        payload = (config.text, config.source, base)
    text, source, base = comm.bcast(payload, root=0)
    return parse_config(text, source=source, base_dir=base)


def _load(path: str) -> Config:
    from continuum import load_config

    return load_config(resolve_config(path))


def stored_config(outdir: Path, comm: MPI.Comm) -> Config:
    """The config a run in ``outdir`` was started with (read from its ``fields.h5``)."""
    from continuum.io.integrity import stored_config as read_stored

    text = None
    path = outdir / "fields.h5"
    if comm.rank == 0:
        if not path.exists():
            raise FileNotFoundError(f"--resume {outdir}: no fields.h5 there to continue")
        text = read_stored(path)
    return parse_config(comm.bcast(text, root=0), source=str(path))


def cmd_run(args: argparse.Namespace, comm: MPI.Comm) -> int:
    from continuum.app.interrupt import Interrupts, RunInterrupted
    from continuum.app.run import run_experiment
    from continuum.io.rundir import config_differences

    if args.resume:
        if args.output:
            raise ValueError(
                f"-o {args.output} with --resume {args.resume}: a resumed run writes into "
                "the folder it continues; drop -o"
            )
        if args.overwrite:
            raise ValueError("--overwrite with --resume: choose one")
        outdir = Path(args.resume)
        config = stored_config(outdir, comm)
        if args.config:
            changed = config_differences(config, load_on_root(args.config, comm))
            if changed:
                raise ValueError(
                    f"{args.config} differs from the config of the run in {outdir}: "
                    + "; ".join(changed)
                    + " (a resumed run continues with its own config: drop CONFIG, or start "
                    "a new run)"
                )
    else:
        if args.from_last_good:
            raise ValueError("--from-last-good applies to --resume OUTDIR only")
        config = load_on_root(args.config, comm)
        outdir = Path(args.output or Path("runs") / config.experiment.name)
    with Interrupts(comm) as interrupts:
        try:
            run_experiment(
                config,
                outdir,
                comm,
                resume=bool(args.resume),
                quiet=args.quiet,
                overwrite=args.overwrite,
                from_last_good=args.from_last_good,
                interrupts=interrupts,
            )
        except RunInterrupted as stop:
            if comm.rank == 0:
                print(f"synfield: {stop}", file=sys.stderr, flush=True)
            return stop.exit_code
    if args.plot:
        _plot(outdir, None, comm)
    return 0


def _plot(outdir: Path, times: list[float] | None, comm: MPI.Comm) -> None:
    from continuum.app.plot import plot_run

    if comm.rank == 0:
        for name, drawn in plot_run(outdir, times).items():
            print(f"wrote {outdir / name} ({drawn.size[0]} × {drawn.size[1]} px)")


def cmd_plot(args: argparse.Namespace, comm: MPI.Comm) -> int:
    _plot(Path(args.outdir), args.times, comm)
    return 0


def cmd_converge(args: argparse.Namespace, comm: MPI.Comm) -> int:
    from continuum.app.convergence import (
        convergence_study,
        format_table,
        mesh_warnings,
        with_cells,
    )

    config = load_on_root(args.config, comm)
    if args.widths is None:
        from continuum.app.pconvergence import format_p_table, p_convergence_study

        if args.degrees is None:
            raise ConfigError(
                "converge needs --widths (width study) or --degrees (p on a fixed mesh)"
            )
        if args.refine:
            raise ConfigError(
                "converge --refine refines the mesh of a width study (--widths); the "
                "p-convergence keeps its mesh fixed (set it with --cells)"
            )
        if args.cells is not None:  # the fixed mesh of the p-study
            config = with_cells(config, args.cells)
        result = p_convergence_study(config, args.degrees, comm)
        if comm.rank == 0:
            print(json.dumps(result, indent=2) if args.json else format_p_table(result))
        return 0
    result = convergence_study(
        config, args.widths, args.degrees, comm, cells=args.cells, refine=args.refine
    )
    if comm.rank == 0:
        print(json.dumps(result, indent=2) if args.json else format_table(result))
        if args.json:
            for warning in mesh_warnings(result):
                print(f"synfield: {warning}", file=sys.stderr)
    return 0


def cmd_ensemble(args: argparse.Namespace, comm: MPI.Comm) -> int:
    from continuum.app.ensemble import run_ensemble

    config = load_on_root(args.config, comm)
    outdir = Path(args.output or Path("runs") / f"{config.experiment.name}-ensemble")
    result = run_ensemble(config, args.seeds, outdir, comm, args.over, args.overwrite)
    if comm.rank == 0:
        errors = result["l2_error_mean"]
        final = f", final ‖w̄_S − w_h‖ = {errors[-1]:.4e}" if errors else ""
        if result.get("l2_error_var"):
            final += f", ‖σ_S² − Var w‖ = {result['l2_error_var'][-1]:.4e}"
        print(f"ensemble of {args.seeds} seeds over {args.over} on {comm.size} rank(s){final}")
        print(f"wrote {outdir / 'ensemble.h5'}")
    return 0


def cmd_inspect(args: argparse.Namespace, comm: MPI.Comm) -> int:
    from continuum.io.output import describe

    if comm.rank == 0:
        path = Path(args.file)
        if path.is_dir():  # a run's folder, or an ensemble's
            path = next((path / n for n in OUTPUT_FILES if (path / n).exists()), path / "fields.h5")
        if not path.exists():
            raise FileNotFoundError(f"no such file: {path}")
        print(describe(path))
    return 0


def cmd_examples(args: argparse.Namespace, comm: MPI.Comm) -> int:
    """One line per shipped example: its name (``synfield run NAME`` runs it) and path, then
    its description."""
    if comm.rank == 0:
        folder = examples_dir()
        for name in example_names():
            path = folder / f"{name}.toml"
            config = parse_config(path.read_text(), source=str(path), base_dir=str(folder))
            print(f"{name:<22} {path}\n{'':<22} {config.experiment.description}")
    return 0


def positive_int(text: str) -> int:
    """An argparse type: a positive integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def ensemble_size(text: str) -> int:
    """An argparse type: the members of an ensemble, at least two (a spread needs two)."""
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"an ensemble needs at least 2 seeds, got {value}")
    return value


def finite_float(text: str) -> float:
    """An argparse type: a finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
    return value


class IncreasingWidths(argparse.Action):
    """``--widths``: at least two strictly increasing widths (orders need two resolutions)."""

    def __call__(self, parser, namespace, values, option_string=None):
        if len(values) < 2 or any(a >= b for a, b in itertools.pairwise(values)):
            parser.error(
                f"argument {option_string}: expected at least 2 strictly increasing widths, "
                f"got {' '.join(map(str, values))}"
            )
        setattr(namespace, self.dest, values)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="synfield", description=DESCRIPTION)
    p.add_argument("--version", action="version", version=f"synfield {version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config_help = "TOML config file, or the name of a shipped example (see: synfield examples)"
    run = sub.add_parser("run", help="train, solve the continuum theory, compare, write output")
    run.add_argument("config", nargs="?", help=config_help + "; default: the built-in perceptron")
    run.add_argument("-o", "--output", help="output folder (default runs/<experiment name>)")
    run.add_argument(
        "--resume",
        metavar="OUTDIR",
        help="continue an interrupted run in OUTDIR with its stored config (a CONFIG given "
        "beside it must equal that config)",
    )
    run.add_argument(
        "--overwrite", action="store_true", help="replace an existing result in the folder"
    )
    run.add_argument(
        "--from-last-good",
        action="store_true",
        help="with --resume: continue a damaged fields.h5 from its last intact output step",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    run.add_argument(
        "--plot", action="store_true", help="write the figures (synfield plot) at the end"
    )
    run.set_defaults(func=cmd_run)
    conv = sub.add_parser(
        "converge",
        help="errors and observed orders over widths, or (no --widths) over degrees p",
    )
    conv.add_argument("config", help=config_help)
    conv.add_argument(
        "--widths",
        type=positive_int,
        nargs="+",
        default=None,
        action=IncreasingWidths,
        metavar="N",
        help="at least two increasing widths N (grid layers get N×N neurons)",
    )
    conv.add_argument(
        "--degrees",
        type=int,
        nargs="+",
        default=None,
        choices=DEGREES,
        metavar="P",
        help="finite-element degrees: with --widths those to compare against (default: "
        "[continuum] degree), without it the p-convergence on a fixed mesh (at least three; "
        f"choices {', '.join(map(str, DEGREES))})",
    )
    conv.add_argument(
        "--cells",
        type=positive_int,
        metavar="C",
        help="cells per direction of the continuum mesh (default: [continuum] cells)",
    )
    conv.add_argument(
        "--refine",
        action="store_true",
        help="double the cells until the continuum's own error is below a tenth of the "
        "smallest width error",
    )
    conv.add_argument("--json", action="store_true", help="print the result as JSON")
    conv.set_defaults(func=cmd_converge)
    ens = sub.add_parser("ensemble", help="ensemble over seeds: mean, spread, covariance sketch")
    ens.add_argument(
        "config",
        help=config_help + ' with [init] kind = "random" (--over init) or rule = "sgd" (or '
        '"momentum" with sampling = "replacement"; --over schedule)',
    )
    ens.add_argument(
        "--seeds", type=ensemble_size, required=True, metavar="S", help="ensemble size (≥ 2)"
    )
    ens.add_argument("-o", "--output", help="output folder (default runs/<name>-ensemble)")
    ens.add_argument(
        "--overwrite", action="store_true", help="replace an ensemble.h5 already in the folder"
    )
    ens.add_argument(
        "--over",
        choices=("init", "schedule"),
        default="init",
        help="what the members' seeds change: the initial noise or the SGD sample schedule",
    )
    ens.set_defaults(func=cmd_ensemble)
    ins = sub.add_parser("inspect", help="list the contents of a fields.h5 or ensemble.h5")
    ins.add_argument("file", help="an output folder, or the .h5 file in it")
    ins.set_defaults(func=cmd_inspect)
    plot = sub.add_parser("plot", help="draw a run's figures (PNG) into its output folder")
    plot.add_argument("outdir", help="an output folder holding fields.h5 or ensemble.h5")
    plot.add_argument(
        "--times",
        type=finite_float,
        nargs="+",
        metavar="T",
        help="training times of the field figures (nearest output steps; default: first, "
        "middle and last)",
    )
    plot.set_defaults(func=cmd_plot)
    ex = sub.add_parser("examples", help="list the shipped example configs and their paths")
    ex.set_defaults(func=cmd_examples)
    return p


RESOURCE_ADVICE = {
    MemoryError: "out of memory ({}): the run's arrays do not fit; reduce [network] widths or "
    "depth, [data] samples, or [continuum] cells, degree or depth_cells",
    OverflowError: "a number overflowed float64: the run's scales are too large; reduce "
    "[training] lr or dt, [continuum] dt, or the size of the data and the initial fields",
}
"""The line printed for a failure of the machine's limits rather than of the code, with the
keys that set those limits."""


INTERRUPTED = {
    "run": "; the run keeps the complete output steps of its fields.h5: continue it with "
    "synfield run --resume OUTDIR (with --from-last-good if the last one was cut)",
    "converge": "; converge prints its table when every width has run: nothing was printed",
    "ensemble": "; no ensemble.h5 was written (it is written once every member has trained)",
    "plot": "; each figure written before is whole (drawn into a side file, then renamed)",
}
"""What each command leaves when a signal stops it at once (:func:`guarded`)."""


PACKAGES = tuple(
    Path(str(importlib.util.find_spec(name).origin)).resolve().parent  # type: ignore[union-attr]
    for name in ("continuum", "discrete", "meshes")
)
"""The folders of synfield's own packages: a ``ValueError`` raised there is one of its messages."""


def _raised_by_synfield(error: Exception) -> bool:
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return False
    where = Path(frames[-1].filename).resolve()
    return any(where.is_relative_to(package) for package in PACKAGES)


def message(error: Exception) -> str:
    """The one line that names a failure: the text of the errors the code raises to be read
    (a ``ValueError`` only where synfield's own code raised it, :data:`PACKAGES`), the resource
    advice of :data:`RESOURCE_ADVICE`, else the exception's type and text."""
    plain = ConfigError | DivergenceError | DamagedFileError | FolderError | OutputError
    if isinstance(error, plain) or (isinstance(error, ValueError) and _raised_by_synfield(error)):
        return str(error)
    for kind, advice in RESOURCE_ADVICE.items():
        if isinstance(error, kind):
            return advice.format(str(error) or type(error).__name__)
    return f"{type(error).__name__}: {error}"


def guarded(func, comm: MPI.Comm = MPI.COMM_WORLD, interrupted: str = "") -> int:
    """Run ``func()``; on any error print one line naming it and end every rank.

    With more than one rank the failing rank calls ``MPI.Abort``, which ends the whole job
    at once: no rank is left waiting in a collective for a rank that has failed.  NumPy's
    floating-point warnings are not printed: a state that overflows or becomes NaN is caught
    by the divergence checks of the training and of the continuum, which end the run with
    the one line that names the step and the keys (:class:`~discrete.errors.DivergenceError`).
    A signal that stops the command at once (:class:`~continuum.app.interrupt.Stopped`) ends
    it with one line too, saying what the command leaves (``interrupted``), and the shell's
    code ``128 + signal``.
    """
    from continuum.app.interrupt import Stopped

    where = f" (rank {comm.rank} of {comm.size})" if comm.size > 1 else ""
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            return func()
    except (Stopped, KeyboardInterrupt) as stop:  # KeyboardInterrupt: a handler not ours
        signum = stop.signum if isinstance(stop, Stopped) else signal.SIGINT
        name = signal.Signals(signum).name
        if comm.rank != 0:  # mpiexec signals every rank: rank 0 names it for the job ...
            time.sleep(1.0)  # ... and ends it; a rank signalled alone names it itself
        print(f"synfield{where}: {name}: stopped at once{interrupted}", file=sys.stderr, flush=True)
        if comm.size > 1:
            comm.Abort(128 + signum)
        return 128 + signum
    except Exception as error:  # every failure ends all ranks with one message
        if getattr(error, "reported_by_root", False):  # rank 0 prints it and ends the job
            comm.Barrier()
        print(f"synfield: error{where}: {message(error)}", file=sys.stderr, flush=True)
        code = 2 if isinstance(error, ConfigError) else 1  # 2: a usage or config error
        if comm.size > 1:
            comm.Abort(code)
        if isinstance(error, OutputError):  # HDF5 may crash closing a file it failed to write
            sys.stdout.flush()
            os._exit(code)
        return code


def main(argv: list[str] | None = None) -> int:
    from continuum.app.interrupt import SIGNALS, stop_at_once

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `synfield inspect … | head` ends quietly
    args = parser().parse_args(argv)
    comm = MPI.COMM_WORLD
    # the signals are synfield's: PETSc, loaded later, would print a crash report and abort
    options = os.environ.get("PETSC_OPTIONS")
    os.environ["PETSC_OPTIONS"] = f"{options or ''} -no_signal_handler".strip()
    previous = {signum: signal.signal(signum, stop_at_once) for signum in SIGNALS}
    try:
        return guarded(lambda: args.func(args, comm), comm, INTERRUPTED.get(args.command, ""))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if options is None:
            del os.environ["PETSC_OPTIONS"]
        else:
            os.environ["PETSC_OPTIONS"] = options


if __name__ == "__main__":
    sys.exit(main())
