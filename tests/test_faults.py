"""Faults found by a hostile user: a locked run folder, damaged files, interrupted start-up and
summaries, odd encodings, leftovers of a failed fused group. Each gives one line, never a
traceback, and loses nothing."""

import json
import signal
import subprocess
import sys

import pytest

import common
import explorer.engine.callbacks
import explorer.engine.interrupts
import explorer.engine.sweep
import explorer.errors
import explorer.store.files
import explorer.store.folders
import explorer.store.schema
import explorer.store.trial_folder

from conftest import PROJECT_ROOT, TWO_MODELS, run_loop


def one_line(capsys) -> str:
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ") and "Traceback" not in error, error
    return error


def test_a_second_sweep_into_a_locked_run_folder_is_refused_naming_the_holder(finished_run, capsys):
    run_dir, arguments = finished_run
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.path.insert(0, '.'); import explorer.store.files as f; "
         f"lock = f.lock_run_dir(__import__('pathlib').Path({str(run_dir)!r}), '--resume'); "
         "print('locked', flush=True); time.sleep(60)"],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert run_loop(*arguments, "--resume", run_dir) == explorer.errors.EXIT_BAD_INPUT
        assert f"another sweep (pid {holder.pid}) is writing to this run folder" in one_line(capsys)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The killed holder's lock is gone with it: nothing stale blocks the next resume.
    assert run_loop(*arguments, "--resume", run_dir) == 0


def test_a_damaged_run_record_is_kept_aside_not_overwritten(finished_run, capsys):
    run_dir, arguments = finished_run
    (run_dir / "run.json").write_text('{"layout": 2, "command": "python model_bui')  # cut short
    assert run_loop(*arguments, "--resume", run_dir) == 0
    (aside,) = run_dir.glob("run.json.damaged-*")
    assert aside.read_text().endswith("model_bui") and "kept as run.json.damaged-" in capsys.readouterr().out
    assert json.loads((run_dir / "run.json").read_text())["layout"] == 2


def test_a_model_folder_that_cannot_be_written_is_one_line(finished_run, monkeypatch, capsys):
    run_dir, arguments = finished_run
    (run_dir / "second" / "result.json").unlink()  # second must train again, into its folder
    write_json_atomic = explorer.store.files.write_json_atomic

    def read_only_trial_json(path, record):
        if path.name == "trial.json":
            raise PermissionError(13, "Permission denied", str(path))
        write_json_atomic(path, record)

    monkeypatch.setattr(explorer.store.trial_folder, "write_json_atomic", read_only_trial_json)
    assert run_loop(*arguments, "--resume", run_dir) == explorer.errors.EXIT_BAD_INPUT
    assert "second: cannot write there (Permission denied)" in one_line(capsys)


def test_ctrl_c_during_start_up_is_one_line_and_exit_130(tmp_path, synthetic_npz, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(explorer.engine.sweep, "load_prepared", interrupted)
    code = run_loop("--quick", "--only", "softmax_regression", "--data", synthetic_npz, "--out", tmp_path / "run")
    assert code == explorer.errors.EXIT_INTERRUPTED
    assert "Interrupted before training started; nothing was trained." in capsys.readouterr().out
    assert not (tmp_path / "run").exists()


# The views, and the moment after timings.json, when the failed models are counted (a traceback before).
@pytest.mark.parametrize("moment", ["build_views", "read_results"])
def test_ctrl_c_while_summarizing_keeps_the_models_and_shows_the_resume_command(
    tmp_path, synthetic_npz, monkeypatch, capsys, moment
):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(explorer.engine.sweep, moment, interrupted)
    arguments = ["--quick", "--only", "softmax_regression", "--data", synthetic_npz]
    assert run_loop(*arguments, "--out", tmp_path / "run") == explorer.errors.EXIT_INTERRUPTED
    out = capsys.readouterr().out
    assert "Interrupted while summarizing; every finished model is kept" in out
    assert f"--resume {tmp_path / 'run'}" in out
    assert (tmp_path / "run" / "softmax_regression" / "result.json").is_file()
    assert not list((tmp_path / "run").rglob(".*partial*"))


def test_a_failed_fused_group_leaves_no_checkpoint_and_says_why(tmp_path, synthetic_npz, monkeypatch, capsys):
    save_model = explorer.engine.callbacks.EpochBackupAndRestore._save_model

    def disk_full_for_the_fused_model(self):
        if len(self.model.outputs) > 1:  # the fused model: one output per branch
            self.checkpoint.path.mkdir(parents=True, exist_ok=True)
            (self.checkpoint.path / "half-written.weights.h5").write_bytes(b"\x89HDF")
            raise OSError(28, "No space left on device")
        save_model(self)

    monkeypatch.setattr(explorer.engine.callbacks.EpochBackupAndRestore, "_save_model", disk_full_for_the_fused_model)
    config = tmp_path / "sweep.toml"
    config.write_text(TWO_MODELS.format(epochs=2))
    assert run_loop("--config", config, "--data", synthetic_npz, "--out", tmp_path / "run") == 0
    assert (
        "fused training failed (OSError: [Errno 28] No space left on device; its traceback is in log.txt)"
        in capsys.readouterr().out
    )
    assert "Traceback (most recent call last)" in (tmp_path / "run" / "log.txt").read_text()
    fused = tmp_path / "run" / explorer.store.folders.FUSED_FOLDER
    assert not fused.exists() or not list(fused.iterdir())
    assert {r["status"] for r in explorer.store.schema.read_results(tmp_path / "run")} == {"ok"}


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"\x00\x01\x02\x9c\xff binary", "not UTF-8 text (byte 0x9c at position 3)"),
        ("[caf\u00e9]\nhidden_units = [8]\n".encode("latin-1"), "not UTF-8 text (byte 0xe9 at position 4)"),
        ("[m]\nhidden_units = [8]\n".encode("utf-16"), "not UTF-8 text (byte 0xff at position 0)"),
    ],
    ids=["binary", "latin-1", "utf-16"],
)
def test_a_configuration_file_that_is_not_utf8_is_one_line(tmp_path, synthetic_npz, capsys, content, words):
    config = tmp_path / "sweep.toml"
    config.write_bytes(content)
    assert run_loop("--config", config, "--data", synthetic_npz) == explorer.errors.EXIT_BAD_INPUT
    assert words in one_line(capsys)


