"""Progress output: a bar on a terminal, a few plain lines in a log."""

import io
import subprocess
import sys
from pathlib import Path

from continuum.app.progress import ProgressBar

ROOT = Path(__file__).resolve().parent.parent


def test_progress_off_a_terminal_is_one_line_per_tenth_of_the_run():
    log = io.StringIO()
    with ProgressBar(100, "training", enabled=True, stream=log) as bar:
        for step in range(1, 101):
            bar.update(step, cost=1.0 / step)
        bar.update(100, cost=0.01)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert [line.split()[2].rstrip(",") for line in lines] == [
        f"{s}/100" for s in (*range(1, 92, 10), 100)
    ]
    assert lines[-1] == "training: step 100/100, cost=1.000e-02"


def test_a_run_writing_to_a_log_file_has_no_bar(tmp_path):
    with open(tmp_path / "log", "w") as log:
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "synfield"), "run", "goldstein", "-o", "out"],
            stdout=subprocess.DEVNULL,
            stderr=log,
            timeout=300,
            cwd=tmp_path,
        )
    assert proc.returncode == 0
    text = (tmp_path / "log").read_text()
    lines = [line for line in text.splitlines() if line.startswith("training: step")]
    assert "\r" not in text and 2 <= len(lines) <= 11
