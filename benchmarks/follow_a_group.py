"""Follow one fused group through the engine: the calls from one of its modules into another, how
often the path enters a module again after it had left it, and how many calls come back into a
module already on the call stack.

    python benchmarks/follow_a_group.py

A two-network sweep (one fused group, one epoch, one run) on generated digits goes through
`explorer.sweep`; every call from one `explorer` module into another while the local executor runs
the group (`run_groups_locally`) is noted by a profile hook, once per caller and callee function
(a call made every batch or epoch counts once; generated methods such as a dataclass's `__eq__`
are left out). A call into a module that is already on the stack, under a call into another
module, is a return: the path went down and came back. Run from any checkout (it uses only
`explorer.sweep`), so two versions can be compared.
"""

import collections
import sys
import tempfile
from pathlib import Path

import numpy as np


def module_of(frame) -> str | None:
    name = frame.f_globals.get("__name__", "")
    return name if name.startswith("explorer.") else None


def follow() -> tuple[list, set]:
    """The cross-module calls (caller, callee) made while the group trains, and those that come
    back into a module already on the stack."""
    from explorer import sweep

    rng = np.random.default_rng(0)
    folder = Path(tempfile.mkdtemp(prefix="follow-"))
    x = rng.integers(0, 256, (700, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, 700).astype(np.uint8)
    np.savez(folder / "digits.npz", x_train=x[:600], y_train=y[:600], x_test=x[600:], y_test=y[600:])
    calls, returns, stack = {}, set(), []  # calls in first-made order; stack: outermost first

    def hook(frame, event, arg):
        name, module = frame.f_code.co_name, module_of(frame)
        if module is None or name.startswith("__") or name == "<lambda>":
            return
        if event == "call":
            if name == "run_groups_locally" or stack:
                caller = stack[-1] if stack else None
                if caller is not None and caller[0] != module:
                    edge = (f"{caller[0]}.{caller[1]}", f"{module}.{name}")
                    calls.setdefault(edge, None)
                    if module in {entry[0] for entry in stack}:
                        returns.add(edge)
                stack.append((module, name))
        elif event == "return" and stack and stack[-1] == (module, name):
            stack.pop()

    networks = {"first": {"hidden_units": [16], "epochs": 1}, "second": {"hidden_units": [8], "epochs": 1}}
    sys.setprofile(hook)
    try:
        outcome = sweep(networks, data=str(folder / "digits.npz"), out=str(folder / "run"), log=lambda line: None)
    finally:
        sys.setprofile(None)
    assert outcome.exit_code == 0, outcome.exit_code
    return list(calls), returns


def reentries(calls: list) -> collections.Counter:
    """Reading the calls in the order first made: how often the path enters a module again after
    it had gone into others (the way a reader following the group would count it)."""
    entered, counts, previous = set(), collections.Counter(), None
    for _, callee in calls:
        module = callee.rsplit(".", 1)[0]
        if module in entered and module != previous:
            counts[module] += 1
        entered.add(module)
        previous = module
    return counts


def main() -> None:
    calls, returns = follow()
    short = lambda name: name.removeprefix("explorer.")  # noqa: E731
    print(f"calls from one engine module into another (distinct): {len(calls)}")
    print(f"returns to a module already on the stack: {len(returns)}")
    for caller, callee in sorted(returns):
        print(f"  {short(caller)} -> {short(callee)}")
    again = reentries(calls)
    print(f"modules entered again after the path had left them: {sum(again.values())} "
          f"({', '.join(f'{short(m)} {n}' for m, n in again.most_common())})")  # fmt: skip
    owners = ("explorer.store.trial_folder", "explorer.store.group_checkpoint")
    around = sorted({f"{short(a)} -> {short(b)}" for a, b in calls
                     if a.startswith("explorer.engine.") and b.startswith("explorer.store.") and not b.startswith(owners)})  # fmt: skip
    print(f"engine calls into the store other than its two owners (trial_folder, group_checkpoint): {len(around)}")
    for edge in around:
        print(f"  {edge}")
    modules = collections.Counter(callee.rsplit(".", 1)[0] for _, callee in calls)
    print("calls into each module:", ", ".join(f"{short(m)} {n}" for m, n in modules.most_common()))


if __name__ == "__main__":
    main()
