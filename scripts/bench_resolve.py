"""Throughput of the resolver against the reference extension's single-regex logic (v0.2.0), in one run.

The anchor re-implements the reference background.js in Python: for each input, the patterns in a fixed
order, the first that matches wins, no boundaries, no validation. Ratios are what to read; absolute numbers
move with the machine.

    python scripts/bench_resolve.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import re
import time
from urllib.parse import quote

from tqdm import tqdm

from backend.redirector.resolver import load_grammar

REFERENCE_PATTERNS = [
    ("arxiv", re.compile(r"[0-9]{4}\.[0-9]{4,5}")),
    ("openreview", re.compile(r"(?<=openreview\.net/)(?:.*?id=)([A-Za-z0-9]+)")),
    ("ijcai", re.compile(r"(?<=ijcai\.org/proceedings/)(\d+)/(\d+)")),
    ("acl", re.compile(r"(?<=aclanthology.org/)([A-Za-z0-9\-\.]+)(?=(/|\.pdf))")),
    ("pmlr", re.compile(r"(?<=proceedings\.mlr\.press/)(v\d+)/([A-Za-z0-9\-]+)(?=\.html)")),
]


def reference_resolve(text: str) -> list[str] | None:
    """The reference extension's per-input logic: the first pattern with any match gives all its matches."""
    for _name, pattern in REFERENCE_PATTERNS:
        found = [m.group(0) for m in pattern.finditer(text)]
        if found:
            return found
    return None


def make_urls(rng: random.Random, count: int) -> list[str]:
    forms = [
        lambda: f"https://arxiv.org/abs/{rng.randint(15, 25)}{rng.randint(1, 12):02d}.{rng.randint(1, 29999):05d}v{rng.randint(1, 4)}",
        lambda: f"https://arxiv.org/pdf/{rng.randint(15, 25)}{rng.randint(1, 12):02d}.{rng.randint(1, 29999):05d}.pdf",
        lambda: f"https://huggingface.co/papers/{rng.randint(20, 25)}{rng.randint(1, 12):02d}.{rng.randint(1, 29999):05d}",
        lambda: f"https://openreview.net/forum?id={''.join(rng.choices('abcdefghijkLMNOP0123456789_-', k=10))}",
        lambda: f"https://aclanthology.org/2024.acl-long.{rng.randint(1, 900)}/",
        lambda: f"https://proceedings.mlr.press/v{rng.randint(100, 250)}/smith{rng.randint(10, 24)}a.html",
        lambda: f"https://example.com/blog/{rng.randint(1, 10**6)}/post-title-goes-here",
        lambda: f"https://arxiv.org/abs/hep-th/99{rng.randint(1, 12):02d}{rng.randint(1, 999):03d}",
    ]
    return [rng.choice(forms)() for _ in range(count)]


def make_redirects(urls: list[str]) -> list[str]:
    return [f"https://www.google.com/url?sa=t&source=web&url={quote(u, safe='')}&usg=AOvVaw0abc" for u in urls]


def make_reference_list(rng: random.Random, size: int) -> str:
    lines, total, i = [], 0, 0
    while total < size:
        i += 1
        ident = f"{rng.randint(15, 25)}{rng.randint(1, 12):02d}.{rng.randint(1, 29999):05d}"
        line = (
            f"[{i}] A. Author, B. Author, and C. Author. A study of things number {i}. "
            f"In Proceedings of the Conference, pages {i}-{i + 9}, 2023. arXiv:{ident}v2. doi:10.1145/{3000000 + i}.{i}\n"
        )
        lines.append(line)
        total += len(line)
    return "".join(lines)


def best_of(fn, items, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(items)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--urls", type=int, default=20000)
    args = parser.parse_args()
    rng = random.Random(20240201)
    grammar = load_grammar()
    urls = make_urls(rng, args.urls)
    redirects = make_redirects(urls[: args.urls // 4])
    reference_list = make_reference_list(rng, 1 << 20)

    cases = [
        ("single URLs", urls, lambda xs: [grammar.resolve(x, "link") for x in xs], lambda xs: [reference_resolve(x) for x in xs]),
        ("redirect links", redirects, lambda xs: [grammar.resolve(x, "link") for x in xs], lambda xs: [reference_resolve(x) for x in xs]),
        ("1 MB reference list", [reference_list], lambda xs: [grammar.resolve(x, "selection") for x in xs], lambda xs: [reference_resolve(x) for x in xs]),
    ]
    print(f"{'workload':<22}{'items':>8}{'this (ms)':>12}{'anchor (ms)':>13}{'this/anchor time':>18}")
    results = {}
    for name, items, ours, anchor in tqdm(cases, desc="workloads", leave=False):
        t_ours = best_of(ours, items, args.repeat)
        t_anchor = best_of(anchor, items, args.repeat)
        results[name] = (t_ours, t_anchor)
        print(f"{name:<22}{len(items):>8}{t_ours * 1e3:>12.1f}{t_anchor * 1e3:>13.1f}{t_ours / t_anchor:>17.2f}x")

    found = grammar.resolve(reference_list, "selection")
    print(f"reference list: {len(reference_list) / 1e6:.2f} MB, {len(found.ids)} ids found "
          f"(anchor finds {len(reference_resolve(reference_list))} matches, false positives included)")
    list_ms = results["1 MB reference list"][0] * 1e3
    url_ratio = results["single URLs"][0] / results["single URLs"][1]
    print(f"bar: 1 MB reference list in {list_ms:.0f} ms (bar < 200 ms): {'met' if list_ms < 200 else 'MISSED'}")
    print(f"bar: single URLs at {url_ratio:.2f}x the anchor's time (bar <= 3x): {'met' if url_ratio <= 3 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
