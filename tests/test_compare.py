"""--compare: finished runs side by side in one summary and report, nothing retrained."""

import json

import common
import explorer.run_folder


def test_two_runs_compared_in_one_report_labelled_with_their_differences_stated(tmp_path, synthetic_npz):
    quiet = {"data": synthetic_npz, "quick": True, "log": lambda line: None}
    narrow = common.sweep({"narrow": {"hidden_units": [8]}, "mid": {"hidden_units": [32]}}, out=tmp_path / "a", **quiet)
    wider = common.sweep({"mid": {"hidden_units": [64]}}, out=tmp_path / "b", **quiet)
    assert narrow.exit_code == wider.exit_code == 0
    lines = []
    compared = common.sweep(None, compare=[tmp_path / "a", tmp_path / "b"], out=tmp_path / "ab", log=lines.append)
    assert compared.exit_code == 0 and compared.run_dir == tmp_path / "ab"
    rows = json.loads((tmp_path / "ab" / "summary.json").read_text())
    assert sorted(row["name"] for row in rows) == ["a.mid", "a.narrow", "b.mid"]
    by_name = {row["name"]: row for row in rows}
    assert by_name["b.mid"]["test_accuracy"] == wider.views.rows[0]["test_accuracy"]  # read back, not retrained
    assert by_name["a.narrow"]["vs_reference"] == "reference"  # the first run's reference
    assert by_name["b.mid"]["vs_reference_p"] is not None  # the same seed and test digits: paired
    assert "Differs: mid: hidden_units [32] (a) vs [64] (b)" in lines
    run = json.loads((tmp_path / "ab" / "run.json").read_text())
    assert run["compared"] == [str(tmp_path / "a"), str(tmp_path / "b")]
    page = (tmp_path / "ab" / "report.html").read_text()
    assert "<dt>runs compared</dt>" in page and "mid: hidden_units [32] (a) vs [64] (b)" in page
    assert not list((tmp_path / "ab").glob("*/result.json"))  # nothing was trained into it
    assert len(explorer.run_folder.read_results(tmp_path / "a")) == 2  # and the runs are untouched
