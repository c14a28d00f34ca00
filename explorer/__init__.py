"""The engine behind `model_builder_seq.py` and `model_builder_loop.py`: one module per stage.

From the command line down (a module imports only the ones below it; `make lint` checks it):

    api            `common.sweep`: networks and settings as Python values -> the sweep's outcome
    cli | compare_runs    argparse -> a frozen `Options` (nothing below sees argparse) | --compare
    sweep          validate, load the data, plan, hand the groups to an executor, then the views
    local_executor | ray_executor     both train through `recording.train_and_record`
    recording      train a group and write each trial's files (the one training function below)
    run_views      summaries, figures, TensorBoard and the report, written from the run folder
    report | tensorboard | digit_views    the HTML report (files in report_files/), HParams, and the
                   figures inside the digits: first-layer weights, digits two networks disagree on
    views          pure figures and the terminal leaderboard
    training       seed, build, fit, evaluate and predict one group, in memory
    fusion         several compiled models as one functional model with a branch each, and back
    callbacks      per-epoch seeds, clock, history rows, progress and checkpoint
    stats          summaries over repeats, verdicts, Pareto front, factor groups, accuracy per digit
    comparisons | estimate    paired differences, McNemar, Holm | a sweep's FLOPs and wall time
    run_folder     paths, atomic writes, the one result record, resume decisions
    trials         variants x seeds -> trials -> fused groups, fingerprints
    options | dense | grids   options of a sweep | the one dense builder | grids expanded
    configs        plain-data configurations, validated
    variants       a name and a builder; what the engine reads off a built model
    data | splits  MNIST from IDX, npz, Keras or the embedded sample; the split and flattening
    backend        Keras, imported with the chosen backend
    settings       the backend choice, defaults, limits and checks of plain values
    errors         one-line errors and exit codes

cli, options, configs, grids, settings and errors import no Keras, JAX, TensorFlow or Matplotlib (`make
lint` checks it too): the command line and the configurations are checked before Keras is imported,
which takes seconds.
"""
