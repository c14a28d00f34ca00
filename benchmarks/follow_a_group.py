"""Follow one fused group through the engine: which of the engine's modules it enters, in order,
and how many times it comes back into a module it had left.

    python benchmarks/follow_a_group.py

A two-network sweep (one fused group, one epoch, one run) on generated digits goes through
`explorer.sweep`; every call from one `explorer` module into another, while the local executor runs
the group (`run_groups_locally`), is noted by a profile hook. A module entered again after the path
went elsewhere counts as one return. Run from any checkout (it uses only `explorer.sweep`), so two
versions can be compared.
"""

import collections
import sys
import tempfile
from pathlib import Path

import numpy as np


def module_of(frame) -> str | None:
    name = frame.f_globals.get("__name__", "")
    return name if name.startswith("explorer.") else None


def follow() -> list[str]:
    """The modules entered (a call from another explorer module), in order, while the group trains."""
    from explorer import sweep

    rng = np.random.default_rng(0)
    folder = Path(tempfile.mkdtemp(prefix="follow-"))
    x = rng.integers(0, 256, (700, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, 700).astype(np.uint8)
    np.savez(folder / "digits.npz", x_train=x[:600], y_train=y[:600], x_test=x[600:], y_test=y[600:])
    entered: list[str] = []
    depth = {"inside": 0}

    def hook(frame, event, arg):
        if event != "call":
            if event == "return" and frame.f_code.co_name == "run_groups_locally":
                depth["inside"] -= 1
            return
        if frame.f_code.co_name == "run_groups_locally":
            depth["inside"] += 1
        callee, caller = module_of(frame), frame.f_back and module_of(frame.f_back)
        if depth["inside"] and callee and caller and callee != caller:
            entered.append(callee)

    networks = {"first": {"hidden_units": [16], "epochs": 1}, "second": {"hidden_units": [8], "epochs": 1}}
    sys.setprofile(hook)
    try:
        outcome = sweep(networks, data=str(folder / "digits.npz"), out=str(folder / "run"), log=lambda line: None)
    finally:
        sys.setprofile(None)
    assert outcome.exit_code == 0, outcome.exit_code
    return entered


def main() -> None:
    entered = follow()
    path = [module for index, module in enumerate(entered) if index == 0 or module != entered[index - 1]]
    seen, returns = set(), collections.Counter()
    for module in path:
        if module in seen:
            returns[module] += 1
        seen.add(module)
    print("modules entered, in order:", " -> ".join(name.removeprefix("explorer.") for name in path))
    print(f"returns to a module it had left: {sum(returns.values())}")
    for module, count in returns.most_common():
        print(f"  {module.removeprefix('explorer.')}: {count}")


if __name__ == "__main__":
    main()
