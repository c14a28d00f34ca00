"""The report and TensorBoard: report.html from disk, HParams event files read back with
TensorBoard's own reader, and the report in a real headless Chromium (where one is installed)."""

import html
import json
import re
from pathlib import Path

import numpy as np
import pytest

import common
import explorer.store.files
import explorer.store.folders
import explorer.store.schema
import explorer.store.trial_folder
import explorer.views.digits
import explorer.views.report
import explorer.views.summarize
import explorer.views.tensorboard
import model_builder_loop

from conftest import CHROMEDRIVER, CHROMIUM, NO_BROWSER, headless_chromium, make_synthetic_digits

NAMES = ["dense_32_relu", "softmax_regression", "dense_128_relu_sigmoid_out"]
REFERENCE = "softmax_regression"


def expected_figures(run_dir: Path) -> int:
    """The figures a report of `run_dir` embeds: comparison, parallel coordinates, per digit,
    confusion matrix, mistakes, first layer and each configuration's curves; the forest beside the
    findings where something was compared with the reference, factors only where the sweep varies one
    field alone, and the discordant digits only where the best is not the reference."""
    optional = [
        (run_dir / name).is_file()
        for name in ("forest.png", "factors.png", "discordant.png", "first_layer_progress.png")
    ]
    return 6 + sum(optional) + len(NAMES)


def best_name(run_dir: Path) -> str:
    summary = json.loads((run_dir / "summary.json").read_text())
    return next(row["name"] for row in summary if row["vs_best"] == "best")


