"""--compare: finished runs side by side in one summary and report, nothing retrained; and what a
version does with run folders of a layout (`store.folders.LAYOUT`), tested on a kept folder."""

import json
import shutil

import numpy as np
import pytest

import common
import explorer.errors
import explorer.store.schema

from conftest import PROJECT_ROOT, SYNTHETIC_TEST, SYNTHETIC_TRAIN, make_synthetic_digits

# A quick run of {"narrow": [8], "mid": [16]} on the synthetic digits, read from "mnist.npz" in the
# current folder, as layout 2 wrote it: its records, histories and predictions; its figures and report
# left out (the views rebuild them), and its models too (no trained model enters the repository).
KEPT_RUN = PROJECT_ROOT / "tests" / "fixtures" / "run_layout_2"


@pytest.fixture
def in_a_folder_with_the_kept_run(tmp_path, monkeypatch):
    """A folder holding the kept run (as "a") and the digits it was trained on, as the current folder."""
    (x_train, y_train), (x_test, y_test) = (
        make_synthetic_digits(SYNTHETIC_TRAIN, 1),
        make_synthetic_digits(SYNTHETIC_TEST, 2),
    )
    np.savez(tmp_path / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    shutil.copytree(KEPT_RUN, tmp_path / "a")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_kept_run_and_a_new_one_compared_in_one_report_with_their_differences_stated(in_a_folder_with_the_kept_run):
    folder = in_a_folder_with_the_kept_run
    wider = common.sweep({"mid": {"hidden_units": [32]}}, data="mnist.npz", quick=True, out="b", log=lambda line: None)
    assert wider.exit_code == 0
    lines = []
    compared = common.sweep(None, compare=["a", "b"], out="ab", log=lines.append)
    assert compared.exit_code == 0 and compared.run_dir.resolve() == folder / "ab"
    rows = json.loads((folder / "ab" / "summary.json").read_text())
    assert sorted(row["name"] for row in rows) == ["a.mid", "a.narrow", "b.mid"]
    by_name = {row["name"]: row for row in rows}
    kept = {result["name"]: result for result in explorer.store.schema.read_results(KEPT_RUN)}
    assert by_name["a.mid"]["test_accuracy"] == kept["mid"]["test_accuracy"]  # read back, not retrained
    assert by_name["b.mid"]["test_accuracy"] == wider.views.rows[0]["test_accuracy"]
    assert by_name["a.narrow"]["vs_reference"] == "reference"  # the first run's reference
    assert by_name["b.mid"]["vs_reference_p"] is not None  # the same seed and test digits: paired
    assert "Differs: mid: hidden_units [16] (a) vs [32] (b)" in lines
    # It ends with what it found, as a sweep does (once only in findings.json).
    found = json.loads((folder / "ab" / "findings.json").read_text())["sentences"]
    said = lines[lines.index("\nWhat this comparison found:") + 1 :]
    assert found and [" ".join(line.split()) for line in said] == [" ".join(f"- {s}".split()) for s in found]
    run = json.loads((folder / "ab" / "run.json").read_text())
    assert run["compared"] == ["a", "b"]
    page = (folder / "ab" / "report.html").read_text()
    assert "<dt>runs compared</dt>" in page and "mid: hidden_units [16] (a) vs [32] (b)" in page
    assert {"comparison.png", "factors.png"} <= {path.name for path in (folder / "ab").iterdir()}
    assert not list((folder / "ab").glob("*/result.json"))  # nothing was trained into it
    assert sorted(path.name for path in (folder / "a").rglob("*")) == sorted(path.name for path in KEPT_RUN.rglob("*"))


def test_a_run_of_another_layout_is_refused_by_compare_and_resume_in_one_line(in_a_folder_with_the_kept_run, capsys):
    folder = in_a_folder_with_the_kept_run
    shutil.copytree(folder / "a", folder / "old")
    run = json.loads((folder / "old" / "run.json").read_text())
    (folder / "old" / "run.json").write_text(json.dumps({**run, "layout": 1}))
    with pytest.raises(
        explorer.errors.UserInputError,
        match=r"--compare old: written by another version .* layout 1; this version reads 2",
    ):
        common.sweep(None, compare=["a", "old"], out="ab")
    with pytest.raises(
        explorer.errors.UserInputError,
        match=r"--resume old: written by another version .*layout 1, this version writes 2",
    ):
        common.sweep({"narrow": {"hidden_units": [8]}}, data="mnist.npz", quick=True, resume="old")
    assert not (folder / "ab").exists()
