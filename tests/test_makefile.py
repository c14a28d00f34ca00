"""The Makefile's doors that nothing else runs: the notebook as root, and the search's dashboard."""

import os
import subprocess

from conftest import PROJECT_ROOT


def make(*arguments: str) -> subprocess.CompletedProcess:
    # -o: the virtual environment counts as built, so nothing is installed here.
    prerequisites = ["-o", ".venv/bin/.installed", "-o", ".venv/bin/.installed-dev"]
    return subprocess.run(["make", *prerequisites, *arguments], cwd=PROJECT_ROOT, capture_output=True, text=True)


def test_the_notebook_is_opened_with_allow_root_only_as_root():
    planned = make("-n", "notebook").stdout
    assert ("--allow-root" in planned) == (os.getuid() == 0), planned  # JupyterLab refuses root without it


def test_the_dashboard_needs_a_searched_run_folder(tmp_path):
    (tmp_path / "run.json").write_text("{}")  # a run, but no study.db: not a search
    finished = make("dashboard", f"RUN={tmp_path}")
    assert finished.returncode == 2
    assert "error: give a searched run folder: make dashboard RUN=runs/<id> (it holds study.db)" in finished.stdout
    planned = make("-n", "dashboard", "RUN=runs/x").stdout  # -n: what it would run, for a study there
    assert "optuna-dashboard==0.21.0" in planned and 'optuna-dashboard "sqlite:///' in planned
