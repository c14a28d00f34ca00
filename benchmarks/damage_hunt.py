"""Damage hunt: damage a finished or an interrupted full-MNIST sweep's files one way at a time, then
`--compare` and `--resume` it, and check that each ends as it should.

    python benchmarks/damage_hunt.py --data ../shared/data/mnist

The sweep is the kill hunt's (three networks, three epochs; `a` and `b` fused, `c` alone). One run
goes uninterrupted, for reference; one is stopped after its fused group trained, before any file
of it was recorded (the group's checkpoint then holds every epoch). Each case copies one of them,
damages it, and checks:
- `--compare RUN REFERENCE` (finished runs): exit 0, no traceback, the damaged model left out
  (all but a damaged `model.keras`, which the summaries do not read: that model stays in them, and
  only the report's drawing panel leaves it out, with a note);
- `--resume RUN`, given nothing else: exit 0, no traceback, the line that names what was set aside,
  and the numbers: every model as in the reference run, exactly where it trained as there (a fused
  group trained again from its start), within the fused-equals-alone tolerance where a damaged
  member was retrained alone (test loss within 1e-4 relative, as tests/test_fusion.py; test
  accuracy within 2 of the 10,000 test digits).
It prints a line per case and a tally, and exits 1 when any check failed.
"""

import argparse
import json
import math
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from kill_hunt import MODELS, PROJECT, SWEEP, command, histories, results


def set_field(field: str, value: object) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        record = json.loads((run / "a" / "result.json").read_text())
        (run / "a" / "result.json").write_text(json.dumps({**record, field: value}))

    return damage


def write(path: str, content: bytes) -> Callable[[Path], None]:
    return lambda run: (run / path).write_bytes(content)


def last_loss_nan(run: Path) -> None:
    lines = (run / "a" / "history.csv").read_text().splitlines()
    header, last = lines[0].split(","), lines[-1].split(",")
    last[header.index("val_loss")] = "nan"
    (run / "a" / "history.csv").write_text("\n".join([*lines[:-1], ",".join(last)]) + "\n")


def history_rows(keep: int | None, extra: bool = False) -> Callable[[Path], None]:
    def damage(run: Path, model: str = "a") -> None:
        lines = (run / model / "history.csv").read_text().splitlines()
        kept = lines[: 1 + keep] if keep is not None else lines
        if extra:
            kept.append(lines[-1].replace(lines[-1].split(",")[0], str(len(lines) - 1), 1))
        (run / model / "history.csv").write_text("\n".join(kept) + "\n")

    return damage


def predictions_out_of_range(run: Path) -> None:
    np.save(run / "a" / "test_predictions.npy", np.full(10_000, 12, np.uint8))


def fused_checkpoint(run: Path) -> Path:
    (group,) = list((run / ".fused").glob("*"))
    return group


def group_json_garbage_and_history_lost(run: Path) -> None:
    (fused_checkpoint(run) / "group.json").write_text("{not json")
    (run / "b" / "history.csv").unlink()


def group_json_deleted_and_history_cut(run: Path) -> None:
    (fused_checkpoint(run) / "group.json").unlink()
    history_rows(1)(run, "b")


def every_generation_damaged(run: Path) -> None:
    for saved in fused_checkpoint(run).glob("epoch-*"):
        (saved / "latest.weights.h5").write_bytes(b"\x89HDF damaged")


# (name, which run it damages, the damage, what the resume must say, models retrained alone)
FINISHED, INTERRUPTED = "finished", "interrupted"
CASES = [
    ("train_seconds is a word", FINISHED, set_field("train_seconds", "fast"), "train_seconds = 'fast'", {"a"}),
    ("result.json of open brackets", FINISHED, write("a/result.json", b"[" * 100_000), "cannot be read as JSON", {"a"}),
    ("config is not a table", FINISHED, set_field("config", [1, 2]), "not a table of the network's fields", {"a"}),
    ("NaN in a finished history", FINISHED, last_loss_nan, "loss that is not a number", {"a"}),
    ("result.json deleted", FINISHED, lambda run: (run / "a" / "result.json").unlink(), "result.json is missing", {"a"}),
    ("pickled predictions", FINISHED, write("a/test_predictions.npy", pickle.dumps([1, 2])), "test_predictions.npy", {"a"}),
    ("predicted digits out of range", FINISHED, predictions_out_of_range, "one digit for each", {"a"}),
    ("history one row short", FINISHED, history_rows(2), "history.csv holds 2 epoch(s)", {"a"}),
    ("history one row longer", FINISHED, history_rows(None, extra=True), "history.csv holds 4 epoch(s)", {"a"}),
    ("model.keras truncated", FINISHED, write("a/model.keras", b"PK\x03\x04"), "model.keras is not a complete", {"a"}),
    ("group.json garbage, a member's history lost", INTERRUPTED, group_json_garbage_and_history_lost,
     "group.json is missing or damaged", set()),
    ("group.json deleted, a member's history cut", INTERRUPTED, group_json_deleted_and_history_cut,
     "group.json is missing or damaged", set()),
    ("every checkpoint generation unreadable", INTERRUPTED, every_generation_damaged,
     "could not be read; training from the first epoch", set()),
]  # fmt: skip


