"""Fused training: models that share seed, batch size, epochs and optimizer train as branches of one
model, and each branch computes exactly what its model computes alone."""

import dataclasses
import json
import warnings

import numpy as np
import pytest

import common
import explorer.config.defaults
import explorer.config.models
import explorer.engine.callbacks
import explorer.engine.fusion
import explorer.engine.groups
import explorer.engine.training
import explorer.errors
import explorer.models.backend
import explorer.models.trials
import explorer.models.variants
import explorer.store.folders

from conftest import SYNTHETIC_TEST, SYNTHETIC_TRAIN, dense_trial, dense_variant, make_synthetic_digits, run_loop

pytestmark = pytest.mark.backend  # what this file checks depends on the backend: run on both

keras = common.keras

# Different widths, depths, dropout, output activations and losses; one seed, epochs, batch size.
BRANCHES = {
    "wide": {"hidden_units": [32], "epochs": 2, "batch_size": 64},
    "deep_dropout": {"hidden_units": [16, 16], "dropout": 0.2, "epochs": 2, "batch_size": 64},
    "sigmoid_out": {"hidden_units": [8], "output_activation": "sigmoid", "epochs": 2, "batch_size": 64},
    "regression": {"hidden_units": [], "epochs": 2, "batch_size": 64},
}


# The techniques, fused: one optimizer configuration (a warm-up-then-cosine schedule over the same
# steps, and weight decay), each branch with its own augmentation, normalisation, constraint or loss.
TECHNIQUE_BRANCHES = {
    "augmented": {"hidden_units": [32], "augment": "standard", "max_norm": 2.0},
    "normalised": {"hidden_units": [16, 16], "batch_norm": True, "dropout": 0.2},
    "smoothed": {"hidden_units": [8], "label_smoothing": 0.1, "output_activation": "linear"},
}
TECHNIQUE_BRANCHES = {
    name: {**fields, "lr_schedule": "warmup_cosine", "weight_decay": 0.01, "epochs": 2, "batch_size": 64}
    for name, fields in TECHNIQUE_BRANCHES.items()
}


def trials(seed=7, **overrides):
    return [dense_trial(name, {**fields, **overrides}, seed) for name, fields in BRANCHES.items()]


def train(group, data, folder):
    setup = explorer.engine.training.GroupSetup.in_folder(folder, group, verbose=0)
    return explorer.engine.groups.train_and_record(group, data, setup, [{}] * len(group))


def weights(model_dir):
    """A saved model's weights and then its optimizer's state (step count, moments)."""
    with warnings.catch_warnings():  # Keras only warns when a saved optimizer state does not fit
        warnings.filterwarnings("error", message="Skipping variable loading")
        model = keras.models.load_model(model_dir / "model.keras")
    return [np.asarray(w) for w in (*model.get_weights(), *model.optimizer.variables)]


@pytest.fixture(scope="module")
def data():
    train_digits, test_digits = make_synthetic_digits(SYNTHETIC_TRAIN, 1), make_synthetic_digits(SYNTHETIC_TEST, 2)
    return common.prepare_data(train_digits, test_digits, validation_split=0.1, seed=0)


@pytest.fixture(scope="module")
def fused_group(data, tmp_path_factory):
    """The four branches trained as one fused group (seed 7), once for the tests that read it."""
    group, folder = trials(), tmp_path_factory.mktemp("fused_group")
    common.keras.utils.set_random_seed(0)
    return group, train(group, data, folder), folder


def test_fused_branches_end_with_the_weights_of_models_trained_alone(tmp_path, data, fused_group):
    group, fused, fused_dir = fused_group
    for trial, together in zip(group, fused, strict=True):
        (alone,) = train([trial], data, tmp_path / "alone" / trial.folder)
        for fused_weight, alone_weight in zip(
            weights(fused_dir / trial.folder),
            weights(tmp_path / "alone" / trial.folder / trial.folder),
            strict=True,
        ):
            np.testing.assert_allclose(fused_weight, alone_weight, rtol=1e-4, atol=1e-6)
        for key in ("test_accuracy", "val_accuracy", "train_accuracy"):
            assert together[key] == pytest.approx(alone[key], abs=1e-6), (trial.folder, key)
        for key in ("test_loss", "val_loss", "train_loss"):
            assert together[key] == pytest.approx(alone[key], rel=1e-4), (trial.folder, key)
        assert together["fused_group_size"] == len(group) and alone["fused_group_size"] == 1
        assert together["epochs_run"] == alone["epochs_run"] == 2