def test_a_byte_order_mark_is_accepted(tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_bytes(b"\xef\xbb\xbf[m]\nhidden_units = [8]\n")
    assert common.load_toml_configs(config) == {"m": {"hidden_units": [8]}}


@pytest.mark.parametrize("value", ["2.5", "true", "0", '"3"'])
@pytest.mark.parametrize("override", [["--quick"], ["--epochs", "2"]], ids=["quick", "epochs"])
def test_a_files_epochs_are_checked_before_the_command_line_replaces_them(
    tmp_path, synthetic_npz, capsys, value, override
):
    config = tmp_path / "sweep.toml"
    config.write_text(f"[m]\nhidden_units = [8]\nepochs = {value}\n")
    assert run_loop("--config", config, "--data", synthetic_npz, *override) == explorer.errors.EXIT_BAD_INPUT
    assert "config 'm': epochs = " in one_line(capsys)


def test_a_huge_value_is_named_not_echoed(tmp_path, synthetic_npz, capsys):
    config = tmp_path / "sweep.toml"
    config.write_text("[m]\nhidden_units = '" + "x" * 1_000_000 + "'\n")
    assert run_loop("--config", config, "--data", synthetic_npz) == explorer.errors.EXIT_BAD_INPUT
    error = one_line(capsys)
    assert len(error) < 400 and "(1,000,002 characters)" in error


def test_a_network_too_big_for_this_machine_is_refused_with_its_size(tmp_path, synthetic_npz, capsys):
    config = tmp_path / "sweep.toml"
    config.write_text("[huge]\nhidden_units = [" + ", ".join(["16384"] * 32) + "]\n")
    assert run_loop("--config", config, "--data", synthetic_npz) == explorer.errors.EXIT_BAD_INPUT
    assert "config 'huge': needs about 124.7 GiB to train" in one_line(capsys)


@pytest.mark.parametrize("name", ["CON", "com1", "nul.txt", "LPT9", "model."])
def test_names_that_cannot_be_folders_everywhere_are_refused(name):
    with pytest.raises(explorer.errors.ConfigError, match=r"not ending in '\.', and not a device name"):
        common.validate_configs({name: {}})


def test_a_press_python_drops_is_noted_and_not_reported_as_an_ignored_exception(monkeypatch):
    # Raised inside a finalizer (as in XLA's garbage-collection callback), a KeyboardInterrupt is
    # dropped and handed to sys.unraisablehook, which prints "Exception ignored" with a traceback;
    # the note is what stops the run, so nothing is reported.
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)  # the script's handler, not Jupyter's
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)

    class PressedWhileFreed:
        def __del__(self):
            signal.raise_signal(signal.SIGINT)

    with explorer.engine.interrupts.interrupts_noted() as pressed:
        PressedWhileFreed()  # freed at once: the press lands in its finalizer
        assert pressed()
    assert reported == [] and sys.unraisablehook == reported.append  # the hook given back
