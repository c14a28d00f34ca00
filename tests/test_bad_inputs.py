"""A corpus of bad inputs: each one exits with code 2 and one line naming the value and what is
allowed, never a traceback; and a property test feeding generated TOML to the validator."""

import gzip
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import common
import explorer.config.models
import explorer.errors
import explorer.models.dense
import explorer.models.variants
import model_builder_loop

from conftest import idx_bytes, make_synthetic_digits, write_idx, write_official_folder

QUICK = ["--quick", "--only", "softmax_regression"]

# (id, TOML text, words the message must contain)
BAD_CONFIGS = [
    (
        "unknown-field",
        "[m]\nactivaton = 'relu'\n",
        ["config 'm'", "unknown field 'activaton'", "did you mean 'activation'"],
    ),
    ("units-not-a-list", "[m]\nhidden_units = '128'\n", ["hidden_units = '128'", "a list of up to 32"]),
    ("zero-width", "[m]\nhidden_units = [0]\n", ["hidden_units contains 0", "from 1 to 16,384"]),
    ("negative-width", "[m]\nhidden_units = [128, -4]\n", ["hidden_units contains -4"]),
    ("absurd-width", "[m]\nhidden_units = [10000000]\n", ["hidden_units contains 10000000", "16,384"]),
    ("bool-width", "[m]\nhidden_units = [true]\n", ["hidden_units contains True"]),
    ("float-width", "[m]\nhidden_units = [64.5]\n", ["hidden_units contains 64.5"]),
    ("too-deep", "[m]\nhidden_units = [8" + ", 8" * 32 + "]\n", ["a list of up to 32 layer widths"]),
    (
        "unknown-activation",
        "[m]\nactivation = 'rellu'\n",
        ["activation 'rellu' is unknown", "did you mean 'relu'", "allowed: relu"],
    ),
    (
        "activation-per-layer-count",
        "[m]\nhidden_units = [8, 8]\nactivation = ['relu']\n",
        ["one name for all layers or a list of 2"],
    ),
    ("activation-not-text", "[m]\nactivation = 3\n", ["activation 3 is unknown", "allowed: relu"]),
    (
        "unknown-output",
        "[m]\noutput_activation = 'relu'\n",
        ["output_activation 'relu' is unknown", "softmax, linear, sigmoid"],
    ),
    ("unknown-optimizer", "[m]\noptimizer = 'addam'\n", ["optimizer 'addam' is unknown", "did you mean 'adam'"]),
    ("unknown-loss", "[m]\nloss = 'hinge'\n", ["loss 'hinge' is unknown", "allowed: auto"]),
    ("zero-learning-rate", "[m]\nlearning_rate = 0\n", ["learning_rate = 0 is not allowed", "positive finite"]),
    ("negative-learning-rate", "[m]\nlearning_rate = -0.1\n", ["learning_rate = -0.1"]),
    ("nan-learning-rate", "[m]\nlearning_rate = nan\n", ["learning_rate = nan"]),
    ("inf-learning-rate", "[m]\nlearning_rate = inf\n", ["learning_rate = inf"]),
    ("text-learning-rate", "[m]\nlearning_rate = 'fast'\n", ["learning_rate = 'fast'"]),
    ("zero-epochs", "[m]\nepochs = 0\n", ["epochs = 0 is not allowed", "from 1 to 1,000"]),
    ("absurd-epochs", "[m]\nepochs = 100000\n", ["epochs = 100000"]),
    ("fractional-epochs", "[m]\nepochs = 2.5\n", ["epochs = 2.5"]),
    ("zero-batch", "[m]\nbatch_size = 0\n", ["batch_size = 0", "from 1 to 65,536"]),
    ("text-batch", "[m]\nbatch_size = 'big'\n", ["batch_size = 'big'"]),
    ("dropout-one", "[m]\ndropout = 1.0\n", ["dropout = 1.0", "up to but not including 1"]),
    ("dropout-negative", "[m]\ndropout = -0.2\n", ["dropout = -0.2"]),
    ("augment-unknown-preset", "[m]\naugment = 'heavy'\n", ["augment = 'heavy' is not allowed", "'light', 'standard'"]),
    ("augment-unknown-amount", "[m]\naugment = {rotate = 5}\n", ["unknown amount 'rotate'", "rotation, shift, zoom"]),
    ("augment-too-much", "[m]\naugment = {rotation = 90}\n", ["augment rotation = 90", "from 0 to 45"]),
    ("augment-empty", "[m]\naugment = {}\n", ["augment = {} is not allowed", "a table of amounts"]),
    ("batch-norm-not-boolean", "[m]\nbatch_norm = 'yes'\n", ["batch_norm = 'yes'", "true or false"]),
    ("label-smoothing-one", "[m]\nlabel_smoothing = 1\n", ["label_smoothing = 1", "up to but not including 1"]),
    (
        "label-smoothing-with-mse",
        "[m]\nloss = 'mean_squared_error'\nlabel_smoothing = 0.1\n",
        ["label_smoothing = 0.1 needs a cross-entropy loss", "mean_squared_error has none"],
    ),
    (
        "unknown-schedule",
        "[m]\nlr_schedule = 'step'\n",
        ["lr_schedule 'step' is unknown", "constant, cosine, warmup_cosine"],
    ),
    ("negative-weight-decay", "[m]\nweight_decay = -0.01\n", ["weight_decay = -0.01", "from 0 (no decay)"]),
    ("max-norm-negative", "[m]\nmax_norm = -3\n", ["max_norm = -3", "0 (none) or a positive number"]),
    ("max-norm-infinite", "[m]\nmax_norm = inf\n", ["max_norm = inf"]),
    ("early-stopping-fraction", "[m]\nearly_stopping = 2.5\n", ["early_stopping = 2.5", "0 (off)"]),
    ("early-stopping-negative", "[m]\nearly_stopping = -1\n", ["early_stopping = -1"]),
    ("name-parent-path", '["../x"]\nhidden_units = [8]\n', ["configuration name '../x' is not allowed", "folder name"]),
    ("name-absolute-path", '["/etc"]\nhidden_units = [8]\n', ["configuration name '/etc' is not allowed"]),
    ("name-empty", '[""]\nhidden_units = [8]\n', ["configuration name '' is not allowed"]),
    ("name-with-space", '["my model"]\nhidden_units = [8]\n', ["configuration name 'my model' is not allowed"]),
    ("name-case-duplicate", "[Wide]\n[wide]\n", ["'Wide' and 'wide' differ only in case"]),
    ("name-reserved", '["CON"]\nhidden_units = [8]\n', ["configuration name 'CON' is not allowed", "device name"]),
    ("name-trailing-dot", '["model."]\nhidden_units = [8]\n', ["configuration name 'model.' is not allowed"]),
    (
        "too-big-for-memory",
        "[huge]\nhidden_units = [" + ", ".join(["16384"] * 32) + "]\n",
        ["config 'huge': needs about", "GiB to train", "cannot fit in this machine's"],
    ),
    ("huge-value", "[m]\nactivation = '" + "r" * 100_000 + "'\n", ["activation 'rrrr", "(100,002 characters)"]),
    ("duplicate-table", "[m]\nepochs = 1\n[m]\nepochs = 2\n", ["TOML syntax error", "line 3"]),
    ("toml-syntax", "[m]\nhidden_units = [64\nepochs = 3\n", ["TOML syntax error", "line 3"]),
    ("top-level-value", "epochs = 3\n", ["'epochs' must be a table of fields"]),
    ("nested-table", "[m.inner]\nepochs = 1\n", ["config 'm'", "unknown field 'inner'"]),
    ("empty-file", "", ["no configurations found"]),
]


