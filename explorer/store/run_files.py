"""What the run folder keeps of how a sweep was started and what it printed: `run.json` and
`log.txt`.
"""

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from explorer.config.options import Options
from explorer.models.variants import Variant
from explorer.store.files import append_text, now_iso, read_json, write_json_atomic, write_text_atomic
from explorer.store.folders import LAYOUT


class RunLog:
    """The sweep's terminal lines, also appended to the run folder's `log.txt` once it is open (the
    lines before are kept until then), so a run can be read after its terminal is gone; a resume
    appends under a line of its own."""

    def __init__(self, echo: Callable[[str], None]):
        self.echo, self.kept, self.path = echo, [], None

    def __call__(self, line: str) -> None:
        self.echo(line)
        if self.path is None:
            self.kept.append(line)
        else:
            append_text(self.path, line + "\n")

    def keep(self, text: str) -> None:
        """Text for `log.txt` alone (a traceback), not the terminal; dropped before it is open."""
        if self.path is not None:
            append_text(self.path, text if text.endswith("\n") else text + "\n")

    def open(self, path: Path) -> None:
        self.path = path
        append_text(path, f"=== {now_iso()}\n" + "".join(f"{line}\n" for line in self.kept))
        self.kept = []


def write_progress_page(run_dir: Path, page: str) -> None:
    """`report.html` while the run trains (`views.progress_page`); the final report replaces it."""
    write_text_atomic(run_dir / "report.html", page)


def write_run_record(
    run_dir: Path, options: Options, variants: Sequence[Variant], context: dict, log: Callable[[str], None]
) -> None:
    """`run.json`: how the sweep was started (kept from the first start when resuming; a damaged
    one is kept aside, never overwritten)."""
    record = {
        "layout": LAYOUT,
        "command": options.command,
        "started_at": now_iso(),
        "seed": options.seed,
        "validation_split": options.validation_split,
        "quick": options.quick,
        "repeats": options.run_repeats,
        "fuse": options.fused,
        "executor": options.executor,
        "models": [variant.name for variant in variants],
        "reference": options.reference,
        # What --resume RUN continues with (`config.run_settings`), and where the command ran.
        "settings": dict(options.run_settings) if options.run_settings is not None else None,
        "arguments": list(options.argv),
        "working_folder": os.getcwd(),
        **context,
    }
    previous = read_json(run_dir / "run.json") if options.resume is not None else None
    if isinstance(previous, dict) and isinstance(previous.get("command"), str) and "started_at" in previous:
        resumed = previous.get("resumed") if isinstance(previous.get("resumed"), list) else []
        record["resumed"] = [*resumed, {"command": options.command, "at": now_iso()}]
        record["command"], record["started_at"] = previous["command"], previous["started_at"]
    elif (run_dir / "run.json").exists():
        aside = run_dir / f"run.json.damaged-{now_iso().replace(':', '')}"
        os.replace(run_dir / "run.json", aside)
        log(f"run.json was damaged; kept as {aside.name}, and a new one written")
    write_json_atomic(run_dir / "run.json", record)