def test_labels_given_once_train_the_branches_as_a_copy_per_branch_does(data):
    """The fused model takes one label array for all its branches (`fusion.FusedModel`, what the
    engine gives it); a dict with a copy per branch, Keras' own way, reaches the same weights and
    logs, bit for bit."""
    group = trials()
    reached = []
    for labels in (lambda y: y, lambda y: {trial.name: y for trial in group}):
        model = explorer.engine.fusion.fused_model(explorer.engine.training.build_members(group), 4)
        keras.utils.set_random_seed(3)  # the same shuffled batches for both
        history = model.fit(
            data.x_train,
            labels(data.y_train),
            validation_data=(data.x_val, labels(data.y_val)),
            epochs=2,
            batch_size=64,
            verbose=0,
        )
        reached.append(([np.asarray(weight) for weight in model.get_weights()], history.history))
    (once, once_logs), (copies, copies_logs) = reached
    assert len(once) == len(copies) > 0
    assert all(np.array_equal(a, b) for a, b in zip(once, copies, strict=True))
    assert_same_branch_logs(once_logs, copies_logs)
    assert f"val_{group[0].name}_accuracy" in once_logs


def assert_same_branch_logs(logs, expected):
    """Each branch's figures, which the engine records, are equal; the sum of the branches' losses,
    which it does not record, may differ in its last bits on TensorFlow (its graph may add them in
    another order)."""
    totals = ("loss", "val_loss")
    assert {key: logs[key] for key in logs if key not in totals} == {
        key: expected[key] for key in expected if key not in totals
    }
    for key in totals:
        np.testing.assert_allclose(logs[key], expected[key], rtol=1e-6)


