"""report.html while the run trains (`explorer.views.progress_page`): a page that refreshes itself,
says what finished and what trains, and holds no verdict until the final report replaces it."""

import explorer.engine.local
from explorer.views.progress_page import Progress, progress_page

from conftest import run_loop


def test_the_page_says_what_finished_what_trains_and_the_time_left_and_refreshes():
    progress = Progress("r1", 1, 3, ("b", "c"), (("a", 0.9712), ("x", None)), "about 2 min left")
    page = progress_page(progress, {"a": {"val_accuracy": [0.9, 0.95]}})
    assert '<meta http-equiv="refresh" content="10">' in page
    assert "1 of 3 group(s) done; about 2 min left. Training now: b, c." in page
    assert "<td>a</td><td>0.9712</td>" in page and "<td>x</td><td>-</td>" in page
    assert page.count("data:image/png;base64,") == 1  # the curves so far


def test_between_two_groups_the_report_is_the_progress_page_and_at_the_end_the_final_one(
    tmp_path, synthetic_npz, monkeypatch
):
    seen = []
    train_group_here = explorer.engine.local.train_group_here

    def noting_the_page(work, group, *args):
        seen.append((tmp_path / "run" / "report.html").read_text())
        return train_group_here(work, group, *args)

    monkeypatch.setattr(explorer.engine.local, "train_group_here", noting_the_page)
    config = tmp_path / "two.toml"  # two batch sizes: two groups
    config.write_text("[small]\nhidden_units = [8]\nbatch_size = 32\n\n[large]\nhidden_units = [8]\nbatch_size = 64\n")
    assert (
        run_loop("--quick", "--repeats", "1", "--config", config, "--data", synthetic_npz, "--out", tmp_path / "run")
        == 0
    )
    first, second = seen
    assert "0 of 2 group(s) done" in first and "Training now: small." in first
    assert "1 of 2 group(s) done" in second and "<td>small</td>" in second and "Training now: large." in second
    for page in seen:  # no verdict, no finding before the run ends
        assert 'http-equiv="refresh"' in page and "▲" not in page and "found" not in page
    final = (tmp_path / "run" / "report.html").read_text()
    assert 'http-equiv="refresh"' not in final and "What this sweep found" in final
