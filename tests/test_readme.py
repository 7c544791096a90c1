"""The README's Python snippet runs as written, from the top of the source tree."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)


def test_the_readme_api_snippet_runs_and_prints_the_theory():
    (block,) = python_blocks()
    check = (
        "\nimport numpy as np\n"
        "assert len(w) == 1 and w[0].shape == (32, 32) and b[0].shape == (32,)\n"
        "assert np.all(np.isfinite(w[0])) and float(np.abs(w[0]).max()) > 0.1\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", block + check],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("FieldTheory of")


def test_continuum_can_be_imported_before_dolfinx_without_mpi4py():
    """``import continuum`` first, then ``dolfinx``: the package has imported mpi4py.MPI."""
    script = "import continuum\nimport dolfinx\nprint(dolfinx.__version__)\n"
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("0.")
