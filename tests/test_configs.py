"""Configuration validation: every bad value gets one line naming the config, field and allowed values."""

import dataclasses

import keras
import pytest

import common
import explorer.config.models
import explorer.errors
import explorer.models.dense
import model_builder_loop


def test_defaults_make_the_reference_network():
    config = explorer.config.models.validate_config("ref", {})
    assert config == common.ModelConfig(name="ref")
    assert config.hidden_layers == ((128, "relu"),) and config.resolved_loss == "categorical_crossentropy"


def test_per_layer_activations_are_accepted():
    config = explorer.config.models.validate_config("mix", {"hidden_units": [64, 32], "activation": ["tanh", "relu"]})
    assert config.hidden_layers == ((64, "tanh"), (32, "relu"))


def test_auto_loss_follows_the_output_activation():
    pick = lambda output: explorer.config.models.validate_config("m", {"output_activation": output}).resolved_loss  # noqa: E731
    assert [pick(o) for o in ("softmax", "linear", "sigmoid")] == [
        "categorical_crossentropy",
        "categorical_crossentropy",
        "binary_crossentropy",
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"activaton": "relu"},
            r"config 'bad': unknown field 'activaton' \(did you mean 'activation'\?\); allowed fields: hidden_units",
        ),
        (
            {"activation": "rellu"},
            r"config 'bad': activation 'rellu' is unknown \(did you mean 'relu'\?\); allowed: relu, sigmoid",
        ),
        (
            {"activation": ["relu", "tanh"]},
            r"activation = \['relu', 'tanh'\] is not allowed; expected one name for all layers or a list of 1",
        ),
        ({"activation": ["rellu"]}, r"activation 'rellu' is unknown \(did you mean 'relu'\?\)"),
        (
            {"hidden_units": [128, 0]},
            r"config 'bad': hidden_units contains 0; every width must be a whole number from 1 to 16,384",
        ),
        ({"hidden_units": [-5]}, r"hidden_units contains -5"),
        ({"hidden_units": [10_000_000]}, r"hidden_units contains 10000000"),
        ({"hidden_units": [True]}, r"hidden_units contains True"),
        ({"hidden_units": [12.5]}, r"hidden_units contains 12.5"),
        ({"hidden_units": 128}, r"hidden_units = 128 is not allowed; expected a list of up to 32 layer widths"),
        ({"output_activation": "relu"}, r"output_activation 'relu' is unknown; allowed: softmax, linear, sigmoid"),
        ({"optimizer": "addam"}, r"optimizer 'addam' is unknown \(did you mean 'adam'\?\); allowed: adam, adamw"),
        ({"loss": "mse"}, r"loss 'mse' is unknown; allowed: auto, categorical_crossentropy"),
        ({"epochs": 0}, r"epochs = 0 is not allowed; expected a whole number from 1 to 1,000"),
        ({"epochs": "10"}, r"epochs = '10' is not allowed"),
        ({"batch_size": -32}, r"batch_size = -32 is not allowed; expected a whole number from 1 to 65,536"),
        ({"dropout": 1.0}, r"dropout = 1.0 is not allowed; expected a number from 0"),
        ({"learning_rate": 0}, r"learning_rate = 0 is not allowed; expected a positive finite number"),
        ({"learning_rate": float("nan")}, r"learning_rate = nan is not allowed"),
        ([128], r"config 'bad': expected a table of fields, got list"),
    ],
)
def test_each_bad_field_gets_a_one_line_message(fields, message):
    with pytest.raises(explorer.errors.ConfigError, match=message) as caught:
        explorer.config.models.validate_config("bad", fields)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["../x", "/etc", "", "a b", ".hidden", "x" * 65, 7])
def test_names_must_be_safe_folder_names(name):
    with pytest.raises(explorer.errors.ConfigError, match=r"configuration name .* is not allowed; use 1-64 letters"):
        explorer.config.models.validate_config(name, {})


def test_overrides_replace_every_configuration_field():
    configs = common.validate_configs({"a": {"epochs": 3}, "b": {}}, {"epochs": 1, "batch_size": 16})
    assert [(c.epochs, c.batch_size) for c in configs] == [(1, 16), (1, 16)]


def test_an_empty_sweep_is_refused():
    with pytest.raises(explorer.errors.ConfigError, match="no configurations to train"):
        common.validate_configs({})


def test_only_selects_in_the_given_order_and_names_unknown_ones():
    configs = {"a": {}, "b": {}, "c": {}}
    assert list(common.select_configs(configs, ["c", "a"])) == ["c", "a"]
    with pytest.raises(
        explorer.errors.ConfigError,
        match=r"--only 'bb' is not a configuration \(did you mean 'b'\?\); valid names: a, b, c",
    ):
        common.select_configs(configs, ["bb"])


def test_toml_configs_use_the_same_schema(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text(
        '[wide]\nhidden_units = [512]\ndropout = 0.2\n\n[deep]\nhidden_units = [64, 64, 64]\nactivation = "tanh"\n'
    )
    configs = common.validate_configs(common.load_toml_configs(path))
    assert [(c.name, c.hidden_units, c.activation, c.dropout) for c in configs] == [
        ("wide", (512,), "relu", 0.2),
        ("deep", (64, 64, 64), "tanh", 0.0),
    ]


def test_toml_syntax_errors_name_the_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[ok]\nhidden_units = [64]\n\n[broken]\nhidden_units = 64 64\nepochs = 3\n")
    with pytest.raises(explorer.errors.ConfigError, match=r"broken.toml: TOML syntax error: .*line 5"):
        common.load_toml_configs(path)


def test_toml_top_level_values_must_be_tables(tmp_path):
    path = tmp_path / "flat.toml"
    path.write_text("epochs = 3\n")
    with pytest.raises(explorer.errors.ConfigError, match=r"'epochs' must be a table of fields"):
        common.load_toml_configs(path)


def test_a_missing_toml_file_is_named(tmp_path):
    with pytest.raises(explorer.errors.ConfigError, match=r"--config .*nope.toml: cannot read"):
        common.load_toml_configs(tmp_path / "nope.toml")


@pytest.mark.backend
def test_every_allowed_name_is_known_to_keras():
    # Keras names each activation back as we do (a misspelt or renamed one would not round-trip).
    for name in explorer.config.models.HIDDEN_ACTIVATIONS + explorer.config.models.OUTPUT_ACTIVATIONS:
        assert keras.activations.serialize(keras.activations.get(name)) == name
    assert tuple(explorer.models.dense.OPTIMIZER_CLASSES) == explorer.config.models.OPTIMIZERS
    for name, optimizer in explorer.models.dense.OPTIMIZER_CLASSES.items():
        assert type(keras.optimizers.get(name)) is optimizer, name  # the class Keras gives that name


def test_the_default_sweep_answers_the_design_questions():
    configs = common.validate_configs(model_builder_loop.CONFIGS)
    one_layer_relu = {c.hidden_units[0] for c in configs if len(c.hidden_units) == 1 and c.activation == "relu"}
    assert {32, 64, 128, 256, 512} <= one_layer_relu
    assert {"relu", "sigmoid", "tanh"} < {c.activation for c in configs}
    assert {len(c.hidden_units) for c in configs} >= {1, 2, 3}
    assert {c.output_activation for c in configs} > {"softmax"}
    assert any(c.dropout > 0 and max(c.hidden_units) >= 512 for c in configs)
    assert len(configs) >= 8


def test_model_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        common.ModelConfig(name="x").epochs = 3