def run_main(argv, capsys):
    """Run the loop script's main() as the command line would; return (exit code, stderr)."""
    try:
        code = model_builder_loop.main([str(argument) for argument in argv])
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    return code, capsys.readouterr().err


def assert_one_line_error(code, err, words):
    assert code == explorer.errors.EXIT_BAD_INPUT
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"


# Grids, in a file: (id, TOML text, words the message must contain).
BAD_GRIDS = [
    ("grid-empty-list", "[grid.g]\nactivation = []\n", ["grid 'g'", "activation = [] lists no values"]),
    ("grid-unknown-field", "[grid.g]\nactivaton = ['relu']\n", ["grid 'g'", "unknown field 'activaton'"]),
    ("grid-wrong-type", "[grid.g]\nactivation = ['relu', 7]\n", ["config 'g-7'", "activation 7 is unknown"]),
    ("grid-flat-units", "[grid.g]\nhidden_units = [64, 128]\n", ["hidden_units = [64, 128]", "[[64], [128, 128]]"]),
    ("grid-not-tables", "grid = 3\n", ["'grid' must be a table"]),
    (
        "grid-too-big",
        "[grid.g]\nhidden_units = [" + ", ".join(f"[{n}]" for n in range(1, 30)) + "]\n"
        "learning_rate = [" + ", ".join(f"0.00{n}" for n in range(1, 10)) + "]\n"
        "batch_size = [16, 32]\n",
        ["522 configurations, over the limit of 500", "--sample N", "--max-trials"],
    ),
    (
        "grid-collision",
        "[grid.g]\nactivation = ['relu', 'relu']\n",
        ["two configurations would both be named 'g-relu'"],
    ),
    ("grid-name-taken", "[g-relu]\n[grid.g]\nactivation = ['relu', 'tanh']\n", ["'g-relu' has the name of a"]),
]
BAD_CONFIGS += BAD_GRIDS
BAD_SEARCHES = [
    ("search-backwards", "[search.s]\nwidth = {low = 64, high = 8}\n", ["search 's'", "low below high"]),
    ("search-bad-choice", "[search.s]\nactivation = ['relu', 'relux']\n", ["search 's'", "activation 'relux'"]),
    ("search-two", "[search.a]\nwidth = [8]\n[search.b]\nwidth = [8]\n", ["one [search.NAME] table, got 2"]),
    ("search-unflagged", "[search.s]\nwidth = [8, 16]\n", ["hold a search ([search.s])", "run it with --search"]),
]
BAD_CONFIGS += BAD_SEARCHES


