"""The engine as an installed package: `from explorer import sweep` from a script in any folder
(the Makefile installs it with `pip install -e .`), as the guide shows."""

import json
import os
import subprocess
import sys

import numpy as np

from conftest import PROJECT_ROOT, SYNTHETIC_TEST, SYNTHETIC_TRAIN, make_synthetic_digits

SCRIPT = """\
import sys

import explorer
from explorer import sweep

outcome = sweep({"tiny": {"hidden_units": [8]}}, data="digits.npz", quick=True, out="run", log=lambda line: None)
print(explorer.__file__)
sys.exit(outcome.exit_code)
"""


def test_a_script_in_an_unrelated_folder_runs_a_sweep_through_the_installed_api(tmp_path):
    (x_train, y_train), (x_test, y_test) = (
        make_synthetic_digits(SYNTHETIC_TRAIN, 1),
        make_synthetic_digits(SYNTHETIC_TEST, 2),
    )
    np.savez(tmp_path / "digits.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    (tmp_path / "mine.py").write_text(SCRIPT)
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    finished = subprocess.run(
        [sys.executable, "mine.py"], cwd=tmp_path, capture_output=True, text=True, env=environment, timeout=300
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.splitlines()[-1] == str(
        PROJECT_ROOT / "explorer" / "__init__.py"
    )  # the project's, installed
    (row,) = json.loads((tmp_path / "run" / "summary.json").read_text())
    result = json.loads((tmp_path / "run" / "tiny" / "result.json").read_text())
    assert row["name"] == "tiny" and result["status"] == "ok"
    # The script's own digits, split as the default validation split (10%) says.
    assert result["samples"] == {"train": SYNTHETIC_TRAIN * 9 // 10, "validation": SYNTHETIC_TRAIN // 10,
                                 "test": SYNTHETIC_TEST}  # fmt: skip
