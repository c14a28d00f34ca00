"""The Ray Tune executor (`--executor ray`): one Tune trial per group, the same files as locally.

`--executor ray` hands the planned groups to Ray Tune, one Tune trial per group, on a local Ray
instance or on a cluster (`--ray-address`). Every trial calls `train_and_record`, as the local
executor does, and writes the same files into the same run folder, so the views, the report and
`--resume` work unchanged.

- Data: the prepared arrays go into Ray's object store once (`tune.with_parameters` puts them), and
  each node fetches them once and reads them in place, so a node needs neither the `--data` path nor
  a second decode of MNIST.
- Checkpoints: each epoch a trial reports its metrics to Tune with a checkpoint (its group's Keras
  BackupAndRestore folder and its models' `history.csv`), kept in `RUN_DIR/.tune/`. A trial whose
  worker or node dies is retried (up to 3 times) and resumes from that checkpoint, on any node.
  The last report carries the finished model folders: when the run folder is not shared with the
  node that trained them, the driver copies them in from there.
- Threads: a trial may use `--cpus-per-trial` cores: TensorFlow's intra-op threads and the BLAS
  thread pools are set to that many, so concurrent trials do not oversubscribe a node.
- `--scheduler asha`: Tune's ASHA stops weak configurations early, judged by validation loss after
  1, 2, 4, ... epochs; their results have status "stopped early" and their last epoch. Each
  configuration is then its own trial (ASHA compares trials, so it does not fuse).
"""

import dataclasses
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from explorer.config.defaults import RAY_MAX_FAILURES
from explorer.config.options import RayOptions
from explorer.data.prepare import PreparedData
from explorer.engine.callbacks import branch_log_key
from explorer.engine.groups import GroupsToTrain, result_line, train_and_record
from explorer.engine.training import GroupSetup
from explorer.errors import UserInputError, failure_reason
from explorer.models.backend import TENSORFLOW_IMPORT_NOISE, keras, native_stderr_filtered
from explorer.store.group_checkpoint import GroupCheckpoint
from explorer.store.trial_folder import TrialFolder

RAY_FOLDER = ".tune"  # Tune's experiment state and per-epoch checkpoints, inside the run folder


# The project's root, where a worker imports the engine and the scripts' builders from.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def ray_thread_environment(cpus_per_trial: float) -> dict[str, str]:
    """Environment of a trial's worker process, set before it imports Keras: thread pools sized to
    the trial's share of cores. (XLA's CPU thread pool follows the process's CPU affinity rather
    than these flags, so on JAX concurrent trials can still share cores.)"""
    threads = str(max(1, math.floor(cpus_per_trial)))
    return {
        "TF_NUM_INTRAOP_THREADS": threads,
        "TF_NUM_INTEROP_THREADS": threads,
        "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={threads}",
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
    }


def import_ray():
    """Ray and Ray Tune, imported only when asked for: they are an optional dependency."""
    try:
        import ray
        from ray import tune
    except ImportError:
        raise UserInputError(
            "--executor ray needs Ray Tune, which is not installed: pip install -r requirements-ray.txt"
        ) from None
    return ray, tune


def _ray_metrics(names: Sequence[str], epoch: int, logs: Mapping[str, float]) -> dict[str, float]:
    """What a trial reports to Tune: the epoch, the group's best validation loss and accuracy (the
    figures a scheduler compares; for a one-model trial, the model's own) and each model's."""
    fused = len(names) > 1
    metrics: dict[str, float] = {"epoch": epoch + 1}
    for name in names:
        for metric in ("val_loss", "val_accuracy", "loss", "accuracy"):
            metrics[f"{name}/{metric}"] = float(logs[branch_log_key(name, metric, fused)])
    return _with_group_best(metrics, names)


def _with_group_best(metrics: dict[str, float], names: Sequence[str]) -> dict[str, float]:
    """Add the group's best validation loss and accuracy to per-model `<name>/<metric>` figures,
    passing over diverged models (NaN or infinite)."""
    for metric, best, worst in (("val_loss", min, math.inf), ("val_accuracy", max, 0.0)):
        finite = [metrics[f"{name}/{metric}"] for name in names if math.isfinite(metrics[f"{name}/{metric}"])]
        metrics[metric] = best(finite) if finite else worst
    return metrics


