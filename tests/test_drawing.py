"""The report's "Draw a digit" panel: the Python version of MNIST's preprocessing on hand-made
strokes, the networks as the page computes them, and, in a real headless Chromium (where one is
installed), the page's preprocessing and forward pass against `mnist_digit` and Keras' predict."""

import base64
import json
import math
import shutil

import numpy as np
import pytest

import common
import explorer.config.models
import explorer.models.dense
import explorer.views.drawing as drawing
import model_builder_loop
from explorer.data.own_digit import mnist_digit, prepare_digit
from explorer.models.keras_compat import SavedLayer, saved_layers

from conftest import CHROMEDRIVER, CHROMIUM, NO_BROWSER, headless_chromium, make_synthetic_digits

keras = common.keras
needs_browser = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason=NO_BROWSER)
DEFAULT_NETWORKS = len(model_builder_loop.CONFIGS)  # the default sweep's 13 configurations


def stroke(height: int, width: int, top: int, left: int, size: tuple[int, int], canvas: int = 280) -> np.ndarray:
    """A canvas with one rectangle of ink of `size` at (top, left), and a fainter ring inside it."""
    image = np.zeros((canvas, canvas))
    image[top : top + size[0], left : left + size[1]] = 1.0
    image[top + size[0] // 4 : top + 3 * size[0] // 4, left + size[1] // 4 : left + 3 * size[1] // 4] = 0.3
    return image[:height, :width]


def hand_made_strokes() -> dict[str, np.ndarray]:
    """Strokes as a hand draws them: tall and thin, wide and flat, a diagonal, an L off in a corner,
    a seeded scribble with grey edges, and a dot."""
    diagonal = np.zeros((280, 280))
    for step in range(180):
        diagonal[40 + step : 58 + step, 60 + step // 2 : 78 + step // 2] = 1.0
    corner = np.zeros((280, 280))
    corner[10:150, 200:220], corner[130:150, 200:270] = 1.0, 0.8
    rng = np.random.default_rng(0)
    scribble = np.zeros((200, 240))
    for row, column in rng.integers(30, 170, size=(60, 2)):
        scribble[row - 9 : row + 9, column - 9 : column + 9] = rng.uniform(0.4, 1.0)
    return {
        "tall": stroke(280, 280, 30, 120, (220, 30)),
        "wide": stroke(280, 280, 130, 20, (24, 230)),
        "diagonal": diagonal,
        "corner": corner,
        "scribble": scribble,
        "dot": stroke(280, 280, 100, 100, (20, 20)),
    }


def ink_box(digit: np.ndarray) -> tuple[int, int]:
    rows, columns = np.nonzero(digit > 0)
    return rows.max() - rows.min() + 1, columns.max() - columns.min() + 1


@pytest.mark.parametrize("name", list(hand_made_strokes()))
def test_mnist_digit_fits_the_ink_in_20_pixels_centred_by_its_mass(name):
    image = hand_made_strokes()[name]
    digit = mnist_digit(image)
    assert digit.shape == (28, 28) and digit.min() >= 0.0 and 0.0 < digit.max() <= 1.0
    assert max(ink_box(digit)) == 20
    rows, columns = np.indices(digit.shape)
    centre = (rows * digit).sum() / digit.sum(), (columns * digit).sum() / digit.sum()
    assert abs(centre[0] - 14) <= 0.5 + 1e-9 and abs(centre[1] - 14) <= 0.5 + 1e-9, centre  # the nearest pixel


@pytest.mark.parametrize("name", ["tall", "diagonal", "corner"])
def test_a_photographed_digit_is_made_as_the_page_makes_a_drawn_one(name):
    # Dark ink on light, uneven paper with grain, as a phone photographs it: resized to 28x28 as it
    # was, such a 7 was read as a 2; prepare_digit finds the ink and centres it as MNIST's digits.
    ink = hand_made_strokes()[name]
    rng = np.random.default_rng(1)
    paper = 0.85 + 0.1 * np.linspace(0, 1, ink.shape[1]) + rng.normal(0, 0.02, ink.shape)
    photo = np.clip(np.where(ink > 0, 0.1, paper), 0, 1)
    features = prepare_digit(np.rint(photo * 255).astype(np.uint8))
    assert features.shape == (1, 784) and features.dtype == np.float32
    np.testing.assert_allclose(features.reshape(28, 28), mnist_digit((ink > 0).astype(float)), atol=0.02)


def test_a_digit_that_is_not_one_image_is_refused():
    with pytest.raises(ValueError, match=r"not an array of shape \(2, 28, 28\)"):
        prepare_digit(np.zeros((2, 28, 28)))


def test_mnist_digit_keeps_the_aspect_ratio_and_the_grey_levels():
    tall = mnist_digit(stroke(280, 280, 30, 120, (200, 40)))
    assert ink_box(tall) == (20, 4)  # 200 x 40 scaled by 20/200
    square = mnist_digit(np.pad(np.full((100, 100), 0.5), 50))
    assert ink_box(square) == (20, 20) and np.allclose(square[square > 0], 0.5)
    assert not mnist_digit(np.zeros((280, 280))).any()  # nothing drawn: an empty digit


def test_best_runs_picks_each_configuration_s_run_by_validation_accuracy():
    results = [
        {"name": "a", "status": "ok", "repeat": 0, "val_accuracy": 0.8},
        {"name": "a", "status": "ok", "repeat": 1, "val_accuracy": 0.9},
        {"name": "a", "status": "failed", "repeat": 2, "val_accuracy": None},
        {"name": "b", "status": "ok", "repeat": 0, "val_accuracy": 0.7},
        {"name": "b", "status": "ok", "repeat": 1, "val_accuracy": 0.7},
        {"name": "c", "status": "failed", "repeat": 0},
    ]
    best = drawing.best_runs(results)
    assert {name: result["repeat"] for name, result in best.items()} == {"a": 1, "b": 0}


PIXELS_IN = SavedLayer("InputLayer", {"batch_shape": [None, 784]})


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([SavedLayer("InputLayer", {"batch_shape": [None, 28, 28]})], "does not read the 784 pixels"),
        ([PIXELS_IN, SavedLayer("Flatten", {"name": "flat"})], r"flat layer \(Flatten\) is not one the page"),
        ([PIXELS_IN, SavedLayer("Dense", {"name": "out", "activation": "hard_sigmoid"},
                                (np.zeros((784, 10)), np.zeros(10)))], "activation 'hard_sigmoid' is not one"),
        ([PIXELS_IN, SavedLayer("Dense", {"name": "out", "activation": "relu"},
                                (np.zeros((784, 3)), np.zeros(3)))], "does not give the 10 outputs"),
    ],
    ids=["input", "layer", "activation", "outputs"],
)  # fmt: skip
def test_a_network_the_page_cannot_compute_says_why(layers, message):
    with pytest.raises(drawing.NotComputable, match=message):
        drawing.page_network(layers)


