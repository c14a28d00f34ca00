"""The explorer from Python (`common.sweep`), the plan and the estimate, without a command line."""

import dataclasses

import pytest

import common
import explorer.api
import explorer.cli
import explorer.config.options
import explorer.engine.estimate
import explorer.errors
import explorer.models.trials

from conftest import dense_trial


def test_settings_and_the_command_line_build_the_same_options():
    settings = {"epochs": 3, "quick": True, "fuse": False, "data": None, "plan": False, "max_concurrent": None}
    from_python = explorer.config.options.make_options(settings)
    parser = explorer.cli.make_parser("model_builder_loop.py", "")
    from_argv, _ = explorer.cli.parse_command_line(parser, ["--epochs", "3", "--quick", "--no-fuse"])
    assert dataclasses.replace(from_argv, prog=None, argv=(), run_settings=None) == from_python
    assert from_python.epochs == 3 and from_python.quick and not from_python.fuse and from_python.prog is None


def test_networks_may_be_configurations_grids_builders_or_variants():
    from_configs = explorer.api.variants_of({"a": {"hidden_units": [8]}, "grid": {"g": {"dropout": [0.0, 0.5]}}})
    assert [variant.name for variant in from_configs] == ["a", "g-d0", "g-d0.5"]
    build = from_configs[0].build
    assert [variant.name for variant in explorer.api.variants_of({"mine": build})] == ["mine"]
    assert explorer.api.variants_of(from_configs) == from_configs
    with pytest.raises(explorer.errors.ConfigError, match=r"expected a dict of configurations .* got str"):
        explorer.api.variants_of("dense_128_relu")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"repeats": 0}, r"^repeats: 0 is out of range; expected 1-100$"),
        ({"repeats": "3"}, r"^repeats: '3' is not a whole number"),
        ({"frobnicate": 1}, r"^unknown setting 'frobnicate'; allowed: data, out, "),
        ({"epoch": 3}, r"^unknown setting 'epoch' \(did you mean epochs\?\)"),
        ({"validation_split": 2}, r"^validation_split: 2 is out of range"),
        ({"quick": "yes"}, r"^quick: 'yes' is not True or False"),
        ({"scheduler": "asha"}, r"^scheduler: only with executor ray"),
        ({"out": "a", "resume": "b"}, r"^out: not allowed with resume"),
    ],
)
def test_bad_settings_raise_one_line_before_anything_trains(settings, message):
    with pytest.raises(common.UserInputError, match=message):
        common.sweep({"a": {"hidden_units": [8]}}, **settings)


def test_the_plan_prints_every_model_its_costs_and_an_estimate_and_writes_nothing(tmp_path, synthetic_npz):
    lines = []
    outcome = common.sweep({"a": {"hidden_units": [8]}, "b": {"hidden_units": [16]}}, data=synthetic_npz,
                           repeats=2, plan=True, out=tmp_path / "run", log=lines.append)  # fmt: skip
    text = "\n".join(lines)
    assert outcome.exit_code == 0 and outcome.run_dir is None and not (tmp_path / "run").exists()
    assert "Plan: 4 trial(s) in 2 group(s), nothing trained or written." in text
    # What it would read (a long path on a line of its own, within 100 columns).
    assert " ".join(lines[0].split()) == f"Data: MNIST files at (600 train / 200 test digits): {synthetic_npz}"
    assert "[1/2] 2 fused: seed 42, 20 epochs, batch 128" in text
    # 784-16-10 makes 12,704 multiply-adds a digit, 12,544 of them in the first layer: 2 FLOPs each
    # forward per digit, 2 more for the weights' gradient and 2 for the input's beyond the first
    # layer per training digit.
    per_epoch = 12_704 * (4 * 540 + 2 * 60) + (12_704 - 12_544) * 2 * 540
    assert f"{per_epoch / 1e9:.1f} GFLOP/epoch" in text and "Estimate: about" in text


def test_the_estimate_adds_the_groups_flops_and_fixed_costs():
    narrow, wide = dense_trial("narrow", {"hidden_units": [8]}), dense_trial("wide", {"hidden_units": [512]})
    rate = 1e10  # one rate for both, so that they differ only by their groups
    alone = explorer.engine.estimate.estimate_sweep([[narrow], [wide]], 1_000, 100, rate)
    fused = explorer.engine.estimate.estimate_sweep([[narrow, wide]], 1_000, 100, rate)
    # By hand: 784-8-10 and 784-512-10 make 6,352 and 406,528 multiply-adds a digit, 80 and 5,120 of
    # them after the first layer; 4 FLOPs each per training digit (forward, weights' gradient), 2 more
    # after the first layer (input's gradient), 2 per validation digit, over 20 epochs.
    per_epoch = (6_352 + 406_528) * (4 * 1_000 + 2 * 100) + (80 + 5_120) * 2 * 1_000
    assert alone.flops == fused.flops == per_epoch * 20
    # Two groups cost a group's fixed time more than one, and their steps (8 + 1 a epoch at batch 128)
    # are dispatched twice; the FLOP time is the same.
    estimate = explorer.engine.estimate
    extra = estimate.SECONDS_PER_GROUP + 20 * 9 * estimate.SECONDS_PER_STEP
    assert alone.seconds - fused.seconds == pytest.approx(extra)
    assert alone.line().startswith("Estimate: about ")


def test_the_plan_says_why_models_that_could_fuse_train_alone(synthetic_npz):
    lines = []
    networks = {"a": {"hidden_units": [8]}, "b": {"hidden_units": [16]}}
    common.sweep(networks, data=synthetic_npz, repeats=1, fuse=False, plan=True, log=lines.append)
    assert "[1/2] alone (--no-fuse): seed 42, 20 epochs, batch 128" in "\n".join(lines).splitlines()


def test_a_run_says_why_its_models_train_alone(tmp_path, synthetic_npz):
    lines = []
    networks = {"a": {"hidden_units": [8]}, "b": {"hidden_units": [16]}}
    outcome = common.sweep(networks, data=synthetic_npz, quick=True, repeats=1, fuse=False, out=tmp_path / "run",
                           log=lines.append)  # fmt: skip
    assert outcome.exit_code == 0 and "Each model trains alone: --no-fuse." in lines
