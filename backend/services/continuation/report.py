"""Tables of the continuation evaluation, from per-cut records (``evaluation``), with paired statistics.

Every comparison is paired on the same cuts: exact match with McNemar's exact test (b = cuts the row gets right
and the reference row gets wrong, c = the reverse; p-value and the Clopper-Pearson interval of b/(b+c)) and
accuracy differences and log-likelihood differences with a paired bootstrap over cuts (2000 resamples, percentile
95 % interval; with several seeds, all seeds of a cut are resampled together). Unreachable gold paths
(probability 0 under a method) count as a log-likelihood of -20 nats/char in differences (none occur in practice;
the count is shown).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from backend.services.continuation.evaluation import KINDS, LANGS, Cut
from backend.stats import bootstrap_mean, mcnemar, paired_bootstrap

FLOOR = -20.0  # nats/char used for an unreachable gold path in differences


def _ll(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(arr), arr, FLOOR)


def _sel(cuts: Sequence[Cut], lang: str | None, kind: str | None) -> np.ndarray:
    return np.array([(lang is None or c.lang == lang) and (kind is None or c.kind == kind) for c in cuts])


def _pct(x: np.ndarray) -> str:
    return f"{100.0 * float(np.mean(x)):.1f}%"


def _mc(a: np.ndarray, b: np.ndarray) -> str:
    """McNemar of a against b (b = a right, b wrong)."""
    res = mcnemar(a, b)
    share = "-" if res.b + res.c == 0 else f"{res.share.estimate:.2f} [{res.share.low:.2f}, {res.share.high:.2f}]"
    return f"{res.b} / {res.c} | {res.p_value:.2g} | {share}"


def _diff(a: np.ndarray, b: np.ndarray, digits: int = 3, scale: float = 1.0) -> str:
    return paired_bootstrap(a, b).format(digits, scale)


# ------------------------------------------------------------------------------------------ tables


def methods_table(cuts: Sequence[Cut], model: dict, m: int, exact_ref: dict | None = None) -> str:
    """One model, every system, per language and cut kind; paired against naive decoding of the same model."""
    systems = model["systems"]
    naive = systems["naive"]
    head = (f"| lang | cut | system | n | exact@{m} | b / c vs naive | p | b/(b+c) [95% CI] | Δ nats/char vs naive "
            f"[95% CI] | next-char top-1 | median char rank | passes | mean C |")
    lines = [head, "|" + "---|" * 3 + "---:|" * 10]
    for lang in LANGS:
        for kind in KINDS:
            sel = _sel(cuts, lang, kind)
            if not sel.any():
                continue
            n = int(sel.sum())
            for label, rec in systems.items():
                ex = np.asarray(rec["exact"], bool)[sel]
                ll = _ll(rec["ll"])[sel]
                mc = "- | - | -" if label == "naive" else _mc(ex, np.asarray(naive["exact"], bool)[sel])
                dl = "-" if label == "naive" else _diff(ll, _ll(naive["ll"])[sel])
                cands = np.asarray(rec["cands"])[sel]
                lines.append(
                    f"| {LANGS[lang]} | {KINDS[kind]} | {label} | {n} | {_pct(ex)} | {mc} | {dl} | "
                    f"{_pct(np.asarray(rec['top1'], bool)[sel])} | {np.median(np.asarray(rec['rank'])[sel]):g} | "
                    f"{np.mean(np.asarray(rec['passes'])[sel]):.2f} | "
                    f"{np.mean(cands[cands > 0]) if (cands > 0).any() else 0:.1f} |")
            if exact_ref is not None:
                ex = np.asarray(exact_ref["exact"], bool)[sel]
                lines.append(
                    f"| {LANGS[lang]} | {KINDS[kind]} | exact (character-level greedy) | {n} | {_pct(ex)} | "
                    f"{_mc(ex, np.asarray(naive['exact'], bool)[sel])} | "
                    f"{_diff(_ll(exact_ref['ll'])[sel], _ll(naive['ll'])[sel])} | "
                    f"{_pct(np.asarray(exact_ref['top1'], bool)[sel])} | "
                    f"{np.median(np.asarray(exact_ref['rank'])[sel]):g} | - | - |")
    return "\n".join(lines)


def gap_table(cuts: Sequence[Cut], model: dict, ref: dict, ref_name: str) -> str:
    """Each method's log-likelihood of the gold minus the reference P(gold | prompt text), per char."""
    systems = model["systems"]
    head = f"| lang | cut | n | {ref_name} nats/char | " + " | ".join(f"{s} − {ref_name}" for s in systems) + " |"
    lines = [head, "|---|---|" + "---:|" * (2 + len(systems))]
    ref_ll = _ll(ref["ll"])
    for lang in LANGS:
        for kind in KINDS:
            sel = _sel(cuts, lang, kind)
            if not sel.any():
                continue
            cells = [_diff(_ll(rec["ll"])[sel], ref_ll[sel], 2) for rec in systems.values()]
            lines.append(f"| {LANGS[lang]} | {KINDS[kind]} | {int(sel.sum())} | {np.mean(ref_ll[sel]):.3f} | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines)


def tuning_table(cuts: Sequence[Cut], results: dict, alphas: Sequence[float]) -> tuple[str, float]:
    """Dev exact match of the random-segmentation n-gram (naive decoding) per alpha, and the chosen alpha.

    Rule (fixed before any test-set run): the largest alpha (the least randomised segmentation) whose paired
    difference from the best alpha is not resolved, i.e. its 95 % interval still contains 0.
    """
    base = np.asarray(results["canonical"]["systems"]["naive"]["exact"], float)
    ex = {a: np.asarray(results[a]["systems"]["naive"]["exact"], float) for a in alphas}
    best = max(alphas, key=lambda a: (ex[a].mean(), -a))
    vs_best = {a: paired_bootstrap(ex[a], ex[best]) for a in alphas}
    chosen = max(a for a in alphas if a == best or vs_best[a].high >= 0)
    lines = ["| alpha | n | exact@5, all cuts | (a) inside | (b) word | (c) token | Δ vs canonical n-gram [95% CI] | "
             "Δ vs best alpha [95% CI] | b / c vs best |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for a in alphas:
        per = [_pct(ex[a][_sel(cuts, None, k)].astype(bool)) for k in KINDS]
        mark = " (chosen)" if a == chosen else (" (best)" if a == best else "")
        res = mcnemar(ex[a], ex[best])
        vb = "-" if a == best else f"{vs_best[a].format(1, 100)} pp | {res.b} / {res.c}"
        lines.append(f"| {a:g}{mark} | {len(ex[a])} | {_pct(ex[a])} | " + " | ".join(per) +
                     f" | {_diff(ex[a], base, 1, 100)} pp | {vb}" + (" | - |" if a == best else " |"))
    lines.append(f"| canonical | {len(base)} | {_pct(base)} | "
                 + " | ".join(_pct(base[_sel(cuts, None, k)]) for k in KINDS) + " | - | - | - |")
    return "\n".join(lines), chosen


def seeds_table(cuts: Sequence[Cut], rows: dict[str, list[dict]], label_of: dict[str, str], m: int,
                baseline: str | dict[str, str], system_of: dict[str, str], ll_key: dict[str, str]) -> str:
    """Several (model, system) rows, each a list of seeds; paired over (seed, cut) against a baseline row.

    ``rows[name]`` = per-seed model records; ``system_of[name]`` the system label inside them; ``ll_key[name]``
    "method" (the decoding method's one-path likelihood) or "exact"/"is" (the model's marginal: nan where it was
    not computed, those cuts are left out of that column). ``baseline``: one row for all, or a row per row.
    """
    base_of = baseline if isinstance(baseline, dict) else {name: baseline for name in rows}
    def stack(name: str, key: str) -> np.ndarray:
        out = []
        for rec in rows[name]:
            if key == "exact":
                out.append(np.asarray(rec["systems"][system_of[name]]["exact"], float))
            else:
                src = ll_key[name]
                if src == "method":
                    out.append(_ll(rec["systems"][system_of[name]]["ll"]))
                else:  # the model's marginal: nan where it was not computed (importance sampling on a subset)
                    raw = np.asarray(rec[src]["ll"], dtype=np.float64)
                    out.append(np.where(np.isnan(raw), np.nan, _ll(np.nan_to_num(raw, nan=0.0))))
        return np.stack(out)

    lines = [f"| lang | cut | row | seeds | n | exact@{m} mean (min–max over seeds) | compared with | Δ exact@{m} "
             f"[95% CI] | b / c | p | nats/char (source, n) | Δ nats/char [95% CI] |",
             "|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for lang in LANGS:
        for kind in KINDS:
            sel = _sel(cuts, lang, kind)
            if not sel.any():
                continue
            for name in rows:
                base = base_of[name]
                ex, ll = stack(name, "exact")[:, sel], stack(name, "ll")[:, sel]
                base_ex, base_ll = stack(base, "exact")[:, sel], stack(base, "ll")[:, sel]
                per_seed = ex.mean(axis=1) * 100
                spread = f"{per_seed.mean():.1f}% ({per_seed.min():.1f}–{per_seed.max():.1f})"
                have = ~np.isnan(ll).any(axis=0)
                if name == base or ex.shape != base_ex.shape:
                    comp, dl = "- | - | - | -", "-"
                else:
                    res = mcnemar(ex, base_ex)
                    comp = (f"{label_of[base]} | {_diff(ex, base_ex, 1, 100)} pp | {res.b} / {res.c} | "
                            f"{res.p_value:.2g}")
                    both = have & ~np.isnan(base_ll).any(axis=0)
                    dl = _diff(ll[:, both], base_ll[:, both]) if ll.shape == base_ll.shape and both.any() else "-"
                lines.append(f"| {LANGS[lang]} | {KINDS[kind]} | {label_of[name]} | {ex.shape[0]} | {int(sel.sum())} "
                             f"| {spread} | {comp} | {np.mean(ll[:, have]):.3f} ({ll_key[name]}, {int(have.sum())}) "
                             f"| {dl} |")
    return "\n".join(lines)


def default_method_table(cuts: Sequence[Cut], results: dict[str, dict], m: int, default: str,
                         kind: str = "inside") -> tuple[str, str]:
    """The page's default method against every other method on the partial-token cuts, paired per model and
    language (and pooled); returns the table and the method with the best pooled exact match over all models."""
    lines = [f"| model | lang | n | {default} exact@{m} | other method | its exact@{m} | Δ exact@{m} [95% CI] | "
             f"b / c | p |", "|---|---|---:|---:|---|---:|---:|---:|---:|"]
    hits: dict[str, int] = {}
    for key in ("gpt", "ngram"):
        if key not in results:
            continue
        systems = results[key]["systems"]
        for lang in [*LANGS, None]:
            sel = _sel(cuts, lang, kind)
            if not sel.any():
                continue
            mine = np.asarray(systems[default]["exact"], float)[sel]
            for label, rec in systems.items():
                ex = np.asarray(rec["exact"], float)[sel]
                if lang is None:
                    hits[label] = hits.get(label, 0) + int(ex.sum())
                if label == default:
                    continue
                res = mcnemar(mine, ex)
                lines.append(f"| {key} | {LANGS[lang] if lang else 'all'} | {int(sel.sum())} | {_pct(mine)} | "
                             f"{label} | {_pct(ex)} | {_diff(mine, ex, 1, 100)} pp | {res.b} / {res.c} | "
                             f"{res.p_value:.2g} |")
    best = max(hits, key=lambda k: hits[k]) if hits else default
    return "\n".join(lines), best


def _sampled_ll(record: dict) -> tuple[np.ndarray, np.ndarray]:
    """Log-likelihoods of a record that has them on some cuts only (importance sampling runs on every k-th cut;
    the others are NaN): the values (0 where missing) and the mask of the cuts that have one."""
    raw = np.asarray(record["ll"], dtype=np.float64)
    have = ~np.isnan(raw)
    return _ll(np.where(have, raw, 0.0)), have


def is_check_table(cuts: Sequence[Cut], estimate: dict, exact: dict) -> str:
    """Importance sampling against the exact answer (same n-gram): error, and how often |error| < 2 SE."""
    est, have = _sampled_ll(estimate)
    se, ex = np.asarray(estimate["se"], dtype=np.float64), _ll(exact["ll"])
    err = est - ex
    lines = ["| lang | n | mean error (nats/char) [95% CI] | mean absolute error | mean SE | within 2 SE |",
             "|---|---:|---:|---:|---:|---:|"]
    for lang in LANGS:
        sel = _sel(cuts, lang, None) & have
        if sel.any():
            lines.append(f"| {LANGS[lang]} | {int(sel.sum())} | {bootstrap_mean(err[sel]).format(4)} | "
                         f"{np.mean(np.abs(err[sel])):.4f} | {np.mean(se[sel]):.4f} | "
                         f"{_pct(np.abs(err[sel]) <= 2 * se[sel] + 1e-12)} |")
    return "\n".join(lines)


def _tile(rows: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Rows with one record (a deterministic model) repeated to the most seeds any row has (for pairing)."""
    most = max(len(v) for v in rows.values())
    return {k: (v * most if len(v) == 1 else v) for k, v in rows.items()}


def marginal_table(cuts: Sequence[Cut], models: dict[str, dict], labels: dict[str, str], source: str,
                   subset: bool = False) -> str:
    """The model's own P(gold | prompt text) (exact or importance-sampled) next to what naive decoding's one
    token path gets; per language and cut kind."""
    lines = [f"| model | lang | cut | n | marginal nats/char ({source}) | mean SE | naive one-path nats/char | "
             f"marginal − one path [95% CI] |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for name, rec in models.items():
        ref = rec.get(source)
        if ref is None:
            continue
        m_ll, have = _sampled_ll(ref)
        naive = _ll(rec["systems"]["naive"]["ll"])
        se = np.asarray(ref.get("se", np.zeros(len(m_ll))), dtype=np.float64)
        for lang in LANGS:
            for kind in KINDS:
                sel = _sel(cuts, lang, kind) & have
                if sel.any():
                    lines.append(f"| {labels.get(name, name)} | {LANGS[lang]} | {KINDS[kind]} | {int(sel.sum())} | "
                                 f"{np.mean(m_ll[sel]):.3f} | {np.mean(se[sel]):.3f} | {np.mean(naive[sel]):.3f} | "
                                 f"{_diff(m_ll[sel], naive[sel])} |")
    return "\n".join(lines)


def full_report(cuts: Sequence[Cut], results: dict[str, dict], m: int, alpha: float, seeds: Sequence[int],
                budget: int) -> str:
    """Every table of the README, from the records of ``scripts/eval_continuation.py``."""
    out: list[str] = []
    n_lang = {lang: sum(c.lang == lang for c in cuts) for lang in LANGS}
    out.append(f"cuts: {len(cuts)} ({', '.join(f'{LANGS[k]} {v}' for k, v in n_lang.items())}); one unit = one cut "
               f"of one held-out sentence; exact@{m} = the greedy continuation's first {m} characters equal the gold")
    if "gpt" in results:
        out += ["", "### Methods on the shipped GPT (12000 steps), paired against naive decoding", "",
                methods_table(cuts, results["gpt"], m)]
    if "gpt" in results and "is" in results["gpt"]:
        out += ["", "### The shipped GPT's own P(gold | prompt text), importance sampling (every k-th cut)", "",
                marginal_table(cuts, {"gpt": results["gpt"]}, {"gpt": "shipped GPT"}, "is", subset=True)]
    if "ngram" in results:
        out += ["", "### Methods on the n-gram, with the exact answer (character-level greedy on the exact "
                "P(next character | prompt text))", "",
                methods_table(cuts, results["ngram"], m, exact_ref=results["ngram"].get("exact"))]
        if "exact" in results["ngram"]:
            out += ["", "### Gap to the exact P(gold | prompt text), n-gram (nats/char, paired over cuts)", "",
                    gap_table(cuts, results["ngram"], results["ngram"]["exact"], "exact")]
        if "is" in results["ngram"] and "exact" in results["ngram"]:
            out += ["", "### Importance sampling checked against the exact answer (n-gram)", "",
                    is_check_table(cuts, results["ngram"]["is"], results["ngram"]["exact"])]
    fix = "backoff-multi (dynamic k)"
    table, best = default_method_table(cuts, results, m, fix)
    if table.count("\n") > 1:
        out += ["", f"### The page's default method ({fix}) against the others on (a) inside a token, paired", "",
                table, "", f"best pooled exact@{m} on (a), both models: {best}"]
    for family, ref, prefix in (("ngram", "exact", "ngram"), ("gpt", "is", f"gpt{budget}")):
        canon = [results[k] for k in (["ngram"] if family == "ngram" else
                                      [f"{prefix}-canonical-s{s}" for s in seeds]) if k in results]
        exact = [results[k] for k in [f"{prefix}-randseg-exact-a{alpha:g}-s{s}" for s in seeds] if k in results]
        legacy = [results[k] for k in [f"{prefix}-randseg-legacy-a{alpha:g}-s{s}" for s in seeds] if k in results]
        if not canon or not exact:
            continue
        what = "n-gram (one segmentation of the corpus per seed)" if family == "ngram" else \
            f"GPT, {budget} canonical steps (random segmentations: as many characters read)"
        rows = {"canon-naive": canon, "canon-fix": canon, "rand-naive": exact, "rand-fix": exact}
        labels = {"canon-naive": "canonical, naive", "canon-fix": f"canonical, {fix}",
                  "rand-naive": f"random segmentation (exact, α={alpha:g}), naive",
                  "rand-fix": f"random segmentation (exact, α={alpha:g}), {fix}"}
        system_of = {"canon-naive": "naive", "canon-fix": fix, "rand-naive": "naive", "rand-fix": fix}
        ll_key = {k: "method" for k in rows}
        out += ["", f"### Random-segmentation baseline, {what}: paired against the canonical model with the fix", "",
                seeds_table(cuts, _tile(rows), labels, m, "canon-fix", system_of, ll_key)]
        have_ref = all(ref in r for r in canon + exact)
        if have_ref:
            how = "exact" if ref == "exact" else "importance sampling"
            out += ["", f"### The models' own P(gold | prompt text) ({how}) against naive decoding's one token "
                    f"path, {what}", "",
                    marginal_table(cuts, {f"canonical s{i}": r for i, r in enumerate(canon)}
                                   | {f"random seg. s{i}": r for i, r in enumerate(exact)}, {}, ref)]
        if legacy and len(legacy) == len(exact):
            rows = {"exact-naive": exact, "exact-fix": exact, "legacy-naive": legacy, "legacy-fix": legacy}
            labels = {"exact-naive": "exact sampler, naive", "exact-fix": f"exact sampler, {fix}",
                      "legacy-naive": "legacy sampler, naive", "legacy-fix": f"legacy sampler, {fix}"}
            system_of = {"exact-naive": "naive", "exact-fix": fix, "legacy-naive": "naive", "legacy-fix": fix}
            src = ref if all(ref in r for r in exact + legacy) else "method"
            ll_key = {k: (src if k.endswith("naive") else "method") for k in rows}
            base_of = {"exact-naive": "exact-naive", "exact-fix": "exact-fix", "legacy-naive": "exact-naive",
                       "legacy-fix": "exact-fix"}
            out += ["", f"### Legacy (biased) vs exact segmentation sampler, α={alpha:g}, {what}: same data, steps "
                    f"and seeds; paired over (seed, cut); naive rows show the model's own P(gold | prompt text), fix "
                    f"rows the fix's one-path likelihood", "",
                    seeds_table(cuts, rows, labels, m, base_of, system_of, ll_key)]
    return "\n".join(out)


def summary_table(cuts: Sequence[Cut], results: dict[str, dict], m: int) -> str:
    """The main README's table: the partial-token set (a), every method against naive decoding, per language."""
    systems = [("naive", "naive"), ("backoff (Su, k=1)", "backoff (Su)"), ("backoff-multi (dynamic k)", "backoff-multi"),
               ("heal (HF soft bias)", "heal (HF)")]
    head = ("| model | lang | n | " + " | ".join(f"{short} exact@{m}" for _, short in systems)
            + " | exact answer | next-char top-1: naive → backoff-multi → exact |")
    lines = [head, "|---|---|---:|" + "---:|" * (len(systems) + 2)]
    for key, label in (("gpt", "GPT (12000 steps)"), ("ngram", "n-gram")):
        if key not in results:
            continue
        rec = results[key]
        naive = np.asarray(rec["systems"]["naive"]["exact"], bool)
        ref = rec.get("exact")
        for lang in LANGS:
            sel = _sel(cuts, lang, "inside")
            cells = []
            for name, _ in systems:
                ex = np.asarray(rec["systems"][name]["exact"], bool)
                if name == "naive":
                    cells.append(_pct(ex[sel]))
                else:
                    res = mcnemar(ex[sel], naive[sel])
                    cells.append(f"{_pct(ex[sel])} ({res.b}/{res.c}, p={res.p_value:.2g})")
            exact_cell = "-" if ref is None else _pct(np.asarray(ref["exact"], bool)[sel])
            tops = [_pct(np.asarray(rec["systems"][s]["top1"], bool)[sel]) for s in ("naive", systems[2][0])]
            tops.append("-" if ref is None else _pct(np.asarray(ref["top1"], bool)[sel]))
            lines.append(f"| {label} | {LANGS[lang]} | {int(sel.sum())} | " + " | ".join(cells)
                         + f" | {exact_cell} | {' → '.join(tops)} |")
    return "\n".join(lines)
