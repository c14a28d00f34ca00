"""How a first layer learned: a few units after epochs 1, 2, 5, 10 and the last, kept per trial
(`engine.callbacks.FirstLayerSnapshots`, `store.trial_folder`), and drawn for the report."""

import numpy as np

from explorer.engine.callbacks import FirstLayerSnapshots
from explorer.models.variants import build_model
from explorer.store.trial_folder import FIRST_LAYER_FILE, TrialFolder, first_layer_epochs
from explorer.views.digits import plot_first_layer_progress

from conftest import dense_trial


def test_the_units_are_kept_after_epochs_1_2_5_10_and_the_last_and_drawn(tmp_path):
    wide, alone = dense_trial("wide", {"hidden_units": [32]}), dense_trial("alone", {"hidden_units": []})
    members = [build_model(wide.variant), build_model(alone.variant)]
    folders = [TrialFolder(tmp_path / t.folder, t, key="") for t in (wide, alone)]
    for folder in folders:
        folder.start(resuming=False)
    snapshots = FirstLayerSnapshots(members, folders, epochs=12)
    for epoch in range(12):
        snapshots.on_epoch_end(epoch)
    kept = first_layer_epochs(folders[0].path)
    assert list(kept) == [1, 2, 5, 10, 12] and all(units.shape == (784, 16) for units in kept.values())
    assert kept[12].dtype == np.float16 and (folders[0].path / FIRST_LAYER_FILE).stat().st_size < 140_000
    assert first_layer_epochs(folders[1].path) == {}  # its only Dense layer is the output: ten templates
    figure = plot_first_layer_progress(kept, "wide: its first 16 units")
    assert len([ax for ax in figure.axes if ax.images]) == 5 * 16
    folders[0].start(resuming=False)  # trained again from the start: the old epochs go
    assert first_layer_epochs(folders[0].path) == {}