@pytest.mark.parametrize(("toml", "words"), [case[1:] for case in BAD_CONFIGS], ids=[case[0] for case in BAD_CONFIGS])
def test_bad_configuration_files(tmp_path, synthetic_npz, capsys, toml, words):
    config = tmp_path / "sweep.toml"
    config.write_text(toml)
    code, err = run_main(["--config", config, "--data", synthetic_npz, "--out", tmp_path / "run"], capsys)
    assert_one_line_error(code, err, words)
    assert not (tmp_path / "run").exists()


def test_a_missing_configuration_file(tmp_path, synthetic_npz, capsys):
    code, err = run_main(["--config", tmp_path / "nope.toml", "--data", synthetic_npz], capsys)
    assert_one_line_error(code, err, ["--config", "nope.toml: cannot read"])


BAD_COMMAND_LINES = [
    (
        "only-unknown",
        ["--only", "dense_128_rellu"],
        ["--only 'dense_128_rellu'", "did you mean 'dense_128_relu'", "valid names:"],
    ),
    ("epochs-zero", ["--epochs", "0"], ["--epochs", "0 is out of range", "1-1,000"]),
    ("epochs-text", ["--epochs", "abc"], ["--epochs", "'abc' is not a whole number"]),
    ("batch-scientific", ["--batch-size", "1e9"], ["--batch-size", "'1e9' is not a whole number"]),
    ("seed-negative", ["--seed", "-1"], ["--seed", "-1 is out of range"]),
    ("split-zero", ["--validation-split", "0"], ["--validation-split", "0.0 is out of range", "between 0 and 1"]),
    ("split-text", ["--validation-split", "ten"], ["--validation-split", "'ten' is not a number"]),
    ("backend-unknown", ["--backend", "torch"], ["backend 'torch' is not supported", "jax, tensorflow"]),
    ("unknown-option", ["--frobnicate"], ["unrecognized arguments: --frobnicate (see"]),
    # No abbreviations: `--epoch 2` was taken as --epochs; a mistyped option gets "did you mean".
    ("abbreviated", ["--epoch", "3"], ["unrecognized arguments: --epoch 3; did you mean --epochs?"]),
    ("mistyped", ["--epocs", "3"], ["unrecognized arguments: --epocs 3; did you mean --epochs?"]),
    ("backend-abbreviated", ["--back", "tensorflow"], ["--back tensorflow; did you mean --backend?"]),
    ("out-and-resume", ["--out", "a", "--resume", "b"], ["--resume", "not allowed with argument --out"]),
    ("grid-no-equals", ["--grid", "activation"], ["--grid 'activation'", "expected FIELD=VALUE,VALUE"]),
    ("grid-no-values", ["--grid", "activation="], ["--grid 'activation='", "no values after '='"]),
    ("grid-twice", ["--grid", "activation=relu", "activation=tanh"], ["field 'activation' is given twice"]),
    ("sample-too-many", ["--grid", "activation=relu,tanh", "--sample", "3"], ["--sample 3", "from 1 to 2"]),
    ("sample-zero", ["--grid", "activation=relu,tanh", "--sample", "0"], ["--sample 0", "from 1 to 2"]),
    ("sample-without-grid", ["--sample", "2"], ["--sample 2", "needs a grid"]),
    ("search-no-table", ["--search"], ["--search needs a [search.NAME] table"]),
    ("budget-without-search", ["--budget", "5m"], ["--budget: only with --search"]),
    ("budget-bad", ["--search", "--budget", "5x"], ["--budget", "'5x' is not a duration"]),
    ("trials-zero", ["--search", "--trials", "0"], ["--trials", "0 is out of range"]),
    ("compare-not-runs", ["--compare", "nowhere", "elsewhere"], ["--compare nowhere: not a run folder"]),
    ("compare-one-run", ["--compare", "nowhere"], ["--compare needs at least two run folders"]),
    (
        "reference-unknown",
        ["--reference", "dense_128_rellu"],
        ["--reference 'dense_128_rellu' is not a configuration of this sweep", "valid names: dense_32_relu"],
    ),
]


