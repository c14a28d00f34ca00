"""The documentation: every relative link of the README and the guide resolves (its file, and its
#anchor to a heading there), and the guide's script that classifies an image runs."""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import common
import explorer.config.models
import explorer.models.dense
import explorer.models.variants

from conftest import PROJECT_ROOT

PAGES = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as '-'."""
    headings = re.findall(r"^#{1,6} (.+)$", page.read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)  # code blocks hold no links
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_every_relative_link_resolves(page):
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.name}: {broken}"


def test_the_readme_is_a_door_and_no_page_keeps_a_lab_notebook():
    assert len((PROJECT_ROOT / "README.md").read_text().splitlines()) < 200
    for page in PAGES:
        text = page.read_text()
        found = re.findall(r"this round|this issue|\bcommit [0-9a-f]{7}", text, re.IGNORECASE)
        assert not found, f"{page.name}: {found}"


def test_the_guides_script_classifies_an_image_with_a_runs_best_model(tmp_path, monkeypatch):
    page = (PROJECT_ROOT / "docs" / "using-a-trained-model.md").read_text()
    (script,) = re.findall(r"```python\n(.*?)```", page, re.DOTALL)
    shutil.copytree(PROJECT_ROOT / "tests" / "fixtures" / "run_layout_2", tmp_path / "run")
    # The kept run holds no models: its best network, built and saved here (untrained is enough to
    # read an image).
    common.keras.utils.set_random_seed(0)
    best = explorer.models.dense.dense_network(explorer.config.models.validate_config("mid", {"hidden_units": [16]}))
    best.optimizer.build(best.trainable_variables)  # saved as a trained model is: with its optimizer's state
    best.save(tmp_path / "run" / "mid" / "model.keras")
    drawing = np.full((280, 280), 255, np.uint8)
    drawing[60:220, 130:150] = 0  # a dark stroke on white, ten times MNIST's size
    Image.fromarray(drawing).save(tmp_path / "my_digit.png")
    monkeypatch.chdir(tmp_path)
    printed = []
    monkeypatch.setitem(__builtins__ if isinstance(__builtins__, dict) else vars(__builtins__), "print", printed.append)
    exec(script.replace('Path("runs/<run-id>")', 'Path("run")'), {"__name__": "__main__"})
    (line,) = printed
    assert re.fullmatch(r"mid reads a \d; its ten outputs: \[.*\]", line, re.DOTALL), line


def test_the_records_network_written_out_in_the_guide_is_the_one_the_records_sweep_builds():
    page = (PROJECT_ROOT / "docs" / "your-networks.md").read_text()
    (code,) = [block for block in re.findall(r"```python\n(.*?)```", page, re.DOTALL) if "def wide_all" in block]
    names = {"keras": common.keras, "layers": common.keras.layers, "INPUT_DIM": 784, "NUM_CLASSES": 10}
    exec(code, names)
    fields = explorer.config.models.load_toml_configs(PROJECT_ROOT / "sweeps" / "records.toml")["wide_all"]
    config = explorer.config.models.validate_config("wide_all", fields)
    steps = names["EPOCHS"] * names["BATCHES_PER_EPOCH"]
    assert names["EPOCHS"] == config.epochs and names["BATCHES_PER_EPOCH"] == -(-54_000 // config.batch_size)
    built = explorer.models.dense.dense_network(config, training_steps=steps)
    assert explorer.models.variants.model_fingerprint(
        names["wide_all"]()
    ) == explorer.models.variants.model_fingerprint(built)