@pytest.fixture(scope="module")
def tensorboard_run(tmp_path_factory):
    """One quick sweep of three configurations, two runs each, logged to TensorBoard."""
    folder = tmp_path_factory.mktemp("run")
    data = folder / "digits.npz"

    (x_train, y_train), (x_test, y_test) = make_synthetic_digits(600, 1), make_synthetic_digits(200, 2)
    np.savez(data, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    run_dir = folder / "run"
    argv = ["--quick", "--repeats", "2", "--tensorboard", "--data", str(data), "--out", str(run_dir), "--only", *NAMES,
            "--reference", REFERENCE]  # fmt: skip
    assert model_builder_loop.main(argv) == 0
    return run_dir


def test_report_is_one_self_contained_page(tensorboard_run):
    page = (tensorboard_run / "report.html").read_text()
    rows = re.findall(r"<tr class=\"[^\"]*\"><td", page)
    assert len(rows) == len(NAMES)
    for name in NAMES:
        assert f">{name}</td>" in page
    assert "python model_builder_loop.py --quick --repeats 2 --tensorboard" in page
    images = re.findall(r'<img src="([^"]{0,30})', page)
    assert len(images) == expected_figures(tensorboard_run)
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert "<h2>Accuracy per digit</h2>" in page and "<h2>One factor at a time</h2>" in page
    assert "<h2>What its first layer learned</h2>" in page
    assert ("<h2>What changed against the reference, digit by digit</h2>" in page) == (
        best_name(tensorboard_run) != REFERENCE
    )
    summaries = re.findall(r"<details><summary>([^<]+)</summary><pre>([^<]+)</pre></details>", page)
    assert sorted(name for name, _ in summaries) == sorted(NAMES)
    for name, text in summaries:  # Keras' own summary, as its first run saved it beside the model
        saved = (tensorboard_run / name / "model_summary.txt").read_text(encoding="utf-8")
        assert "Total params" in saved and html.unescape(text).strip() == saved.strip()
    # The configuration in one cell, "-" where a column does not apply.
    assert ">no hidden layer → softmax; adam 0.001, batch 128, 1 epoch</td>" in page
    assert ">32 relu → softmax; adam 0.001, batch 128, 1 epoch</td>" in page
    assert "embedded 5,000-digit sample" not in page  # the data here is a file of synthetic digits
    # Verdicts as marks with the difference in points, and a legend saying what the marks mean.
    assert "vs reference" in page and re.search(r">[▲▼·] [+-]\d+\.\d\d</td>", page)
    assert "▲ better, ▼ worse, · not detected" in page
    # The findings open the page, the same sentences as findings.json's.
    findings = json.loads((tensorboard_run / "findings.json").read_text())
    assert findings["sentences"] and page.index("What this sweep found") < page.index("Leaderboard")
    assert all(f"<li>{html.escape(sentence)}</li>" in page for sentence in findings["sentences"])
    assert findings["sentences"][0].startswith("Bottom line: ")
    # Beside them the forest plot, one row of numbers per comparison with the reference below them.
    assert (tensorboard_run / "forest.png").is_file()
    answers = page.split('<div class="answers">')[1].split("</div>")[0]
    assert answers.count("data:image/png;base64,") == 1
    numbers = page.split('<table id="numbers">')[1].split("</table>")[0]
    assert numbers.count('<td class="text">') == len(findings["numbers"]) == len(NAMES) - 1
    # A fused group's seconds are given once, not on each of its members' rows.
    if any(row["fused_group"] for row in json.loads((tensorboard_run / "summary.json").read_text())):
        assert "Fused groups, trained as one model: <b>group A</b>: " in page and ">group A</td>" in page
    assert "http://" not in page and "https://" not in page  # nothing to fetch: it opens offline


def _events(folder: Path):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    for path in sorted(folder.glob("events.out.tfevents.*")):
        yield from EventFileLoader(str(path)).Load()


def _hparams_plugin_data(folder: Path):
    from tensorboard.plugins.hparams import plugin_data_pb2

    for event in _events(folder):
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name == "hparams":
                data = plugin_data_pb2.HParamsPluginData()
                data.ParseFromString(value.metadata.plugin_data.content)
                yield data


@pytest.mark.backend
def test_tensorboard_holds_the_experiment_every_session_and_their_metrics(tensorboard_run):
    from tensorboard.util import tensor_util

    log_root = tensorboard_run / explorer.store.folders.TENSORBOARD_FOLDER
    (experiment,) = [data.experiment for data in _hparams_plugin_data(log_root) if data.HasField("experiment")]
    assert [info.name for info in experiment.hparam_infos] == list(explorer.views.tensorboard.HPARAM_FIELDS)
    assert [info.name.tag for info in experiment.metric_infos] == list(explorer.views.tensorboard.HPARAM_METRICS)

    results = {result["trial"]: result for result in explorer.store.schema.read_results(tensorboard_run)}
    assert len(results) == 2 * len(NAMES)
    assert all(result["fused_group_size"] == len(NAMES) for result in results.values())  # it trained fused
    for trial, result in results.items():
        (session,) = [
            d.session_start_info for d in _hparams_plugin_data(log_root / trial) if d.HasField("session_start_info")
        ]
        assert session.hparams["seed"].number_value == result["seed"]
        assert session.hparams["width"].number_value == max(result["config"]["hidden_units"], default=0)
        assert session.hparams["output_activation"].string_value == result["config"]["output_activation"]
        scalars = {
            value.tag: float(tensor_util.make_ndarray(value.tensor))
            for event in _events(log_root / trial)
            for value in event.summary.value
            if value.tag in explorer.views.tensorboard.HPARAM_METRICS
        }
        assert scalars["test_accuracy"] == pytest.approx(result["test_accuracy"])
        assert scalars["parameters"] == result["parameters"]
        epoch_tags = {value.tag for event in _events(log_root / trial / "validation") for value in event.summary.value}
        assert {"epoch_accuracy", "epoch_loss"} <= epoch_tags  # each branch logged its own epochs
        validation_accuracy = [
            float(tensor_util.make_ndarray(value.tensor))
            for event in _events(log_root / trial / "validation")
            for value in event.summary.value
            if value.tag == "epoch_accuracy"
        ]
        history = common.read_history(tensorboard_run / trial / "history.csv")
        assert validation_accuracy == pytest.approx(history["val_accuracy"])  # this branch's, not another's


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason=NO_BROWSER)
def test_report_in_a_real_browser(tensorboard_run, tmp_path):
    browser = headless_chromium(tmp_path / "profile")
    from selenium.webdriver.common.by import By

    try:
        browser.get((tensorboard_run / "report.html").as_uri())
        rows = browser.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")
        assert len(rows) == len(NAMES)

        def column(key):
            index = [
                th.get_attribute("data-key") for th in browser.find_elements(By.CSS_SELECTOR, "#leaderboard th")
            ].index(key)
            return [row.find_elements(By.TAG_NAME, "td")[index].get_attribute("data-value")
                    for row in browser.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")]  # fmt: skip

        header = browser.find_element(By.CSS_SELECTOR, '#leaderboard th[data-key="test_accuracy"]')
        header.click()
        descending = [float(value) for value in column("test_accuracy")]
        assert descending == sorted(descending, reverse=True) and header.get_attribute("data-order") == "descending"
        header.click()
        ascending = [float(value) for value in column("test_accuracy")]
        assert (ascending == sorted(ascending) and ascending != descending) or len(set(ascending)) == 1
        browser.find_element(By.CSS_SELECTOR, '#leaderboard th[data-key="name"]').click()
        assert column("name") == sorted(column("name"), reverse=True)

        widths = browser.execute_script("return Array.from(document.images).map((image) => image.naturalWidth)")
        assert len(widths) == expected_figures(tensorboard_run) and all(width > 0 for width in widths)
        headings = [element.text for element in browser.find_elements(By.TAG_NAME, "h2")]
        assert {"Accuracy per digit", "One factor at a time", "Leaderboard", "What its first layer learned",
                "The networks, as Keras summarises them"} <= set(headings)  # fmt: skip
        assert ("What changed against the reference, digit by digit" in headings) == (
            best_name(tensorboard_run) != REFERENCE
        )
        folded = browser.find_elements(By.CSS_SELECTOR, ".summaries details")
        assert len(folded) == len(NAMES) and not folded[0].find_element(By.TAG_NAME, "pre").is_displayed()
        folded[0].find_element(By.TAG_NAME, "summary").click()  # unfold the first network's summary
        shown = folded[0].find_element(By.TAG_NAME, "pre")
        assert shown.is_displayed() and "Total params" in shown.text
        # At 1,280 pixels the whole leaderboard shows: neither the page nor the table scrolls sideways.
        page_width, window_width, table_width, box_width = browser.execute_script(
            "const table = document.getElementById('leaderboard');"
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth,"
            " table.scrollWidth, table.parentElement.clientWidth];"
        )
        assert page_width <= window_width and table_width <= box_width, (page_width, window_width, table_width)
        assert browser.save_screenshot(str(tmp_path / "report.png")) and (tmp_path / "report.png").stat().st_size > 0
    finally:
        browser.quit()


def test_first_layer_of_a_network_without_hidden_layer_is_its_class_templates(tensorboard_run):
    kernel, is_output = explorer.views.digits.first_layer_kernel(tensorboard_run / "softmax_regression" / "model.keras")
    assert kernel.shape == (784, 10) and is_output
    kernel, is_output = explorer.views.digits.first_layer_kernel(tensorboard_run / "dense_32_relu" / "model.keras")
    assert kernel.shape == (784, 32) and not is_output
    assert explorer.views.digits.first_layer_kernel(tensorboard_run / "no_such_model.keras") is None


def test_the_discordant_digits_compare_the_first_seed_both_finished():
    def run(name, seed, status="ok"):
        return {"name": name, "seed": seed, "status": status, "trial": f"{name}@seed{seed}"}

    results = [run("best", 1, "diverged"), run("ref", 1), run("best", 2), run("ref", 2), run("best", 3), run("ref", 3)]
    seed, trials = explorer.views.summarize.discordant_pair(results, {"name": "best"}, "ref")
    assert seed == 2 and [trial["trial"] for trial in trials] == ["best@seed2", "ref@seed2"]
    assert (
        explorer.views.summarize.discordant_pair(results, {"name": "ref"}, "ref") is None
    )  # the best is the reference
    assert explorer.views.summarize.discordant_pair(results, {"name": "best"}, None) is None


def test_a_report_on_the_embedded_sample_says_so_on_the_page(tmp_path):
    data = {"kind": "embedded-sample", "location": "mnist_5k.csv.gz", "train_size": 4_000, "test_size": 1_000}
    page = explorer.views.report.render_report({"data": data}, "run", [], explorer.views.report.ReportParts())
    assert '<p class="banner">These figures come from the embedded 5,000-digit sample' in page
    assert "(4,000 training and 1,000 test digits), not the full MNIST" in page
    assert 'class="banner"' not in explorer.views.report.render_report(
        {"data": {**data, "kind": "path"}}, "run", [], explorer.views.report.ReportParts()
    )


def test_the_best_networks_first_layer_is_shown_as_it_learned(tensorboard_run):
    best = best_name(tensorboard_run)
    kept = explorer.store.trial_folder.first_layer_epochs(tensorboard_run / best)
    kernel, is_output = explorer.views.digits.first_layer_kernel(tensorboard_run / best / "model.keras")
    assert (tensorboard_run / "first_layer_progress.png").is_file() != is_output  # a hidden layer's
    assert list(kept) == [1]  # --quick: one epoch, the last
    assert kept[1].dtype == np.float16 and kept[1].shape == (784, min(16, kernel.shape[1]))
    np.testing.assert_allclose(kept[1], kernel[:, :16], rtol=1e-3, atol=1e-3)  # the last is the model's own
