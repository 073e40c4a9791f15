"""From any paper-bearing text or URL to a Cool Papers target, driven by ``extension/rules.json``.

The grammar lives in that JSON file, which the extension's JS resolver reads too; this module only
interprets it. A resolution is ``{"kind", "ids", "target"}`` or ``None``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

DEFAULT_BASE = "https://papers.cool"
RULES_PATH = Path(os.environ.get("RESOLVER_RULES", Path(__file__).resolve().parents[2] / "extension" / "rules.json"))
CONTEXTS = ("selection", "link", "page", "frame")


@dataclass(frozen=True)
class Resolution:
    kind: str  # "arxiv" | "venue" | "category" | "coolpapers" | "search"
    ids: list[str]
    target: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _compile(rule: Mapping[str, Any]) -> re.Pattern[str]:
    # ASCII-only case folding, as JS RegExp's "i" (without "u") does: Python's Unicode folding would
    # also let "ſ", "K" (Kelvin), "ı" and "İ" match ASCII letters, which the JS resolver cannot.
    return re.compile(rule["pattern"], (re.IGNORECASE | re.ASCII) if "i" in rule.get("flags", "") else 0)


class _Text:
    """An input being scanned, with its lower-cased copy made once and only if a hint needs it."""

    __slots__ = ("text", "_lower")

    def __init__(self, text: str) -> None:
        self.text = text
        self._lower: str | None = None

    @property
    def lower(self) -> str:
        if self._lower is None:
            self._lower = self.text.lower()
        return self._lower


class _Rule:
    """A compiled pattern and its hints: the pattern runs only where every match could be."""

    def __init__(self, rule: Mapping[str, Any]) -> None:
        self.pattern = _compile(rule)
        self.hint_regex = re.compile(rule["hintRegex"]) if "hintRegex" in rule else None
        self.hint_substrings = tuple(rule.get("hintSubstrings", ()))

    def may_match(self, text: _Text) -> bool:
        if self.hint_regex is not None and self.hint_regex.search(text.text) is None:
            return False
        if self.hint_substrings:
            lower = text.lower
            for hint in self.hint_substrings:  # noqa: SIM110 (a plain loop: this runs per input on a hot path)
                if hint in lower:
                    return True
            return False
        return True

    def finditer(self, text: _Text) -> Iterator[re.Match[str]]:
        return self.pattern.finditer(text.text) if self.may_match(text) else iter(())


def _fill(template: str, match: re.Match[str]) -> str:
    return re.sub(r"\{(\d+)\}", lambda m: match.group(int(m.group(1))) or "", template)


class Grammar:
    """The compiled rules. Build one per rules file; it is immutable and thread-safe."""

    def __init__(self, rules: Mapping[str, Any]) -> None:
        self.rules = rules
        arxiv = rules["arxiv"]
        self.new_id = _Rule(arxiv["new"])
        self.new_first = int(arxiv["new"]["firstYymm"])
        self.four_digit_last = int(arxiv["new"]["fourDigitLastYymm"])
        self.five_digit_first = int(arxiv["new"]["fiveDigitFirstYymm"])
        self.old_id = _Rule(arxiv["old"])
        self.old_first = _old_month_index(arxiv["old"]["firstYymm"])
        self.old_last = _old_month_index(arxiv["old"]["lastYymm"])
        self.old_archives = frozenset(arxiv["old"]["archives"])
        self.arxiv_target = arxiv["target"]
        self.venues = [(_Rule(v), v["id"]) for v in rules["venues"]]
        self.venue_target = rules["venueTarget"]
        self.category = _Rule(rules["category"])
        self.category_archives = frozenset(rules["category"]["archives"])
        self.category_target = rules["category"]["target"]
        self.coolpapers = _Rule(rules["coolpapers"])
        self.search_word = re.compile(rules["search"]["wordPattern"]["python"])
        self.search_max_words = int(rules["search"]["maxWords"])
        self.search_target = rules["search"]["target"]
        self.max_ids = int(rules["maxIdsPerTarget"])
        self.decode_rounds = int(rules["decode"]["rounds"])
        self.click_order = [tuple(pair) for pair in rules["clickOrder"]]

    # --- scanning -----------------------------------------------------------------------------
    def decode(self, text: str) -> str:
        """Percent-decode repeatedly (redirect links nest encodings); broken escapes stay as they are."""
        for _ in range(self.decode_rounds):
            if "%" not in text:
                break
            decoded = unquote(text, errors="replace")
            if decoded == text:
                break
            text = decoded
        return text.replace("\x00", " ")

    def arxiv_ids(self, text: str | _Text) -> list[str]:
        """Canonical arXiv ids (no version, no subject class), deduplicated in order of appearance."""
        text = _as_text(text)
        found: list[tuple[int, str]] = []
        for m in self.new_id.finditer(text):
            yy, mm, number = m.group(1, 2, 3)
            if self._valid_new(int(yy + mm), int(mm), number):
                found.append((m.start(), f"{yy}{mm}.{number}"))
        if self.old_id.may_match(text):
            for m in self.old_id.pattern.finditer(text.text):
                archive, _, yy, mm, number = m.group(1, 2, 3, 4, 5)
                if archive in self.old_archives and self._valid_old(int(yy), int(mm), number):
                    found.append((m.start(), f"{archive}/{yy}{mm}{number}"))
            found.sort()  # the two schemes were scanned separately: back to order of appearance
        return list(dict.fromkeys(identifier for _, identifier in found))

    def _valid_new(self, yymm: int, month: int, number: str) -> bool:
        if not 1 <= month <= 12 or yymm < self.new_first or int(number) == 0:
            return False
        if len(number) == 4:
            return yymm <= self.four_digit_last
        return yymm >= self.five_digit_first

    def _valid_old(self, yy: int, month: int, number: str) -> bool:
        if not 1 <= month <= 12 or int(number) == 0:
            return False
        return self.old_first <= _old_month_index(f"{yy:02d}{month:02d}") <= self.old_last

    def venue_ids(self, text: str | _Text) -> list[str]:
        text = _as_text(text)
        found: list[tuple[int, str]] = []
        for rule, template in self.venues:
            if rule.may_match(text):
                found.extend((m.start(), _fill(template, m)) for m in rule.pattern.finditer(text.text))
        found.sort()
        return list(dict.fromkeys(identifier for _, identifier in found))

    def category_of(self, text: str | _Text) -> str | None:
        for m in self.category.finditer(_as_text(text)):
            category = m.group(1)
            if category.split(".")[0] in self.category_archives:
                return category
        return None

    def coolpapers_path(self, text: str | _Text) -> str | None:
        for m in self.coolpapers.finditer(_as_text(text)):
            return _safe_path(m.group(1) or "/")
        return None

    def search_words(self, text: str) -> list[str]:
        return self.search_word.findall(text)[: self.search_max_words]

    # --- resolution ---------------------------------------------------------------------------
    def resolve(self, text: str | None, context: str = "selection", base: str = DEFAULT_BASE) -> Resolution | None:
        """Resolve one input; the keyword fallback runs only for a selection."""
        if context not in CONTEXTS:
            raise ValueError(f"context must be one of {', '.join(CONTEXTS)}")
        if not text or not text.strip():
            return None
        found = self._scan(text, base)
        if found is None and context == "selection":
            found = self._search(text, base)
        return found

    def resolve_click(self, info: Mapping[str, Any], base: str = DEFAULT_BASE) -> Resolution | None:
        """A right-click: selection, link, page, frame in that order; the first that yields decides."""
        for key, _context in self.click_order:
            value = info.get(key)
            if isinstance(value, str) and value.strip():
                found = self._scan(value, base)
                if found is not None:
                    return found
        selection = info.get("selectionText")
        if isinstance(selection, str) and selection.strip():
            return self._search(selection, base)
        return None

    def _scan(self, raw: str, base: str) -> Resolution | None:
        text = _Text(self.decode(raw))
        base = base.rstrip("/")
        ids = self.arxiv_ids(text)
        if ids:
            return Resolution("arxiv", ids, base + self.arxiv_target.format(ids=",".join(ids[: self.max_ids])))
        ids = self.venue_ids(text)
        if ids:
            return Resolution("venue", ids, base + self.venue_target.format(ids=",".join(ids[: self.max_ids])))
        category = self.category_of(text)
        if category:
            return Resolution("category", [category], base + self.category_target.format(category=category))
        path = self.coolpapers_path(text)
        if path is not None:
            return Resolution("coolpapers", [], base + path)
        return None

    def _search(self, text: str, base: str) -> Resolution | None:
        words = self.search_words(text)
        if not words:
            return None
        query = quote(" ".join(words), safe="")
        return Resolution("search", [], base.rstrip("/") + self.search_target.format(query=query))


def _as_text(text: str | _Text) -> _Text:
    return text if isinstance(text, _Text) else _Text(text)


def _old_month_index(yymm: str) -> int:
    """Months since 1900 for an old-scheme YYMM (91..99 are the 1990s, 00..07 the 2000s)."""
    yy, mm = int(yymm[:2]), int(yymm[2:])
    year = 1900 + yy if yy >= 91 else 2000 + yy
    return year * 12 + mm


_UNSAFE_PATH = re.compile(r"[^A-Za-z0-9\-._~/,@+=&?%:]")


def _safe_path(path: str) -> str:
    """Re-encode a papers.cool path so that it stays a path on the base (no scheme, no host, no quotes)."""
    path = "/" + path.lstrip("/")
    path = re.sub("[\ud800-\udfff]", "\ufffd", path)  # lone surrogates (from JSON) cannot be UTF-8 encoded
    path = path.split("#", 1)[0]
    return _UNSAFE_PATH.sub(lambda m: quote(m.group(0), safe=""), path)


@lru_cache(maxsize=4)
def load_grammar(path: str | Path = RULES_PATH) -> Grammar:
    with open(path, encoding="utf-8") as handle:
        return Grammar(json.load(handle))


def resolve(text: str | None, context: str = "selection", base: str = DEFAULT_BASE) -> Resolution | None:
    """Resolve ``text`` met in ``context`` ("selection", "link", "page" or "frame")."""
    return load_grammar().resolve(text, context, base)


def resolve_click(info: Mapping[str, Any], base: str = DEFAULT_BASE) -> Resolution | None:
    """Resolve a right-click ``{"selectionText", "linkUrl", "pageUrl", "frameUrl"}`` (any subset)."""
    return load_grammar().resolve_click(info, base)
