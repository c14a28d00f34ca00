"""The notebook: every cell runs (on synthetic digits, offline), and the .ipynb matches its script."""

import os

import jupytext
import nbclient
import nbformat
import numpy as np

import common

from conftest import PROJECT_ROOT, make_synthetic_digits

NOTEBOOK = PROJECT_ROOT / "notebooks" / "explore_mnist.ipynb"


def test_the_notebook_is_its_percent_script():
    """The .py beside the notebook is what a diff shows: both must hold the same cells."""
    notebook, script = jupytext.read(NOTEBOOK), jupytext.read(NOTEBOOK.with_suffix(".py"))
    assert [(cell.cell_type, cell.source) for cell in notebook.cells] == [
        (cell.cell_type, cell.source) for cell in script.cells
    ]


def test_every_cell_of_the_notebook_runs(tmp_path, monkeypatch):
    (x_train, y_train), (x_test, y_test) = make_synthetic_digits(600, 1), make_synthetic_digits(200, 2)
    np.savez(tmp_path / "digits.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    # The kernel inherits these: the project on its path, the data (so nothing is downloaded) and
    # this session's backend.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MNIST_DATA", str(tmp_path / "digits.npz"))
    monkeypatch.setenv("KERAS_BACKEND", common.keras.backend.backend())
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    (tmp_path / "notebooks").mkdir()  # run where the notebook lies: its runs go to the project's runs/
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path / "notebooks")}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell raises
    # Each cell's value (not what Keras prints on the way): two leaderboards and three figures.
    results = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
               if output.output_type == "execute_result"]  # fmt: skip
    tables = [output for output in results if "<table" in output["data"].get("text/html", "")]
    images = [output for output in results if "image/png" in output["data"]]
    assert len(tables) == 2 and "g-h128x128-relu" in tables[0]["data"]["text/html"]
    assert len(images) == 3  # factors, accuracy per digit, first layer
    printed = "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                      for output in cell.outputs if output.output_type == "stream")  # fmt: skip
    assert "Bottom line: " in printed and "The best, by mean validation accuracy" in printed
    assert "each verdict is McNemar's test on the same test digits, which with one run compares two" in printed
    assert len(list((tmp_path / "runs").glob("*/report.html"))) == 2 and not (tmp_path / "notebooks" / "runs").exists()