@pytest.mark.parametrize(
    ("argv", "words"), [case[1:] for case in BAD_COMMAND_LINES], ids=[c[0] for c in BAD_COMMAND_LINES]
)
def test_bad_command_lines(tmp_path, synthetic_npz, capsys, argv, words):
    code, err = run_main([*argv, "--data", synthetic_npz], capsys)
    assert_one_line_error(code, err, words)


def test_an_output_folder_that_cannot_be_written(tmp_path, synthetic_npz, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, err = run_main([*QUICK, "--data", synthetic_npz, "--out", blocker / "run"], capsys)
    assert_one_line_error(code, err, ["--out", "a-file is a file, so no folder can be made there"])


def test_resuming_a_folder_that_does_not_exist(tmp_path, synthetic_npz, capsys):
    code, err = run_main([*QUICK, "--data", synthetic_npz, "--resume", tmp_path / "gone"], capsys)
    assert_one_line_error(code, err, ["--resume", "gone: no such run folder"])


def _official_folder(tmp_path, synthetic_mnist):
    return write_official_folder(tmp_path / "mnist", synthetic_mnist)


def _npz(tmp_path, name="bad.npz", **overrides):
    (x_train, y_train), (x_test, y_test) = make_synthetic_digits(60, 1), make_synthetic_digits(20, 2)
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test, **overrides}
    path = tmp_path / name
    np.savez(path, **{key: value for key, value in arrays.items() if value is not None})
    return path


def _data_missing_folder(tmp_path, _):
    return tmp_path / "no-such-folder", ["no-such-folder: no such file or folder"]


def _data_missing_files(tmp_path, _):
    folder = tmp_path / "half"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8))
    return folder, ["missing train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz", "gzipped or not"]


def _data_wrong_md5(tmp_path, synthetic_mnist):
    return _official_folder(tmp_path, synthetic_mnist), ["train-images-idx3-ubyte.gz: corrupt file", "6bbc9ace"]


def _data_truncated_gzip(tmp_path, synthetic_mnist):
    folder = _official_folder(tmp_path, synthetic_mnist)
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-30])
    return folder, ["train-images-idx3-ubyte.gz: truncated gzip file"]


def _data_not_npz(tmp_path, _):
    path = tmp_path / "digits.npz"
    path.write_text("x_train,y_train\n1,2\n")
    return path, ["digits.npz: not an .npz archive"]


