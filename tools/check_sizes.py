"""`make lint`'s size check: no module over 400 lines, no function over 60 (house style: a module
fits on a few screens, a function on one). Prints each offender and exits 1 if there is any.

    python tools/check_sizes.py explorer common.py model_builder_seq.py model_builder_loop.py
"""

import ast
import sys
from pathlib import Path

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def offences(path: Path) -> list[str]:
    """What in `path` is over the limits, one line each, as `path:line: what`."""
    source = path.read_text(encoding="utf-8")
    found = []
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES:
        found.append(f"{path}:1: module of {lines} lines (at most {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            start = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
            length = node.end_lineno - start + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{path}:{start}: function {node.name} of {length} lines (at most {MAX_FUNCTION_LINES})")
    return found


def main(arguments: list[str]) -> int:
    paths = [
        file
        for argument in arguments
        for file in (sorted(Path(argument).rglob("*.py")) if Path(argument).is_dir() else [Path(argument)])
    ]
    found = [line for path in paths for line in offences(path)]
    print("\n".join(found) or f"sizes: {len(paths)} files, every module and function within the limits")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
