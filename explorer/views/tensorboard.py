"""The TensorBoard HParams dashboard of a run (`--tensorboard`).

Keras' TensorBoard callback logs every epoch's scalars while a model trains; once the sweep is
done, `write_tensorboard_hparams` adds one HParams session per finished trial.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path

from explorer.config.checks import is_number

HPARAM_FIELDS = (
    "hidden_units", "depth", "width", "activation", "dropout", "output_activation", "loss_function",
    "optimizer", "learning_rate", "epochs", "batch_size", "seed",
    "augment", "batch_norm", "label_smoothing", "lr_schedule", "weight_decay", "max_norm", "early_stopping",
)  # fmt: skip


HPARAM_METRICS = ("test_accuracy", "test_loss", "val_accuracy", "val_loss", "parameters", "train_seconds")


def hparam_values(result: Mapping) -> dict[str, object]:
    """A trial's configuration as flat TensorBoard hyperparameters (strings, numbers, booleans)."""
    config = result["config"]
    units = config.get("hidden_units")
    activation = config.get("activation")
    dense = units is not None  # a model of other layers has no hidden units to show
    return {
        "hidden_units": ("x".join(map(str, units)) or "none") if dense else "not a dense stack",
        "depth": len(units) if dense else -1,
        "width": max(units, default=0) if dense else -1,
        "activation": activation if isinstance(activation, str) else "/".join(activation or ()) or "none",
        "dropout": config.get("dropout") if is_number(config.get("dropout")) else -1,
        "output_activation": str(config.get("output_activation")),
        "loss_function": result.get("loss_function") or config["loss"],
        "optimizer": config["optimizer"],
        "learning_rate": config["learning_rate"],
        "epochs": config["epochs"],
        "batch_size": config["batch_size"],
        "seed": result["seed"],
        # The techniques; a result written before them, or a model of other layers, has "none"/-1.
        "augment": str(config.get("augment") or "none"),
        "batch_norm": bool(config.get("batch_norm")),
        "lr_schedule": str(config.get("lr_schedule") or "none"),
        **{
            key: _number_or(config.get(key), -1)
            for key in ("label_smoothing", "weight_decay", "max_norm", "early_stopping")
        },
    }


def _number_or(value: object, missing: float) -> object:
    return value if is_number(value) else missing


def write_tensorboard_hparams(log_root: Path, results: Sequence[Mapping]) -> None:
    """Write the HParams dashboard's experiment and one session per finished trial under `log_root`.

    Each session sits in the trial's own log folder (beside the train/ and validation/ scalars of
    Keras' TensorBoard callback) with every `HPARAM_FIELDS` value as a hyperparameter and every
    `HPARAM_METRICS` value as a metric, so `tensorboard --logdir log_root` shows the table,
    parallel-coordinates and scatter views with every trial.
    """
    import tensorflow as tf  # TensorBoard's summary writer; installed with the TensorFlow backend
    from tensorboard.plugins.hparams import api as hp

    finished = [result for result in results if result["status"] == "ok"]
    if not finished:
        return
    with tf.summary.create_file_writer(str(log_root)).as_default():
        hp.hparams_config(
            hparams=[hp.HParam(name) for name in HPARAM_FIELDS],
            metrics=[hp.Metric(name, display_name=name.replace("_", " ")) for name in HPARAM_METRICS],
        )
    for result in finished:
        with tf.summary.create_file_writer(str(log_root / result["trial"])).as_default():
            hp.hparams(hparam_values(result), trial_id=result["trial"])
            for metric in HPARAM_METRICS:
                tf.summary.scalar(metric, float(result[metric]), step=result["epochs_run"])