def run(arguments: list[str]) -> subprocess.CompletedProcess:
    environment = {**os.environ, "KERAS_BACKEND": "jax"}
    return subprocess.run(arguments, env=environment, cwd=PROJECT, capture_output=True, text=True)


def compare_check(folder: Path, reference_run: Path, damaged: set[str]) -> bool:
    """`--compare` of the damaged run beside the reference run: exit 0, no traceback, the damaged
    models not summarized (rows are named `<run folder>.<name>`)."""
    out = folder.with_name(folder.name + "-compared")
    arguments = ["--compare", str(folder), str(reference_run), "--out", str(out)]
    done = run([sys.executable, str(PROJECT / "model_builder_loop.py"), *arguments])
    if done.returncode != 0 or "Traceback" in done.stderr:
        return False
    rows = json.loads((out / "summary.json").read_text())
    return not {f"{folder.name}.{name}" for name in damaged} & {row["name"] for row in rows}


def numbers_check(folder: Path, reference: dict, alone: set[str]) -> bool:
    after, tables = results(folder), histories(folder)
    for model in MODELS:
        expected, got = reference["results"][model], after.get(model)
        if got is None:
            return False
        if model in alone:
            close = math.isclose(got["test_loss"], expected["test_loss"], rel_tol=1e-4)
            if not close or abs(got["test_accuracy"] - expected["test_accuracy"]) > 2e-4:
                return False
        elif tables[model] != reference["histories"][model] or got["test_accuracy"] != expected["test_accuracy"]:
            return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder of the four official MNIST files")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="damage-hunt-"))
    config = base / "sweep.toml"
    config.write_text(SWEEP)
    started = time.perf_counter()
    run(command(config, args.data, "--out", str(base / FINISHED))).check_returncode()
    reference = {"histories": histories(base / FINISHED), "results": results(base / FINISHED)}
    environment = {**os.environ, "KERAS_BACKEND": "jax", "EXPLORER_PAUSE_AT": "trained"}
    paused = subprocess.Popen(command(config, args.data, "--out", str(base / INTERRUPTED)), env=environment,
                              cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    for line in paused.stdout:
        if line.startswith("paused at"):
            break
    paused.kill()
    paused.wait()
    print(f"reference and interrupted runs: {time.perf_counter() - started:.0f} s; cases in {base}", flush=True)
    tally = []
    for number, (name, source, damage, said, alone) in enumerate(CASES):
        folder = base / f"case-{number:02d}"
        shutil.copytree(base / source, folder)
        damage(folder)
        left_out = set() if name == "model.keras truncated" else alone  # the summaries never read model.keras
        compared = compare_check(folder, base / FINISHED, left_out) if source == FINISHED else None
        resumed = run([sys.executable, str(PROJECT / "model_builder_loop.py"), "--resume", str(folder)])
        clean = resumed.returncode == 0 and "Traceback" not in resumed.stderr
        record = {"case": name, "compare_ok": compared, "resume_exit": resumed.returncode, "clean": clean,
                  "said": said in resumed.stdout, "numbers": clean and numbers_check(folder, reference, alone)}  # fmt: skip
        tally.append(record)
        print(json.dumps(record), flush=True)
    good = [r for r in tally if r["clean"] and r["said"] and r["numbers"] and r["compare_ok"] is not False]
    print(f"{len(good)}/{len(tally)} damage cases clean (compare, resume in one run, the line said, the numbers)")
    return 0 if len(good) == len(tally) else 1


if __name__ == "__main__":
    sys.exit(main())