def test_batches_run_in_one_compiled_call_reach_the_weights_of_one_call_per_batch(data):
    """On JAX a fused model that trains long enough runs each call's batches as one `lax.scan`
    (`keras_compat.steps_in_one_call`): full calls, and a last call whose smaller batch goes one
    step at a time; the weights and each branch's logs equal Keras' one call per batch, bit for
    bit. A short training keeps Keras' own loop."""
    group = trials()
    assert len(data.x_train) % 64 and -(-len(data.x_train) // 64) % 3 == 0  # 8 full batches and a smaller one
    reached = []
    long_enough = explorer.config.defaults.MIN_BATCHES_IN_ONE_CALL
    short = explorer.engine.fusion.fused_model(explorer.engine.training.build_members(group), 3, long_enough - 1)
    short.make_train_function()
    assert not getattr(short.train_function, "steps_in_one_call", False)  # too short to repay the compile
    for steps_per_execution in (3, 1):
        members = explorer.engine.training.build_members(group)
        model = explorer.engine.fusion.fused_model(members, steps_per_execution, long_enough)
        keras.utils.set_random_seed(3)
        history = model.fit(
            data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=2, batch_size=64, verbose=0
        )
        scanned = getattr(model.train_function, "steps_in_one_call", False)
        reached.append(([np.asarray(weight) for weight in model.get_weights()], history.history, scanned))
    (scan_weights, scan_logs, scanned), (step_weights, step_logs, stepped) = reached
    assert scanned == (keras.backend.backend() == "jax") and not stepped
    assert all(np.array_equal(a, b) for a, b in zip(scan_weights, step_weights, strict=True))
    assert_same_branch_logs(scan_logs, step_logs)


def test_a_diverging_branch_stops_alone_and_leaves_the_others_untouched(tmp_path, data, fused_group):
    group, reference, _ = fused_group

    def blowing_up():
        model = group[0].variant.build()
        # Multiplying by infinity turns this branch's loss NaN from the first batch.
        blown = keras.Sequential(
            [keras.Input(shape=(784,)), *model.layers, keras.layers.Lambda(lambda x: x * np.inf)], name="wide"
        )
        blown.compile(optimizer=keras.optimizers.Adam(), loss=model.loss)
        return blown

    variant = dataclasses.replace(group[0].variant, build=blowing_up)
    poisoned_group = [
        explorer.models.trials.Trial(variant, explorer.models.variants.inspect_variant(variant), group[0].seed),
        *group[1:],
    ]
    poisoned = train(poisoned_group, data, tmp_path / "poisoned")

    assert poisoned[0]["status"] == "diverged" and poisoned[0]["epochs_run"] == 1
    assert "loss became nan in epoch 0" in poisoned[0]["reason"]
    for healthy, expected in zip(poisoned[1:], reference[1:], strict=True):
        assert healthy["status"] == "ok" and healthy["epochs_run"] == 2
        assert healthy["test_loss"] == pytest.approx(expected["test_loss"], rel=1e-5)


def test_plan_groups_fuses_trials_with_the_same_key_in_plan_order():
    variants = [
        dense_variant("a"),
        dense_variant("b", {"batch_size": 32}),
        dense_variant("c", {"hidden_units": [8]}),
        dense_variant("d", {"learning_rate": 0.01}),
    ]
    planned = explorer.models.trials.plan_trials(variants, seed=1, repeats=2)
    groups = explorer.models.trials.plan_groups(planned, fuse=True)
    folders = [[trial.folder for trial in group] for group in groups]
    seed = explorer.models.trials.repeat_seed(1, 1)
    assert folders == [
        ["a", "c"],
        [f"a@seed{seed}", f"c@seed{seed}"],
        ["b"],
        [f"b@seed{seed}"],
        ["d"],
        [f"d@seed{seed}"],
    ]
    assert explorer.models.trials.plan_groups(planned, fuse=False) == [[trial] for trial in planned]
    capped = explorer.models.trials.plan_groups(
        explorer.models.trials.plan_trials(variants[:1] + variants[2:3], 1), fuse=True, max_size=1
    )
    assert [len(group) for group in capped] == [1, 1]


def test_a_group_needs_one_fusion_key(tmp_path, data):
    mixed = [trials()[0], dense_trial("other", {"epochs": 3}, 7)]
    with pytest.raises(ValueError, match="a fused group needs one seed, batch size, epochs"):
        train(mixed, data, tmp_path)


@pytest.fixture(scope="module", params=["plain", "techniques"])
def fused_sweep(request, tmp_path_factory):
    """The plain branches, or those with the techniques, as a sweep (fused, uninterrupted), once
    for the tests that read it; its folder, the arguments that made it (without --out) and its
    branches."""
    branches = BRANCHES if request.param == "plain" else TECHNIQUE_BRANCHES
    folder = tmp_path_factory.mktemp("fused_sweep")
    lines = []
    for name, fields in branches.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in fields.items())
    (folder / "sweep.toml").write_text("\n".join(lines) + "\n")
    (x_train, y_train), (x_test, y_test) = (
        make_synthetic_digits(SYNTHETIC_TRAIN, 1),
        make_synthetic_digits(SYNTHETIC_TEST, 2),
    )
    np.savez(folder / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    arguments = ["--config", folder / "sweep.toml", "--data", folder / "mnist.npz"]
    common.keras.utils.set_random_seed(0)
    assert run_loop(*arguments, "--out", folder / "run") == 0
    return folder / "run", arguments, branches


def test_fused_and_unfused_sweeps_give_the_same_files_and_numbers(tmp_path, fused_sweep):
    fused_run, arguments, branches = fused_sweep
    assert run_loop(*arguments, "--out", tmp_path / "alone", "--no-fuse") == 0
    assert not (fused_run / explorer.store.folders.FUSED_FOLDER).exists() or not any(
        (fused_run / explorer.store.folders.FUSED_FOLDER).iterdir()
    )
    for name in branches:
        fused_dir, alone_dir = fused_run / name, tmp_path / "alone" / name
        assert sorted(p.name for p in fused_dir.iterdir()) == sorted(p.name for p in alone_dir.iterdir())
        fused, alone = (json.loads((folder / "result.json").read_text()) for folder in (fused_dir, alone_dir))
        assert set(fused) == set(alone)
        assert fused["fused_group"] is not None and alone["fused_group"] is None
        assert fused["fused_group_size"] == len(branches) and fused["config"] == alone["config"]
        assert (
            fused["steps_per_execution"] == explorer.config.defaults.STEPS_PER_EXECUTION
            and fused["backend"] == keras.backend.backend()
        )
        assert fused["device"] == alone["device"] == explorer.models.backend.device_description()
        assert fused["device"] == "cpu" or fused["device"].startswith("gpu: ")
        assert fused["test_loss"] == pytest.approx(alone["test_loss"], rel=1e-4)
        np.testing.assert_array_equal(
            np.load(fused_dir / "test_predictions.npy"), np.load(alone_dir / "test_predictions.npy")
        )


def test_an_interrupted_fused_group_resumes_from_its_checkpoint(tmp_path, fused_sweep, monkeypatch, capsys):
    whole_run, arguments, branches = fused_sweep
    save = explorer.engine.callbacks.EpochBackupAndRestore.on_epoch_end

    def interrupted_after_the_first_epoch(self, epoch, logs=None):
        save(self, epoch, logs)
        raise KeyboardInterrupt

    monkeypatch.setattr(
        explorer.engine.callbacks.EpochBackupAndRestore, "on_epoch_end", interrupted_after_the_first_epoch
    )
    assert run_loop(*arguments, "--out", tmp_path / "cut") == explorer.errors.EXIT_INTERRUPTED
    assert list((tmp_path / "cut" / explorer.store.folders.FUSED_FOLDER).iterdir())  # the group's checkpoint is kept
    monkeypatch.setattr(explorer.engine.callbacks.EpochBackupAndRestore, "on_epoch_end", save)
    capsys.readouterr()
    assert run_loop(*arguments, "--resume", tmp_path / "cut") == 0
    assert capsys.readouterr().out.count(", from its checkpoint") == len(branches)
    for name in branches:
        whole, cut = (json.loads((run / name / "result.json").read_text()) for run in (whole_run, tmp_path / "cut"))
        assert cut["resumed_from_epoch"] == 1 and cut["epochs_run"] == 2
        assert cut["test_loss"] == pytest.approx(whole["test_loss"], rel=1e-5)
        history = common.read_history(tmp_path / "cut" / name / "history.csv")
        assert history["val_loss"] == pytest.approx(
            common.read_history(whole_run / name / "history.csv")["val_loss"], rel=1e-5
        )
        # The schedule went on from the step the checkpoint kept: the optimizer ends on the same step.
        whole_model, cut_model = (
            keras.models.load_model(run / name / "model.keras") for run in (whole_run, tmp_path / "cut")
        )
        assert int(cut_model.optimizer.iterations) == int(whole_model.optimizer.iterations) > 0
        np.testing.assert_allclose(
            float(cut_model.optimizer.learning_rate), float(whole_model.optimizer.learning_rate), rtol=1e-6
        )


def test_only_models_with_one_optimizer_configuration_and_distinct_weights_fuse():
    def adam(beta_1=0.9, model_name=None, layer_name=None):
        def build():
            model = keras.Sequential(
                [keras.Input(shape=(784,)), keras.layers.Dense(10, activation="softmax", name=layer_name)],
                name=model_name,
            )
            model.compile(optimizer=keras.optimizers.Adam(beta_1=beta_1), loss="categorical_crossentropy")
            return model

        return build

    variants = [
        common.Variant("a", adam()),
        common.Variant("b", adam()),
        common.Variant("other_beta", adam(beta_1=0.5)),  # another optimizer configuration: alone
        common.Variant("same_paths_1", adam(model_name="twin", layer_name="out")),
        common.Variant("same_paths_2", adam(model_name="twin", layer_name="out")),  # its weights' paths are taken
    ]
    groups = explorer.models.trials.plan_groups(explorer.models.trials.plan_trials(variants, seed=1), fuse=True)
    assert [[trial.name for trial in group] for group in groups] == [
        ["a", "b", "same_paths_1"],
        ["other_beta"],
        ["same_paths_2"],
    ]


def test_a_noted_ctrl_c_stops_the_group_before_its_next_compiled_call(data, tmp_path):
    # A press whose KeyboardInterrupt Python dropped (raised in XLA's garbage-collection callback)
    # is only noted; the group used to train on to its last epoch before anyone looked.
    group = trials()
    pressed = []

    class PressedAfterTheFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            pressed.append(epoch)

    setup = explorer.engine.training.GroupSetup.in_folder(
        tmp_path, group, verbose=0, callbacks=[PressedAfterTheFirstEpoch()], stop_requested=lambda: bool(pressed)
    )
    with pytest.raises(KeyboardInterrupt):
        explorer.engine.training.train_group(group, data, setup)
    assert pressed == [0]  # the second epoch never ended
    for trial in group:
        assert len(common.read_history(tmp_path / trial.folder / "history.csv")["loss"]) == 1