def test_batch_normalization_as_one_scale_and_shift_matches_keras_in_inference_mode():
    rng = np.random.default_rng(0)
    layer = keras.layers.BatchNormalization(epsilon=0.01)
    layer.build((None, 6))
    layer.set_weights([rng.uniform(0.5, 2, 6), rng.normal(size=6), rng.normal(size=6), rng.uniform(0.1, 3, 6)])
    saved = SavedLayer("BatchNormalization", layer.get_config(), tuple(layer.get_weights()))
    scale, shift = drawing.batch_norm_affine(saved)
    x = rng.normal(size=(4, 6)).astype("float32")
    expected = keras.ops.convert_to_numpy(layer(x, training=False))
    np.testing.assert_allclose(x * scale + shift, expected, atol=1e-5)


def test_a_network_with_the_techniques_is_computed_with_augmentation_as_the_identity(tmp_path):
    fields = {"hidden_units": [8], "augment": "standard", "batch_norm": True, "dropout": 0.1, "max_norm": 2}
    model = explorer.models.dense.dense_network(explorer.config.models.validate_config("m", fields))
    model.save(tmp_path / "m.keras")
    layers, _ = drawing.page_network(saved_layers(tmp_path / "m.keras"))
    assert [layer["kind"] for layer in layers] == ["dense", "affine", "activation", "dense"]


