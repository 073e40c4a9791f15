"""From any paper-bearing text or URL to a Cool Papers target, driven by ``extension/rules.json``.

The grammar lives in that JSON file, which the extension's JS resolver reads too; this module only
interprets it. A resolution is ``{"kind", "ids", "target"}`` or ``None``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

DEFAULT_BASE = "https://papers.cool"
RULES_PATH = Path(os.environ.get("RESOLVER_RULES", Path(__file__).resolve().parents[2] / "extension" / "rules.json"))
CONTEXTS = ("selection", "link", "page", "frame")


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs 3x, and this is built per input
class Resolution:
    kind: str  # "arxiv" | "venue" | "category" | "coolpapers" | "search"
    ids: list[str]
    target: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "ids": list(self.ids), "target": self.target}


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


class _Template:
    """An id template ("{2}@{1}@PMLR") split once into text and group numbers, filled without a regex."""

    def __init__(self, template: str) -> None:
        pieces = re.split(r"\{(\d+)\}", template)
        self.parts = tuple((piece, i % 2 == 1) for i, piece in enumerate(pieces) if piece)
        self.groups = tuple(int(piece) for piece, is_group in self.parts if is_group)

    def fill(self, match: re.Match[str]) -> str:
        values = iter(match.group(*self.groups) if len(self.groups) > 1 else (match.group(self.groups[0]),))
        return "".join((next(values) or "") if is_group else piece for piece, is_group in self.parts)


class _Gate:
    """Which of several rules may match a text, every hint checked in one tight loop (a hot path: every
    input passes it). Exact: a rule is left out only when its hint is absent, as in _Rule.may_match."""

    def __init__(self, rules: list[_Rule]) -> None:
        if any(r.hint_regex is not None and r.hint_substrings for r in rules):
            raise ValueError("rules.json: a rule has either a hintRegex or hintSubstrings, not both")
        self.searches = tuple((i, r.hint_regex.search) for i, r in enumerate(rules) if r.hint_regex is not None)
        self.substrings = tuple((i, hint) for i, r in enumerate(rules) for hint in r.hint_substrings)
        self.open = tuple(i for i, r in enumerate(rules) if r.hint_regex is None and not r.hint_substrings)

    def candidates(self, text: _Text) -> list[int]:
        """Indices of the rules whose hint occurs, in rule order."""
        raw = text.text
        chosen = [i for i, search in self.searches if search(raw) is not None]
        if self.substrings:
            lower = text.lower
            chosen += [i for i, hint in self.substrings if hint in lower]
        if self.open:
            chosen += self.open
        if len(chosen) > 1:
            chosen = sorted(set(chosen))
        return chosen


_HTML_SPACE = " \t\n\r\f"  # what browsers trim from titles; str.strip() would also take Unicode spaces, JS's trim others


class _ArxivForm:
    """One arXiv id form (new id, ADS bibcode, old id, FTP path) and where its groups are."""

    def __init__(self, form: Mapping[str, Any]) -> None:
        self.rule = _Rule(form)
        names = list(form["groups"])
        self.yy = names.index("yy") + 1
        self.mm = names.index("mm") + 1
        self.numbers = tuple(i + 1 for i, name in enumerate(names) if name == "number")
        self.archive = names.index("archive") + 1 if form["scheme"] == "old" else None


class _TitleSearch:
    """The title fallback: which pages are publishers' paper pages, and how their titles are cleaned."""

    def __init__(self, rules: Mapping[str, Any]) -> None:
        flags = {"flags": rules.get("flags", "")}
        self.max_chars = int(rules["maxChars"])
        self.reject = _compile({"pattern": rules["reject"], **flags})
        self.clean = [(_compile({"pattern": c["pattern"], **flags}), c["replace"]) for c in rules["clean"]]
        self.sites = [
            (site["name"], _compile({"pattern": site["page"], **flags}), [_compile({"pattern": p, **flags}) for p in site["strip"]])
            for site in rules["sites"]
        ]

    def site_of(self, page_url: str) -> str | None:
        url = page_url.strip(_HTML_SPACE)
        return next((name for name, page, _ in self.sites if page.match(url)), None)

    def words(self, page_url: str, title: str, split: Callable[[str], list[str]]) -> list[str]:
        url = page_url.strip(_HTML_SPACE)
        site = next((strip for _, page, strip in self.sites if page.match(url)), None)
        if site is None:
            return []
        title = title.strip(_HTML_SPACE)
        # length in code points, as the JS twin counts them
        if not title or len(title) > self.max_chars or self.reject.search(title):
            return []
        for pattern, replacement in self.clean:
            title = pattern.sub(replacement, title)
        for pattern in site:
            title = pattern.sub("", title, count=1)
        return split(title)


