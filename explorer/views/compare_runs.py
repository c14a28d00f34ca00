"""Several finished runs side by side: one summary and one report, nothing retrained.

`--compare RUN_A RUN_B ...` gathers every finished model of each run folder, labels each
configuration with its run (`RUN_A.dense_128_relu`), states where runs differ (data, or a
configuration of the same name), and builds the summaries, figures and report of a sweep from them
into a new folder, with the paired statistics wherever two configurations ran on the same seeds
and the same test digits.
"""

import contextlib
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from explorer.config.options import Options
from explorer.data.loading import load_prepared
from explorer.errors import ConfigError, DataError, shown
from explorer.models.backend import versions
from explorer.store.files import default_run_dir, now_iso, prepare_run_dir, read_json, write_json_atomic
from explorer.store.folders import LAYOUT, READABLE_LAYOUTS
from explorer.store.schema import read_results
from explorer.views.summarize import SweepOutcome, build_views
from explorer.views.tables import VERDICT_LEGEND, findings_lines, format_leaderboard, wrapped

DATA_FIELDS = ("kind", "location", "train_size", "test_size")


@dataclasses.dataclass(frozen=True)
class ComparedRun:
    """One run folder of a comparison: its label, its run.json and its finished results."""

    folder: Path
    label: str
    record: Mapping
    results: list[dict]


def open_runs(folders: Sequence[Path]) -> list[ComparedRun]:
    """Read each run folder, labelled by its name (made unique with its position).

    Raises:
        ConfigError: for fewer than two folders, or one that is not a finished run folder.
    """
    if len(folders) < 2:
        raise ConfigError("--compare needs at least two run folders")
    runs, labels = [], set()
    for position, folder in enumerate(folders, start=1):
        record = read_json(folder / "run.json")
        if not isinstance(record, dict):
            raise ConfigError(f"--compare {folder}: not a run folder (no readable run.json in it)")
        if record.get("layout") not in READABLE_LAYOUTS:
            raise ConfigError(
                f"--compare {folder}: written by another version of this explorer (run folder layout "
                f"{shown(record.get('layout', 1))}; this version reads {', '.join(map(str, READABLE_LAYOUTS))})"
            )
        results = [result for result in read_results(folder) if result.get("status")]
        if not results:
            raise ConfigError(f"--compare {folder}: no finished model in it")
        label = folder.name if folder.name not in labels else f"{folder.name}-{position}"
        labels.add(label)
        runs.append(ComparedRun(folder, label, record, results))
    return runs


def differences(runs: Sequence[ComparedRun]) -> list[str]:
    """Where the runs differ: the data, and the fields of configurations of the same name."""
    found = []
    first = runs[0]
    for run in runs[1:]:
        data, other = first.record.get("data", {}), run.record.get("data", {})
        changed = [field for field in DATA_FIELDS if data.get(field) != other.get(field)]
        if changed:
            found.append(f"data: {first.label} and {run.label} differ in {', '.join(changed)}")
    configs: dict[str, dict[str, Mapping]] = {}
    for run in runs:
        for result in run.results:
            configs.setdefault(result["name"], {}).setdefault(run.label, result.get("config", {}))
    for name, by_run in configs.items():
        fields = sorted({key for config in by_run.values() for key in config})
        for field in fields:
            values = {label: config.get(field) for label, config in by_run.items()}
            if len(by_run) > 1 and len({repr(value) for value in values.values()}) > 1:
                found.append(f"{name}: {field} " + " vs ".join(f"{value} ({label})" for label, value in values.items()))
    return found


def labelled_results(runs: Sequence[ComparedRun]) -> list[dict]:
    """Every run's results, each configuration named `<run label>.<name>`, its files where they are."""
    return [
        {
            **result,
            "name": f"{run.label}.{result['name']}",
            "folder": str(run.folder / result.get("trial", result["name"])),
        }
        for run in runs
        for result in run.results
    ]


def compare_runs(folders: Sequence[Path], options: Options, log: Callable[[str], None] = print) -> SweepOutcome:
    """Build one summary and report from several run folders into `options.out` (default
    runs/<timestamp>); nothing is retrained.

    Raises:
        UserInputError: for a folder that is not a run folder, or test digits that cannot be
            reloaded as the first run recorded them.
    """
    runs = open_runs(folders)
    first = runs[0].record
    recorded = first.get("data", {})
    loaded = load_prepared(
        options.data or (recorded.get("location") if recorded.get("kind") == "path" else None),
        seed=first.get("seed", options.seed),
        validation_split=first.get("validation_split", options.validation_split),
        quick=bool(first.get("quick")),
        log=log,
    )
    data, source, source_record = loaded.data, loaded.source, loaded.record
    if any(source_record.get(field) != recorded.get(field) for field in DATA_FIELDS):
        raise DataError(
            f"--compare: the test digits of {runs[0].label} came from {recorded.get('kind')} "
            f"{recorded.get('location')}; now {source.describe()} answers; give that data with --data"
        )
    stated = differences(runs)
    for line in stated:
        log(f"Differs: {line}")
    results = labelled_results(runs)
    names = list(dict.fromkeys(result["name"] for result in results))
    reference = options.reference or f"{runs[0].label}.{first.get('reference')}"
    reference = reference if reference in names else names[0]
    out = options.out or default_run_dir()
    with contextlib.closing(prepare_run_dir(out, resume=False)):
        write_json_atomic(out / "run.json", {
            "layout": LAYOUT, "command": options.command, "started_at": now_iso(), "seed": first.get("seed"),
            "repeats": first.get("repeats"), "fuse": first.get("fuse"), "executor": "none (compared)",
            "compared": [str(run.folder) for run in runs], "differences": stated, "reference": reference,
            "data": source_record, "versions": versions(),
        })  # fmt: skip
        views = build_views(out, data, reference, results)
    log("\n" + format_leaderboard(views.rows))
    log(wrapped(VERDICT_LEGEND))
    log(f"\n{len(runs)} runs compared, {len(views.rows)} configuration(s). Report: {out / 'report.html'}")
    for line in findings_lines(views.findings, "What this comparison found:"):  # as a sweep ends
        log(line)
    return SweepOutcome(0, out, views)
