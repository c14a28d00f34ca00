"""`--resume RUN` continues a run as it was started: run.json records every setting, a resume takes
them, a setting given again must agree (except what may grow or what only concerns this invocation),
and a folder written before settings were recorded resumes as it always did."""

import json
import os
import re
from pathlib import Path

import pytest

import explorer.config.backend_choice
import explorer.store.folders
import model_builder_loop
from explorer.errors import UserInputError


def run_folder(tmp_path: Path, settings: object) -> Path:
    """A run folder whose run.json records `settings` (None: written before settings were)."""
    folder = tmp_path / "run"
    folder.mkdir()
    record = {"layout": explorer.store.folders.LAYOUT, "command": "python model_builder_loop.py", "started_at": "t"}
    if settings is not None:
        record["settings"] = settings
    (folder / "run.json").write_text(json.dumps(record))
    return folder


STARTED = {
    "data": None, "epochs": 4, "batch_size": None, "seed": 7, "validation_split": 0.1, "quick": False,
    "repeats": 3, "fuse": True, "reference": None, "backend": "jax", "search": False, "trials": None,
    "budget": None, "verify": None, "only": ["dense_32_relu", "softmax_regression"], "grid": None,
    "sample": None, "max_trials": 500, "config": None,
}  # fmt: skip


def test_resume_alone_takes_every_setting_the_run_was_started_with(tmp_path):
    folder = run_folder(tmp_path, STARTED)
    options, script = model_builder_loop.parse_args(["--resume", str(folder)])
    assert (options.epochs, options.seed, options.run_repeats) == (4, 7, 3)
    assert script["only"] == ("dense_32_relu", "softmax_regression")
    assert options.run_settings == STARTED  # recorded again, unchanged
    assert options.resume_command(folder).endswith(f"model_builder_loop.py --resume {folder}")


@pytest.mark.parametrize(
    ("given", "words"),
    [
        (["--epochs", "5"], "gives --epochs 5, but the run was started with --epochs 4"),
        (["--repeats", "2"], "with --repeats 3 (a resume may add runs, never remove them)"),
        (["--no-fuse"], "gives --no-fuse, but the run was started without --no-fuse"),
        (["--only", "dense_32_relu"], "started with --only dense_32_relu softmax_regression"),
        (["--seed", "42"], "gives --seed 42, but the run was started with --seed 7"),  # the default, typed
    ],
)
def test_a_setting_given_again_must_agree_with_the_run(tmp_path, given, words):
    folder = run_folder(tmp_path, STARTED)
    before = (folder / "run.json").read_bytes()
    with pytest.raises(UserInputError, match=re.escape(words)) as caught:
        model_builder_loop.parse_args(["--resume", str(folder), *given])
    assert "nothing in the folder was changed" in str(caught.value) and "\n" not in str(caught.value)
    assert (folder / "run.json").read_bytes() == before and sorted(os.listdir(folder)) == ["run.json"]


def test_repeats_may_grow_and_this_invocations_options_may_differ(tmp_path):
    folder = run_folder(tmp_path, STARTED)
    options, _ = model_builder_loop.parse_args(
        ["--resume", str(folder), "--repeats", "5", "--tensorboard", "--epochs", "4"]
    )
    assert (options.run_repeats, options.tensorboard, options.epochs) == (5, True, 4)
    assert options.run_settings["repeats"] == 5


def test_a_folder_written_before_settings_were_recorded_resumes_with_its_options_given_again(tmp_path):
    folder = run_folder(tmp_path, None)
    options, _ = model_builder_loop.parse_args(["--resume", str(folder), "--epochs", "2"])
    assert options.epochs == 2 and options.run_settings["epochs"] == 2  # recorded from now on


def test_damaged_settings_are_refused_in_one_line(tmp_path):
    folder = run_folder(tmp_path, {"epochs": {"nested": [1]}})
    with pytest.raises(UserInputError, match=r"run\.json is damaged"):
        model_builder_loop.parse_args(["--resume", str(folder)])


def test_paths_are_recorded_absolute_so_a_resume_from_another_folder_finds_them(tmp_path, monkeypatch):
    (tmp_path / "mine.toml").write_text("[a]\n")
    monkeypatch.chdir(tmp_path)
    options, _ = model_builder_loop.parse_args(["--config", "mine.toml", "--out", "run"])
    assert options.run_settings["config"] == str(tmp_path / "mine.toml")


def test_a_resumed_run_keeps_its_backend_unless_told_otherwise(tmp_path):
    folder = run_folder(tmp_path, {**STARTED, "backend": "tensorflow"})
    recorded = explorer.store.folders.recorded_backend(str(folder))
    environ = {"KERAS_BACKEND": "jax"}
    argv = ["--resume", str(folder)]
    assert explorer.config.backend_choice.resume_folder_in(argv) == str(folder)
    assert explorer.config.backend_choice.choose_backend(argv, environ, recorded=recorded) == "tensorflow"
    named = {"KERAS_BACKEND": "tensorflow"}
    assert explorer.config.backend_choice.choose_backend([*argv, "--backend", "jax"], named, recorded=recorded) == "jax"
