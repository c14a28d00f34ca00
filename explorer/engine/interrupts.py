"""Ctrl-C that is never lost: noted in a flag as well as raised, so a sweep can always tell.

Python raises KeyboardInterrupt wherever the main thread happens to be, and drops it when that is
a garbage-collection callback (a Matplotlib or Keras object being freed): the sweep would then end
with exit code 0 as if nobody had pressed Ctrl-C. While a script's sweep runs, SIGINT goes to a
handler that notes the press and raises as usual; training checks the note before each compiled
call (`callbacks.StopWhenAsked`), the sweep between groups and before it reports success. Every
press raises at once, so a second Ctrl-C stops at once too. A press Python drops is not reported
as "Exception ignored" with a traceback either: it was noted, and the stop comes from the note.
"""

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator


class InterruptNote:
    """Whether Ctrl-C was pressed since the sweep began."""

    def __init__(self) -> None:
        self.pressed = False

    def __call__(self) -> bool:
        return self.pressed

    def handle(self, signum, frame) -> None:
        self.pressed = True
        raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_noted() -> Iterator[Callable[[], bool]]:
    """While the block runs, note every Ctrl-C (see the module's docstring) and yield the question
    "was it pressed?". The handler is installed only from the main thread and outside Jupyter,
    whose kernel has an interrupt of its own; there the question always answers False. The
    previous handler is restored when the block ends."""
    if threading.current_thread() is not threading.main_thread() or "ipykernel" in sys.modules:
        yield lambda: False
        return
    note = InterruptNote()
    previous, previous_hook = signal.signal(signal.SIGINT, note.handle), sys.unraisablehook

    def dropped_press_unreported(unraisable) -> None:
        if not issubclass(unraisable.exc_type, KeyboardInterrupt):
            previous_hook(unraisable)

    sys.unraisablehook = dropped_press_unreported
    try:
        yield note
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = previous_hook


@contextlib.contextmanager
def interrupts_ignored() -> Iterator[None]:
    """While the block runs (the last lines of an interrupted sweep), Ctrl-C does nothing, so they
    are printed whole; from the main thread only, as `interrupts_noted`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
