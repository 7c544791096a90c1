"""The command line: examples, converge --json, inspect."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYNFIELD = Path(sys.executable).parent / "synfield"


def synfield(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SYNFIELD), *args], capture_output=True, text=True, timeout=300)


def test_examples_lists_every_shipped_config_with_its_path():
    proc = synfield("examples")
    assert proc.returncode == 0, proc.stderr
    assert "SPEC" not in proc.stdout  # the spec is not shipped; docs/ is
    rows = [line.split() for line in proc.stdout.splitlines() if not line.startswith(" ")]
    assert {name for name, _ in rows} == {p.stem for p in (ROOT / "examples").glob("*.toml")}
    for name, path in rows:
        assert Path(path).is_absolute() and Path(path).read_text().startswith("[experiment]")
        assert Path(path).name == f"{name}.toml"


def test_converge_json_reports_errors_and_orders():
    proc = synfield(
        "converge",
        str(ROOT / "examples" / "quadratic-toy.toml"),
        "--widths",
        "8",
        "16",
        "32",
        "--degrees",
        "2",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)["degrees"]["2"]
    assert result["widths"] == [8, 16, 32]
    assert result["orders"][0] is None
    assert all(1.8 <= o <= 2.2 for o in result["orders"][1:])
    assert result["errors"][0] > result["errors"][1] > result["errors"][2]


def test_inspect_lists_the_datasets(tmp_path):
    assert (
        synfield(
            "run", str(ROOT / "examples" / "goldstein.toml"), "-o", str(tmp_path), "-q"
        ).returncode
        == 0
    )
    proc = synfield("inspect", str(tmp_path / "fields.h5"))
    assert proc.returncode == 0, proc.stderr
    assert "complete output steps: 21" in proc.stdout
    assert "/continuum/layer0/w_at_lattice" in proc.stdout


def test_the_command_runs_one_blas_thread_unless_told_otherwise():
    """The CLI runs numpy's BLAS on one thread per process (numpy is loaded before the CLI
    module runs, so the variables alone would not do it); a user's setting wins.  Two threads
    are what this 2-core machine's BLAS starts by default, so the first case can fail."""
    script = (
        "import os, continuum.app.cli, threadpoolctl\n"
        "blas = [p['num_threads'] for p in threadpoolctl.threadpool_info()"
        " if p['user_api'] == 'blas']\n"
        "print(os.environ['OPENBLAS_NUM_THREADS'], os.environ['OMP_NUM_THREADS'], *blas)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    for preset, expected in ((None, "1 1 1"), ("2", "2 1 2")):
        run_env = env if preset is None else {**env, "OPENBLAS_NUM_THREADS": preset}
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=run_env, cwd=ROOT
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == expected.split()


def test_version_is_the_installed_distribution_version():
    from importlib.metadata import version

    proc = synfield("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"synfield {version('synfield')}"


def test_every_argument_of_every_subcommand_has_help_and_no_unshipped_file_is_cited():
    import argparse

    from continuum.app.cli import parser

    top = parser()
    (commands,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands.choices) == {"run", "converge", "ensemble", "inspect", "examples", "plot"}
    for name, sub in commands.choices.items():
        for action in sub._actions:
            assert action.help, f"synfield {name} {action.dest}: no help text"
        text = sub.format_help()
        assert "SPEC" not in text
    assert "SPEC" not in top.format_help()


def test_a_shipped_example_runs_by_name_from_any_folder(tmp_path):
    proc = subprocess.run(
        [str(SYNFIELD), "run", "goldstein", "-q", "-o", "out"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["experiment"] == "goldstein"


def test_the_examples_are_package_data_mapped_from_the_source_folder():
    import tomllib

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "continuum.examples" in tool["packages"]
    assert tool["package-dir"]["continuum.examples"] == "examples"
    assert tool["package-data"]["continuum.examples"] == ["*.toml"]


def test_the_shipped_ensemble_example_works_out_of_the_box(tmp_path):
    proc = synfield("ensemble", "ensemble", "--seeds", "4", "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["seeds"] == 4 and len(summary["times"]) == len(summary["l2_error_mean"])
    # noise of size 0.1 on 32 x 32 weights: the mean of 4 members is off by about 0.1/√4
    assert 0.02 < summary["l2_error_mean"][0] < 0.1
    shown = synfield("inspect", str(tmp_path))
    assert shown.returncode == 0, shown.stderr
    assert "created: 20" in shown.stdout
    assert f"complete output steps: {len(summary['times'])}" in shown.stdout