def _snapshot_progress(folder: Path, checkpoint: GroupCheckpoint, folders: Sequence[TrialFolder]) -> None:
    """Copy into `folder` what a retried trial resumes from: the group's training checkpoint and
    each model's history (`_restore_progress` puts them back)."""
    checkpoint.snapshot_into(folder)
    for trial_folder in folders:
        trial_folder.copy_into(folder, history_only=True)


def _restore_progress(folder: Path, checkpoint: GroupCheckpoint, folders: Sequence[TrialFolder]) -> None:
    checkpoint.restore_from(folder)
    for trial_folder in folders:
        trial_folder.take_history_from(folder)


class TuneReport(keras.callbacks.Callback):
    """Reports every epoch but the last to Ray Tune, with a checkpoint to resume from. The last is
    reported once the models' files are written: a scheduler may end a trial at any report, and
    nothing after that report runs."""

    def __init__(self, names: Sequence[str], checkpoint: GroupCheckpoint, folders: Sequence[TrialFolder], epochs: int):
        super().__init__()
        self.names, self.checkpoint, self.folders, self.epochs = names, checkpoint, folders, epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= self.epochs:
            return
        from ray import tune

        with tempfile.TemporaryDirectory(prefix="tune-checkpoint-") as folder:
            _snapshot_progress(Path(folder), self.checkpoint, self.folders)
            tune.report(_ray_metrics(self.names, epoch, logs), checkpoint=tune.Checkpoint.from_directory(folder))


def ray_trial(config: Mapping[str, int], data: PreparedData, plan: Sequence[Mapping]) -> None:
    """One Tune trial: train group `config["group"]` of `plan` with `train_and_record` and report it."""
    import ray
    from ray import tune

    entry = plan[config["group"]]
    trials, folders, checkpoint = entry["trials"], entry["folders"], entry["checkpoint"]
    restored = tune.get_checkpoint()  # set when Tune retries this trial after a failure
    if restored is not None and not checkpoint.saved_epochs():  # a checkpoint of its own is as new or newer
        with restored.as_directory() as folder:
            _restore_progress(Path(folder), checkpoint, folders)
    names = [trial.name for trial in trials]
    node = {"executor": "ray", "node": ray.util.get_node_ip_address()}
    epochs = trials[0].variant.epochs
    setup = GroupSetup(
        folders=folders,
        checkpoint=checkpoint,
        verbose=0,
        log=lambda line: None,
        callbacks=[TuneReport(names, checkpoint, folders, epochs)],
        riders=entry["riders"],
    )
    results = train_and_record(trials, data, setup, [{**fields, **node} for fields in entry["fields"]])
    final = {"epoch": epochs, "finished": 1}
    for result in results:
        for metric in ("val_loss", "val_accuracy"):
            final[f"{result['name']}/{metric}"] = float(result[metric])
    # The last report carries the finished folders, for a driver that does not share them.
    with tempfile.TemporaryDirectory(prefix="tune-final-") as folder:
        for position, trial_folder in enumerate(folders):
            if position not in entry["riders"]:
                trial_folder.copy_into(Path(folder))
        tune.report(_with_group_best(final, names), checkpoint=tune.Checkpoint.from_directory(folder))


