"""English text that ships with Python itself, for training and benchmarking without any download.

The corpus is the interpreter's help topics (``pydoc_data.topics``) followed by the docstrings of the
standard library's modules, classes and functions, in sorted file order, one stripped line per line.
It is deterministic for a given Python version.
"""

from __future__ import annotations

import ast
import sysconfig
import unicodedata
from collections.abc import Iterator
from pathlib import Path

_SKIP_DIRS = {"test", "tests", "site-packages", "idlelib", "lib2to3", "__pycache__", "turtledemo"}


def _help_topics() -> Iterator[str]:
    from pydoc_data.topics import topics

    for key in sorted(topics):
        yield topics[key]


def _docstrings() -> Iterator[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        if _SKIP_DIRS.intersection(path.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    yield doc


def corpus_lines(min_bytes: int = 1_500_000) -> list[str]:
    """At least ``min_bytes`` of UTF-8 text (if the interpreter has that much), as non-empty lines."""
    lines: list[str] = []
    size = 0
    for block in _chain():
        for line in block.splitlines():
            line = unicodedata.normalize("NFC", line.strip())
            if not line:
                continue
            lines.append(line)
            size += len(line.encode("utf-8")) + 1
        if size >= min_bytes:
            break
    return lines


def _chain() -> Iterator[str]:
    yield from _help_topics()
    yield from _docstrings()
