"""The notebooks in notebooks/: stored without outputs, and each one runs without error.

Every notebook is executed top to bottom with nbclient in quick mode (``SYNFIELD_QUICK=1``:
smaller widths and meshes) and the Agg backend.  The kernel is this interpreter: a kernel
spec named ``python3`` whose ``argv`` is ``sys.executable`` is put first on ``JUPYTER_PATH``,
so the ipykernel of this environment (the venv) runs the notebooks, never a ``python3``
kernel registered elsewhere on the machine.
"""

import hashlib
import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def jupyter_path(tmp_path_factory) -> Path:
    """A data directory holding a ``python3`` kernel spec that runs ``sys.executable``."""
    share = tmp_path_factory.mktemp("jupyter")
    spec = share / "kernels" / "python3"
    spec.mkdir(parents=True)
    kernel = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (synfield test)",
        "language": "python",
    }
    (spec / "kernel.json").write_text(json.dumps(kernel))
    return share


@pytest.fixture
def kernel_env(jupyter_path, monkeypatch):
    """The environment the kernel inherits: quick mode, Agg, this interpreter's kernel spec."""
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
    monkeypatch.setenv("SYNFIELD_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")


def execute(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        allow_errors=False,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    return client.execute()


def test_the_notebooks_are_there():
    expected = {
        "01-goldstein-chain",
        "02-perceptron-limit",
        "03-kernels-and-locality",
        "04-deep-network",
        "05-bulk-boundary",
        "06-reading-output",
        "07-depth-as-a-coordinate",
        "08-digits-field-theory",
        "09-sgd-noise",
    }
    assert expected <= {p.stem for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for k, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: cell {k} is stored with outputs"
            assert cell.execution_count is None, f"{path.name}: cell {k} has an execution count"


def test_kernel_is_this_interpreter(kernel_env):
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
    out = execute(nb).cells[0].outputs
    assert Path(out[0]["text"].strip()) == Path(sys.executable)


def tracked_figures() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in ROOT.glob("docs/*.png")}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, kernel_env, monkeypatch):
    """Any cell error raises ``CellExecutionError`` (with the traceback) and fails the test;
    the figures kept in docs/ are left as they are."""
    monkeypatch.delenv("SYNFIELD_DOCS_FIGURES", raising=False)
    before = tracked_figures()
    nb = nbformat.read(path, as_version=4)
    execute(nb)
    assert tracked_figures() == before