def _start_ray(ray, options: RayOptions, trial_count: int, log: Callable[[str], None]) -> None:
    """Join the cluster at `options.address`, or start a local instance; workers import the engine
    from the project's root and take their thread limits from the environment."""
    environment = {
        **ray_thread_environment(options.cpus_per_trial),
        "KERAS_BACKEND": keras.backend.backend(),
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    settings: dict[str, object] = {"runtime_env": {"env_vars": environment}, "log_to_driver": False}
    if options.node_ip:
        settings["_node_ip_address"] = options.node_ip
    with native_stderr_filtered(TENSORFLOW_IMPORT_NOISE):
        if options.address:
            ray.init(address=options.address, **settings)
        else:
            ray.init(include_dashboard=False, **settings)
    resources = ray.cluster_resources()
    log(
        f"Ray: {len(ray.nodes())} node(s), {resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs; "
        f"{trial_count} trial(s) of {options.cpus_per_trial:g} CPU(s) and {options.gpus_per_trial:g} GPU(s) each"
    )


def _plan(work: GroupsToTrain) -> list[dict]:
    """One entry per Tune trial: its trials, folders, checkpoint and what each result records
    (`work.run_dir` resolved: trials run in folders of Ray's own)."""
    return [
        {
            "trials": list(group),
            "run_dir": str(work.run_dir),
            "folders": work.folders(group),
            "riders": work.rider_positions(group),  # trained unrecorded (`resume.ResumePlan`)
            "checkpoint": work.checkpoint(group),
            "fields": work.result_fields(group),
        }
        for group in work.groups
    ]


def _tuner(tune, work: GroupsToTrain, plan: Sequence[Mapping], completed: set[int], epochs: int):
    from ray.tune.schedulers import ASHAScheduler

    class Completed(tune.Callback):
        """Notes the trials Tune completed (finished, or ended by the scheduler), so that trials cut
        short by Ctrl-C are not mistaken for ones the scheduler stopped."""

        def on_trial_complete(self, iteration, trials, trial, **info):
            completed.add(trial.config["group"])

    ray_options = work.options.ray
    scheduler = ASHAScheduler(time_attr="epoch", max_t=epochs, grace_period=1, reduction_factor=2)
    return tune.Tuner(
        tune.with_resources(
            tune.with_parameters(ray_trial, data=work.data, plan=plan),
            {"cpu": ray_options.cpus_per_trial, "gpu": ray_options.gpus_per_trial},
        ),
        param_space={"group": tune.grid_search(list(range(len(plan))))},
        tune_config=tune.TuneConfig(
            metric="val_loss",
            mode="min",
            scheduler=scheduler if ray_options.scheduler == "asha" else None,
            max_concurrent_trials=ray_options.max_concurrent,
        ),
        run_config=tune.RunConfig(
            name="sweep",
            storage_path=str(Path(plan[0]["run_dir"]) / RAY_FOLDER),
            failure_config=tune.FailureConfig(max_failures=RAY_MAX_FAILURES),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=[Completed()],
            verbose=1,
        ),
    )


def _collect(result, entry: Mapping, finished_by_scheduler: bool, epochs: int) -> list[dict | None]:
    """The result records of one Tune trial's models, written where missing: copied in from the
    trial's last checkpoint, "failed" for an error, "stopped early" when the scheduler ended it;
    None for a model that was interrupted."""
    records: list[dict | None] = []
    for position, (folder, fields) in enumerate(zip(entry["folders"], entry["fields"], strict=True)):
        if position in entry["riders"]:
            continue
        if not folder.finished() and result.checkpoint is not None:
            # Trained on a node that does not share the run folder: the last report carried it.
            with result.checkpoint.as_directory() as carried:
                folder.take_finished_from(Path(carried))
        record = None
        if folder.finished():
            record = folder.read_result()  # None (interrupted: resume retrains it) if it is damaged
        elif result.error is not None:
            record = folder.write_result("failed", fields, reason=failure_reason(result.error))
        elif finished_by_scheduler and folder.history_csv.exists():
            history = folder.finish_history()
            reason = f"stopped early by ASHA after epoch {len(history['loss'])} of {epochs}"
            record = folder.write_result("stopped early", fields, history=history, reason=reason)
            entry["checkpoint"].close()
        records.append(record)
    return records


def run_groups_on_ray(work: GroupsToTrain) -> None:
    """Train the groups of `work` as Ray Tune trials and leave each trial's files in the run folder,
    as the local executor does. Raises KeyboardInterrupt when the sweep was interrupted (finished
    trials kept)."""
    ray, tune = import_ray()
    work.open_folders([trial for group in work.groups for trial in group])
    _start_ray(ray, work.options.ray, len(work.groups), work.log)
    plan = _plan(dataclasses.replace(work, run_dir=work.run_dir.resolve()))
    completed: set[int] = set()
    epochs = max(group[0].variant.epochs for group in work.groups)
    try:
        grid = _tuner(tune, work, plan, completed, epochs).fit()
    finally:
        ray.shutdown()
    interrupted = False
    for result in grid:
        index = result.config["group"]
        records = _collect(result, plan[index], index in completed, epochs)
        recorded = [t for position, t in enumerate(plan[index]["trials"]) if position not in plan[index]["riders"]]
        for trial, record in zip(recorded, records, strict=True):
            if record is None:
                interrupted = True
            else:
                work.log(f"    {trial.folder}: {result_line(record)}")
        if None not in records and result.path:
            # Every model of the trial is in the run folder: Tune's copies of it are not needed.
            for checkpoint in Path(result.path).glob("checkpoint_*"):
                shutil.rmtree(checkpoint, ignore_errors=True)
    if interrupted:
        raise KeyboardInterrupt
