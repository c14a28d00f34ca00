"""Grids: the product of a table's lists, named by what varies, sampled with a seed, and limited."""

import itertools

import pytest

import explorer.config.grids
import explorer.errors


def test_a_grid_is_the_product_of_its_lists_named_by_what_varies():
    grid = {"hidden_units": [[64], [128, 128]], "activation": ["relu", "tanh"], "epochs": 5}
    expanded = explorer.config.grids.expand_grid("wd", grid)
    assert list(expanded) == ["wd-h64-relu", "wd-h64-tanh", "wd-h128x128-relu", "wd-h128x128-tanh"]
    assert expanded["wd-h128x128-tanh"] == {"hidden_units": [128, 128], "activation": "tanh", "epochs": 5}


def test_every_field_names_itself_readably():
    grid = {"hidden_units": [[], [32]], "dropout": [0.0, 0.2], "learning_rate": [0.001, 0.01], "batch_size": [32, 64]}
    names = list(explorer.config.grids.expand_grid("g", grid))
    assert names[0] == "g-h0-d0-lr0.001-b32" and names[-1] == "g-h32-d0.2-lr0.01-b64" and len(names) == 16


def test_a_picked_combination_is_the_one_itertools_product_gives():
    choices = [["a", "b", "c"], [1, 2], ["x", "y", "z", "w"]]
    product = list(itertools.product(*choices))
    assert [explorer.config.grids._combination(choices, index) for index in range(len(product))] == product


def test_a_sample_is_seeded_a_subset_in_product_order_and_never_materialises_the_product():
    configs = {"plain": {"hidden_units": [8]}, "grid": {"g": {"hidden_units": [[n] for n in range(1, 1001)],
                                                              "learning_rate": [0.001 * n for n in range(1, 1001)]}}}  # fmt: skip
    first = explorer.config.grids.expand_grids(configs, sample=5, seed=7)
    assert first == explorer.config.grids.expand_grids(configs, sample=5, seed=7)  # the same seed, the same sample
    assert first != explorer.config.grids.expand_grids(configs, sample=5, seed=8)
    assert next(iter(first)) == "plain" and len(first) == 6  # plain tables are kept whole
    widths = [fields["hidden_units"][0] for name, fields in first.items() if name != "plain"]
    assert widths == sorted(widths)  # a million combinations, five built, in product order


def test_the_limit_counts_what_would_train():
    grid = {"grid": {"g": {"hidden_units": [[n] for n in range(1, 11)], "activation": ["relu", "tanh"]}}}
    with pytest.raises(explorer.errors.ConfigError, match=r"20 configurations, over the limit of 10"):
        explorer.config.grids.expand_grids(grid, max_trials=10)
    assert len(explorer.config.grids.expand_grids(grid, max_trials=10, sample=10)) == 10


def test_command_line_terms_read_as_toml_values_or_bare_words():
    fields = explorer.config.grids.parse_grid_terms(
        ["hidden_units=[64],[128, 128]", "activation=relu,tanh", "dropout=0.2"]
    )
    assert fields == {"hidden_units": [[64], [128, 128]], "activation": ["relu", "tanh"], "dropout": [0.2]}
    per_layer = explorer.config.grids.parse_grid_terms(['activation=["tanh", "relu"]'])  # one value: a list per layer
    assert list(explorer.config.grids.expand_grid("g", {"hidden_units": [[8, 8]], **per_layer})) == ["g"]