# --- A quick run of the default sweep, and the page ---------------------------------------------------


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """The default sweep's 13 configurations, --quick, one run each, on synthetic digits."""
    folder = tmp_path_factory.mktemp("default")
    (x_train, y_train), (x_test, y_test) = make_synthetic_digits(600, 1), make_synthetic_digits(200, 2)
    np.savez(folder / "digits.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    common.keras.utils.set_random_seed(0)
    argv = ["--quick", "--repeats", "1", "--data", str(folder / "digits.npz"), "--out", str(folder / "run")]
    assert model_builder_loop.main(argv) == 0
    return folder / "run"


def panel_inputs(run_dir, folders=None) -> drawing.PanelInputs:
    rows = json.loads((run_dir / "summary.json").read_text())
    folders = folders or {row["name"]: run_dir / row["name"] for row in rows}
    images, labels = make_synthetic_digits(200, 2)
    return drawing.PanelInputs(rows, folders, images, labels)


def page_data(panel: str) -> dict:
    start = panel.index('id="drawing-data">') + len('id="drawing-data">')
    return json.loads(panel[start : panel.index("</script>", start)])


def test_the_report_carries_every_default_network_in_leaderboard_order(default_run):
    page = (default_run / "report.html").read_text()
    data = page_data(page)
    rows = json.loads((default_run / "summary.json").read_text())
    assert [network["name"] for network in data["networks"]] == [row["name"] for row in rows]
    assert len(rows) == DEFAULT_NETWORKS and '<ul class="drawing-notes"></ul>' in page
    assert data["best"] == next(row["name"] for row in rows if row["vs_best"] == "best")
    _, labels = make_synthetic_digits(200, 2)
    wrong = np.load(default_run / data["best"] / "test_predictions.npy") != labels
    assert len(data["digits"]) == min(wrong.sum(), 40)


def test_networks_past_the_budget_are_left_out_with_a_note(default_run):
    inputs = panel_inputs(default_run)
    parameters = {row["name"]: row["parameters"] for row in inputs.rows}
    smallest = min(parameters.values())
    panel = drawing.drawing_panel(inputs, drawing.DrawingBudget(max_parameters=110_000, max_total=10**9))
    kept = [network["name"] for network in page_data(panel)["networks"]]
    # The best network is drawn whatever its size (a records network is past any budget a network).
    assert kept == [row["name"] for row in inputs.rows if row["parameters"] <= 110_000 or row["vs_best"] == "best"]
    left_out = [row for row in inputs.rows if row["parameters"] > 110_000 and row["vs_best"] != "best"]
    assert left_out and all(
        f"{row['name']}: left out, its {row['parameters']:,} parameters are past the page&#x27;s budget of 110,000 a network"
        in panel
        for row in left_out
    )
    panel = drawing.drawing_panel(inputs, drawing.DrawingBudget(max_parameters=10**9, max_total=smallest))
    assert len(page_data(panel)["networks"]) == 1
    assert panel.count("would take the page past its budget of") == DEFAULT_NETWORKS - 1


def test_a_missing_or_damaged_model_is_left_out_with_a_note(default_run, tmp_path):
    inputs = panel_inputs(default_run)
    folders = dict(inputs.folders)
    for name in ("dense_32_relu", "dense_64_relu"):
        shutil.copytree(folders[name], tmp_path / name)
        folders[name] = tmp_path / name
    (tmp_path / "dense_32_relu" / "model.keras").unlink()
    (tmp_path / "dense_64_relu" / "model.keras").write_bytes(b"not a zip file")
    panel = drawing.drawing_panel(panel_inputs(default_run, folders))
    assert len(page_data(panel)["networks"]) == DEFAULT_NETWORKS - 2
    assert "dense_32_relu: left out, model.keras cannot be read: [Errno 2]" in panel
    assert "dense_64_relu: left out, model.keras cannot be read: File is not a zip file" in panel


# --- In a real browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless Chromium for the module's page tests."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(NO_BROWSER)
    driver = headless_chromium(tmp_path_factory.mktemp("profile"), window="1300,1600")
    yield driver
    driver.quit()


def keras_outputs(model_path, pixels: np.ndarray) -> np.ndarray:
    model = keras.saving.load_model(model_path, compile=False)
    return model.predict(np.asarray(pixels, dtype="float32"), verbose=0)


@needs_browser
def test_the_page_makes_a_digit_as_mnist_digit_does(browser, default_run):
    browser.get((default_run / "report.html").as_uri())
    for name, image in hand_made_strokes().items():
        page = browser.execute_script(
            "return window.explorer.mnistDigit(arguments[0], arguments[1], arguments[2]);",
            image.ravel().tolist(), *image.shape,
        )  # fmt: skip
        np.testing.assert_allclose(np.reshape(page, (28, 28)), mnist_digit(image), atol=1e-3, err_msg=name)


@needs_browser
def test_the_page_computes_every_activation_a_configuration_allows(browser, default_run):
    browser.get((default_run / "report.html").as_uri())
    assert drawing.PAGE_ACTIVATIONS - {"softmax"} <= set(browser.execute_script("return window.explorer.activations;"))
    points = np.linspace(-7, 7, 141).tolist()
    erf = browser.execute_script("return arguments[0].map(window.explorer.erf);", points)
    np.testing.assert_allclose(erf, [math.erf(x) for x in points], atol=1e-7, rtol=0)


def draw_on_the_canvas(browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    canvas = browser.find_element(By.ID, "drawing-canvas")
    browser.execute_script("arguments[0].scrollIntoView();", canvas)
    strokes = ActionChains(browser).move_to_element_with_offset(canvas, -30, -90).click_and_hold()
    for dx, dy in ((40, -10), (30, 30), (-20, 60), (-50, 50), (70, 0)):  # a 2, roughly
        strokes = strokes.move_by_offset(dx, dy)
    strokes.release().perform()


@needs_browser
def test_a_digit_drawn_on_the_canvas_gets_every_network_s_answer(browser, default_run, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get((default_run / "report.html").as_uri())
    draw_on_the_canvas(browser)
    canvas = np.array(browser.execute_script("return window.explorer.canvasImage();")).reshape(280, 280)
    shown = np.array(browser.execute_script("return window.explorer.shown();"))
    assert canvas.max() == 1.0 and shown.max() > 0.5
    np.testing.assert_allclose(shown.reshape(28, 28), mnist_digit(canvas), atol=1e-3)
    rows = browser.find_elements(By.CSS_SELECTOR, "#drawing-answers tbody tr")
    assert len(rows) == DEFAULT_NETWORKS
    for row in rows:
        cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        assert all(0 <= float(value) <= 100 for value in cells[1:11]) and cells[11] in "0123456789", cells
    panel = browser.find_element(By.ID, "drawing")
    assert panel.screenshot(str(tmp_path / "drawing.png")) and (tmp_path / "drawing.png").stat().st_size > 0


def page_with_mistakes(run_dir, folder):
    """The panel of `run_dir` alone in a page in `folder`, its best network's test predictions all
    made wrong (a quick run on synthetic digits may get none wrong) so the page has test digits."""
    inputs = panel_inputs(run_dir)
    best = next(row["name"] for row in inputs.rows if row["vs_best"] == "best")
    shutil.copytree(run_dir / best, folder / best)
    np.save(folder / best / "test_predictions.npy", (inputs.test_labels + 1) % 10)
    panel = drawing.drawing_panel(panel_inputs(run_dir, {**inputs.folders, best: folder / best}))
    (folder / "page.html").write_text(
        f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>{panel}</body></html>'
    )
    return folder / "page.html", page_data(panel)


@needs_browser
def test_predict_in_the_page_equals_keras_predict_for_every_network(browser, default_run, tmp_path):
    from selenium.webdriver.common.by import By

    page, data = page_with_mistakes(default_run, tmp_path)
    browser.get(page.as_uri())
    button, digits = browser.find_element(By.ID, "drawing-test"), []
    for _ in range(3):  # the best network's mistakes, as "show me a test digit" shows them
        button.click()
        digits.append(browser.execute_script("return window.explorer.shown();"))
    first = np.frombuffer(base64.b64decode(data["digits"][0]["pixels"]), np.uint8)
    assert np.array_equal(np.round(np.array(digits[0]) * 255), first) and len(data["digits"]) == 40
    caption = browser.find_element(By.ID, "drawing-caption").text
    assert caption.startswith("A test digit: a ") and f"which {data['best']} took for a" in caption
    digits.append(mnist_digit(hand_made_strokes()["diagonal"]).ravel().tolist())
    answers = [browser.execute_script("return window.explorer.predict(arguments[0]);", digit) for digit in digits]
    assert all(len(answer) == DEFAULT_NETWORKS for answer in answers)
    for name in answers[0]:
        expected = keras_outputs(default_run / name / "model.keras", np.array(digits))
        np.testing.assert_allclose([answer[name] for answer in answers], expected, atol=1e-4, err_msg=name)


def zoo_network(name: str, activation: str, output: str, normalized: bool = False):
    """A small untrained network reading 784 pixels: two hidden layers of `activation` (Dropout
    between them; BatchNormalization and an Activation layer if `normalized`), random biases."""
    layers = [keras.Input((784,)), keras.layers.Dense(24, activation=activation), keras.layers.Dropout(0.3)]
    if normalized:
        layers += [keras.layers.BatchNormalization(epsilon=0.01), keras.layers.Activation(activation)]
    model = keras.Sequential([*layers, keras.layers.Dense(16, activation=activation),
                              keras.layers.Dense(10, activation=output)], name=name)  # fmt: skip
    rng = np.random.default_rng(len(name))
    model.set_weights([w * 3 if w.ndim == 2 else rng.uniform(0.2, 2, w.shape) for w in model.get_weights()])
    return model


@needs_browser
def test_predict_in_the_page_equals_keras_for_every_activation_and_layer_the_page_computes(browser, tmp_path):
    from selenium.webdriver.common.by import By

    zoo = [zoo_network(f"hidden_{name}", name, "softmax") for name in drawing.HIDDEN_ACTIVATIONS]
    zoo += [zoo_network(f"output_{name}", "relu", name) for name in drawing.OUTPUT_ACTIVATIONS]
    zoo += [
        zoo_network("normalized_tanh", "tanh", "softmax", normalized=True),
        zoo_network("left_out", "relu", "linear"),
    ]
    for model in zoo:
        (tmp_path / model.name).mkdir()
        model.save(tmp_path / model.name / "model.keras")
    images, labels = make_synthetic_digits(20, 3)
    rows = [{"name": model.name, "parameters": model.count_params()} for model in zoo]
    budget = drawing.DrawingBudget(max_total=sum(row["parameters"] for row in rows) - 1)  # all but the last
    inputs = drawing.PanelInputs(rows, {row["name"]: tmp_path / row["name"] for row in rows}, images, labels)
    (tmp_path / "page.html").write_text(f"<!DOCTYPE html><body>{drawing.drawing_panel(inputs, budget)}</body>")
    browser.get((tmp_path / "page.html").as_uri())
    pixels = images.reshape(len(images), -1) / 255
    answers = [browser.execute_script("return window.explorer.predict(arguments[0]);", row) for row in pixels.tolist()]
    assert set(answers[0]) == {model.name for model in zoo[:-1]}
    for model in zoo[:-1]:
        expected = model.predict(pixels.astype("float32"), verbose=0)
        np.testing.assert_allclose([answer[model.name] for answer in answers], expected, atol=1e-4, err_msg=model.name)
    note = browser.find_element(By.CSS_SELECTOR, ".drawing-notes").text
    assert (
        note
        == f"left_out: left out, its {zoo[-1].count_params():,} parameters would take the page past its budget of {budget.max_total:,} in all."
    )