def _data_wrong_suffix(tmp_path, _):
    path = tmp_path / "digits.csv"
    path.write_text("1,2\n")
    return path, ["expected a folder of MNIST IDX files or an .npz file, got a .csv file"]


def _data_pickle(tmp_path, _):
    return _npz(tmp_path, y_test=np.array([{"label": 1}], dtype=object)), ["pickled object arrays, which are refused"]


def _data_missing_array(tmp_path, _):
    return _npz(tmp_path, x_test=None), ["missing arrays x_test"]


def _data_count_mismatch(tmp_path, _):
    return _npz(tmp_path, y_train=np.zeros(59, np.uint8)), ["60 train images but 59 train labels"]


def _data_labels_out_of_range(tmp_path, _):
    return _npz(tmp_path, y_train=np.full(60, 10, np.uint8)), ["train labels range from 10 to 10, allowed 0-9"]


def _data_flat_images(tmp_path, _):
    return _npz(tmp_path, x_train=np.zeros((60, 784), np.uint8)), [
        "train images have shape (60, 784), expected (N, 28, 28)"
    ]


def _data_float_pixels(tmp_path, _):
    return _npz(tmp_path, x_test=np.zeros((20, 28, 28), np.float32)), ["test pixel values have dtype float32"]


def _data_float_idx_under_official_name(tmp_path, synthetic_mnist):
    folder = _official_folder(tmp_path, synthetic_mnist)
    (folder / "train-images-idx3-ubyte.gz").unlink()
    raw = bytearray(idx_bytes(np.zeros((2, 28, 28), np.uint8)))
    raw[2] = 0x0D  # float data type
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    return folder, ["train-images-idx3-ubyte.gz: corrupt file"]


BAD_DATA = [
    _data_missing_folder, _data_missing_files, _data_wrong_md5, _data_truncated_gzip, _data_not_npz,
    _data_wrong_suffix, _data_pickle, _data_missing_array, _data_count_mismatch, _data_labels_out_of_range,
    _data_flat_images, _data_float_pixels, _data_float_idx_under_official_name,
]  # fmt: skip


@pytest.mark.parametrize("make_bad_data", BAD_DATA, ids=[maker.__name__[6:] for maker in BAD_DATA])
def test_bad_data(tmp_path, synthetic_mnist, capsys, make_bad_data):
    path, words = make_bad_data(tmp_path, synthetic_mnist)
    code, err = run_main([*QUICK, "--data", path, "--out", tmp_path / "run"], capsys)
    assert_one_line_error(code, err, words)
    assert not (tmp_path / "run").exists()  # an explicit --data that fails never falls back


# ---------------------------------------------------------------------------------------------
# Property: generated TOML either validates (and the model builds) or is refused in one line.

scalars = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(
        explorer.config.models.HIDDEN_ACTIVATIONS
        + explorer.config.models.OUTPUT_ACTIVATIONS
        + explorer.config.models.OPTIMIZERS
        + explorer.config.models.LOSSES
    ),
)
values = st.one_of(
    scalars,
    st.lists(st.one_of(st.integers(-5, 600), st.sampled_from(explorer.config.models.HIDDEN_ACTIVATIONS)), max_size=4),
)
fields = st.dictionaries(
    st.sampled_from((*explorer.config.models.CONFIG_FIELDS, "activaton", "units", "name")), values, max_size=6
)
names = st.one_of(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), st.text(max_size=8))


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(value)  # integers, finite floats and strings are spelled the same in TOML


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(configs=st.dictionaries(names, fields, min_size=1, max_size=3))
def test_generated_toml_is_accepted_or_refused_in_one_line(tmp_path, configs):
    text = "".join(
        f"[{json.dumps(name)}]\n" + "".join(f"{key} = {toml_value(value)}\n" for key, value in table.items())
        for name, table in configs.items()
    )
    path = tmp_path / "generated.toml"
    path.write_text(text)
    try:
        validated = common.validate_configs(common.load_toml_configs(path))
    except explorer.errors.ConfigError as error:
        assert "\n" not in str(error) and str(error)
        return
    for config in validated:
        model = explorer.models.dense.dense_network(config)
        assert model.count_params() > 0 and model.name == config.name