class Grammar:
    """The compiled rules. Build one per rules file; it is immutable and thread-safe."""

    def __init__(self, rules: Mapping[str, Any]) -> None:
        self.rules = rules
        arxiv = rules["arxiv"]
        new, old = arxiv["newScheme"], arxiv["oldScheme"]
        self.new_first = int(new["firstYymm"])
        self.four_digit_last = int(new["fourDigitLastYymm"])
        self.five_digit_first = int(new["fiveDigitFirstYymm"])
        self.old_first = _old_month_index(old["firstYymm"])
        self.old_last = _old_month_index(old["lastYymm"])
        self.old_archives = frozenset(old["archives"])
        self.arxiv_forms = [_ArxivForm(form) for form in arxiv["forms"]]
        self.arxiv_gate = _Gate([form.rule for form in self.arxiv_forms])
        self.arxiv_target = arxiv["target"]
        self.venues = [(_Rule(v), _Template(v["id"])) for v in rules["venues"]]
        self.venue_gate = _Gate([rule for rule, _ in self.venues])
        self.venue_target = rules["venueTarget"]
        self.category = _Rule(rules["category"])
        self.category_archives = frozenset(rules["category"]["archives"])
        self.category_target = rules["category"]["target"]
        self.coolpapers = _Rule(rules["coolpapers"])
        self.one_url = _compile(rules["oneUrl"])
        self.title_search = _TitleSearch(rules["titleSearch"])
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
        forms = self.arxiv_gate.candidates(text)
        for index in forms:
            form = self.arxiv_forms[index]
            yy_at, mm_at, number_at, archive_at = form.yy, form.mm, form.numbers, form.archive
            for m in form.rule.pattern.finditer(text.text):
                yy, mm = m.group(yy_at), m.group(mm_at)
                number = next(n for n in m.group(*number_at) if n) if len(number_at) > 1 else m.group(number_at[0])
                if archive_at is None:
                    if self._valid_new(int(yy + mm), int(mm), number):
                        found.append((m.start(), f"{yy}{mm}.{number}"))
                else:
                    archive = m.group(archive_at).lower()
                    if archive in self.old_archives and self._valid_old(int(yy), int(mm), number):
                        found.append((m.start(), f"{archive}/{yy}{mm}{number}"))
        if len(found) < 2:
            return [identifier for _, identifier in found]
        if len(forms) > 1:
            found.sort()  # the forms were scanned separately: back to order of appearance
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
        rules = self.venue_gate.candidates(text)
        for index in rules:
            rule, template = self.venues[index]
            found.extend((m.start(), template.fill(m)) for m in rule.pattern.finditer(text.text))
        if len(found) < 2:
            return [identifier for _, identifier in found]
        if len(rules) > 1:
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
        """Resolve one input; the keyword fallback runs only for a selection that is not one URL."""
        if context not in CONTEXTS:
            raise ValueError(f"context must be one of {', '.join(CONTEXTS)}")
        if not text or not text.strip():
            return None
        found = self._scan(text, base)
        if found is None and context == "selection":
            found = self._search(text, base)
        return found

    def resolve_click(self, info: Mapping[str, Any], base: str = DEFAULT_BASE) -> Resolution | None:
        """A right-click: selection, link, page, frame in that order; the first that yields decides.

        Then the selection's keyword search (unless it is one URL), else the title of a publisher's paper page.
        """
        for key, _context in self.click_order:
            value = info.get(key)
            if isinstance(value, str) and value.strip():
                found = self._scan(value, base)
                if found is not None:
                    return found
        selection = info.get("selectionText")
        if isinstance(selection, str) and selection.strip() and not self.is_one_url(selection):
            return self._search(selection, base)
        page, title = info.get("pageUrl"), info.get("pageTitle")
        if isinstance(page, str) and isinstance(title, str):
            words = self.title_search.words(page, title, self.search_words)
            if words:
                return self._search_words(words, base)
        return None

    def is_one_url(self, text: str) -> bool:
        """Whether ``text`` is one URL (after trimming spaces): such a selection never becomes a keyword search."""
        return self.one_url.match(text) is not None

    def title_site(self, page_url: str) -> str | None:
        """The name of the publisher whose paper page ``page_url`` is (title fallback), or None."""
        return self.title_search.site_of(page_url)

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
        if path is not None and stays_under(base, base + path):
            return Resolution("coolpapers", [], base + path)
        return None

    def _search(self, text: str, base: str) -> Resolution | None:
        if self.is_one_url(text):
            return None
        words = self.search_words(text)
        return self._search_words(words, base) if words else None

    def _search_words(self, words: list[str], base: str) -> Resolution:
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
_ENCODED_DOT = re.compile("%2e", re.IGNORECASE)


def _dot_segment(segment: str) -> int:
    """1 for ".", 2 for "..", else 0; "%2e" counts as a dot, as browsers resolve it."""
    if len(segment) > 6 or not segment:
        return 0
    plain = _ENCODED_DOT.sub(".", segment)
    return {".": 1, "..": 2}.get(plain, 0)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 remove_dot_segments for an absolute path: ".." never climbs above "/"."""
    segments = path.split("/")[1:]
    out: list[str] = []
    for i, segment in enumerate(segments):
        kind = _dot_segment(segment)
        if kind == 0:
            out.append(segment)
            continue
        if kind == 2 and out:
            out.pop()
        if i == len(segments) - 1:
            out.append("")  # "/a/.." is the folder "/", not "/a"
    return "/" + "/".join(out)


def _safe_path(path: str) -> str:
    """Re-encode a papers.cool path so that it stays a path on the base (no scheme, no host, no quotes, no ..)."""
    path = "/" + path.lstrip("/")
    path = re.sub("[\ud800-\udfff]", "\ufffd", path)  # lone surrogates (from JSON) cannot be UTF-8 encoded
    path = path.split("#", 1)[0]
    head, mark, query = path.partition("?")
    path = _remove_dot_segments(head) + mark + query
    return _UNSAFE_PATH.sub(lambda m: quote(m.group(0), safe=""), path)


def stays_under(base: str, target: str) -> bool:
    """Whether a browser following ``target`` stays under ``base``: same prefix, no dot segment in the path."""
    base = base.rstrip("/")
    if not target.startswith(base + "/"):
        return False
    return not has_dot_segments(target[len(base) :].split("?", 1)[0].split("#", 1)[0])


def has_dot_segments(path: str) -> bool:
    """Whether a URL path has a "." or ".." segment (also spelled with %2e), which browsers resolve."""
    return any(_dot_segment(segment) for segment in path.split("/"))


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
