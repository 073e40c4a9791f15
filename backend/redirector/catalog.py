"""What the local Cool-Papers-compatible pages show: entries with their outbound links.

No network: titles come from a small shipped catalog; any other valid id still gets its links.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from backend.redirector.resolver import load_grammar

CATALOG_PATH = Path(__file__).with_name("data") / "catalog.json"


@dataclass(frozen=True)
class Entry:
    """One paper as a page lists it."""

    id: str
    source: str  # "arXiv" or the venue name
    title: str | None
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    summary: str = ""
    links: list[tuple[str, str]] = field(default_factory=list)  # (label, url)


@lru_cache(maxsize=1)
def _catalog() -> dict[str, dict]:
    with open(CATALOG_PATH, encoding="utf-8") as handle:
        return {paper["id"]: paper for paper in json.load(handle)["arxiv"]}


def arxiv_entry(paper_id: str, public_base: str) -> Entry:
    paper = _catalog().get(paper_id, {})
    return Entry(
        id=paper_id,
        source="arXiv",
        title=paper.get("title"),
        authors=paper.get("authors", []),
        categories=paper.get("categories", []),
        summary=paper.get("summary", ""),
        links=[
            ("arXiv", f"https://arxiv.org/abs/{paper_id}"),
            ("PDF", f"https://arxiv.org/pdf/{paper_id}"),
            ("Cool Papers", f"{public_base}/arxiv/{paper_id}"),
        ],
    )


def _fill_parts(template: str, m: re.Match[str]) -> str:
    return re.sub(r"\{(\d+)\}", lambda g: m.group(int(g.group(1))) or "", template)


# Outbound links that rules.json's display.source cannot spell (zero-padded numbers).
_PADDED_SOURCES = {"IJCAI": lambda m: f"https://www.ijcai.org/proceedings/{m[2]}/{int(m[1]):04d}.pdf"}


def venue_entry(venue_id: str, public_base: str) -> Entry | None:
    """The entry for a ``/venue/`` id such as ``B18WgG-CZ@OpenReview``; None when the form is unknown.

    The id forms and the venues' own pages come from rules.json (``venues[].display``), as in the extension.
    """
    for venue in load_grammar().rules["venues"]:
        display = venue["display"]
        m = re.match(display["pattern"], venue_id)
        if m is None:
            continue
        links = []
        if "source" in display:
            links.append((venue["name"], _fill_parts(display["source"], m)))
        elif venue["name"] in _PADDED_SOURCES:
            links.append((venue["name"], _PADDED_SOURCES[venue["name"]](m)))
        links.append(("Cool Papers", f"{public_base}/venue/{quote(venue_id, safe='@,-._')}"))
        return Entry(id=venue_id, source=venue["name"], title=None, links=links)
    return None


def parse_arxiv_spec(spec: str) -> tuple[list[str], list[str]] | None:
    """Split an ``/arxiv/<spec>`` path into (paper ids, categories); None if any part is neither."""
    grammar = load_grammar()
    ids: list[str] = []
    categories: list[str] = []
    for part in spec.split(","):
        part = part.strip()
        found = grammar.arxiv_ids(part)
        if len(found) == 1 and _is_whole_id(part, found[0]):
            ids.append(found[0])
            continue
        # category unions and exclusions, e.g. cs.AI+cs.LG-cs.CY
        names = [name for name in re.split(r"[+-](?=[a-z])", part) if name]
        if names and all(grammar.category_of(f"arxiv.org/list/{name}") == name for name in names):
            categories.append(part)
            continue
        return None
    return ids, categories


def _is_whole_id(part: str, canonical: str) -> bool:
    """The part is an id (with an optional version or subject class), not a longer string containing one."""
    stripped = re.sub(r"v[0-9]+$", "", part)
    stripped = re.sub(r"^([a-z-]+)\.[A-Z]{2}/", r"\1/", stripped)
    return stripped in {canonical, "arXiv:" + canonical, "arxiv:" + canonical}


def papers_in_category(category: str) -> list[str]:
    """Catalog papers listed under a category expression (``a+b-c``: union of a and b, minus c)."""
    include, exclude = set(), set()
    for sign, name in re.findall(r"(^|[+-])([a-z][A-Za-z.-]*?)(?=[+-][a-z]|$)", category):
        (exclude if sign == "-" else include).add(name)

    def listed(paper: dict, names: set[str]) -> bool:
        return any(cat == name or cat.split(".")[0] == name for cat in paper["categories"] for name in names)

    return [pid for pid, paper in _catalog().items() if listed(paper, include) and not listed(paper, exclude)]


# Words that carry no topic: searched for only when a query has nothing else, never highlighted
# (a highlighted "is" in every line says nothing). English function words of the kind search engines skip.
STOP_WORDS = frozenset(
    ["a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "no", "nor", "not", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "via", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours"]
)


def content_words(words: list[str]) -> list[str]:
    """The query words that carry meaning (stop words dropped)."""
    return [w for w in words if w.lower() not in STOP_WORDS]


def search(words: list[str]) -> list[tuple[str, int]]:
    """Catalog papers whose title or summary contain the words (case-insensitive), best first."""
    needles = [w.lower() for w in (content_words(words) or words)]
    scored = []
    for pid, paper in _catalog().items():
        haystack = f"{paper['title']} {paper['summary']}".lower()
        score = sum(haystack.count(word) for word in needles)
        if score:
            scored.append((pid, score))
    return sorted(scored, key=lambda item: -item[1])


def highlight(text: str, words: list[str]) -> list[tuple[str, bool]]:
    """Split ``text`` into (chunk, is_match) pieces; the template escapes every chunk.

    Only content words are marked, each from the start of a word ("rank" marks "ranking", not "crank").
    """
    words = content_words(words)
    if not words:
        return [(text, False)]
    alternatives = "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
    pattern = re.compile(rf"(?<![^\W_])(?:{alternatives})", re.IGNORECASE)
    pieces, last = [], 0
    for m in pattern.finditer(text):
        if m.start() > last:
            pieces.append((text[last : m.start()], False))
        pieces.append((m.group(0), True))
        last = m.end()
    if last < len(text):
        pieces.append((text[last:], False))
    return pieces


def all_arxiv_ids() -> list[str]:
    return list(_catalog())
