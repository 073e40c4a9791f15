"""Evaluate continuation methods and models on ALL held-out sentences (or the dev split), per language, with
paired statistics, the exact reference for the n-gram and importance-sampled marginals for the GPT.

    .venv/bin/python scripts/eval_continuation.py --split dev --tune-alpha 0,0.005,0.01,0.02,0.05,0.1,0.2,0.3,0.5,1 \
        --readme backend/services/continuation/README.md     # the random-segmentation alpha, on the dev split
    .venv/bin/python scripts/eval_continuation.py --split test --models ngram   # evaluate what is missing, print
    .venv/bin/python scripts/eval_continuation.py --split test --models gpt
    .venv/bin/python scripts/eval_continuation.py --split test --report --readme backend/services/continuation/README.md

Models (each evaluated once; its per-cut records are cached in ``--records``/<split>/<model>.json):
- ``ngram``: Kneser-Ney token trigram on the canonical tokenization of the corpus (built in seconds);
- ``ngram-randseg-{exact,legacy}-a<alpha>-s<seed>``: the same trigram on one random segmentation of the corpus
  (the same text, read once), drawn by the tokenize service's exact or legacy sampler;
- ``gpt``: the shipped GPT (12000 steps, canonical tokenization), decoded with every method;
- ``gpt<steps>-canonical-s<seed>``, ``gpt<steps>-randseg-{exact,legacy}-a<alpha>-s<seed>``: the GPT study, trained
  by ``scripts/train_continuation.py`` at ``--gpt-steps`` canonical steps (checkpoints in ``--runs``).
Systems: canonical models with naive decoding, Su's back-off, the multi-token back-off with guidance's and with
llama.cpp's rule, and HF-style healing; random-segmentation models naively and with the back-offs. References:
exact P(gold | prompt text) for every n-gram (dynamic programming, ``exact.py``), an importance-sampling estimate
with its standard error for every GPT (``marginal.py``, on every ``--is-every``-th cut of each group).

Deterministic: seeded cuts, greedy decoding, seeded samplers and bootstrap.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "backend" / "services" / "continuation" / "data"
WORK = ROOT / ".cont_work"

CANONICAL_SYSTEMS = [("naive", "naive", "original"), ("backoff (Su, k=1)", "backoff", "original"),
                     ("backoff-multi (dynamic k)", "backoff-multi", "original"),
                     ("backoff-multi, llama.cpp prefix rule", "backoff-multi", "prefixes"),
                     ("heal (HF soft bias)", "heal", "original")]
RANDSEG_SYSTEMS = CANONICAL_SYSTEMS[:3]


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", choices=["test", "dev"], default="test")
    p.add_argument("--m", type=int, default=5, help="characters compared for exact match")
    p.add_argument("--alpha", type=float, default=None, help="random-segmentation alpha (default: the tuned one)")
    p.add_argument("--seeds", default="0,1,2", help="training / segmentation seeds of the random-segmentation models")
    p.add_argument("--models", default="ngram,gpt", help="families to evaluate: ngram, gpt")
    p.add_argument("--runs", default=str(WORK / "runs"), help="folder of the GPT checkpoints (train_continuation.py)")
    p.add_argument("--records", default=str(WORK / "eval"), help="folder of the cached per-cut records")
    p.add_argument("--is-samples", type=int, default=32, help="importance samples per cut (GPT marginals)")
    p.add_argument("--is-every", type=int, default=4, help="importance sampling on every k-th cut (cost)")
    p.add_argument("--is-check", type=int, default=300,
                   help="cuts on which importance sampling is checked against the exact n-gram answer")
    p.add_argument("--gpt-steps", type=int, default=4000, help="canonical steps of the GPT study models")
    p.add_argument("--limit", type=int, default=0, help="only the first N cuts (quick checks)")
    p.add_argument("--report", action="store_true", help="print tables from the records only")
    p.add_argument("--tune-alpha", default="", help="comma-separated alphas: tune the n-gram baseline on --split")
    p.add_argument("--readme", default="", help="also write the report between the eval markers of this file")
    p.add_argument("--readme-summary", default="", help="also write the summary table into this file's markers")
    p.add_argument("--only", default="",
                   help="comma-separated record names: evaluate just these (to split the work between processes)")
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args()


TUNED = DATA / "randseg_alpha.json"


def tuned_alpha() -> float:
    return float(json.loads(TUNED.read_text())["alpha"]) if TUNED.exists() else 0.1


# ------------------------------------------------------------------------------------------ building blocks


class Setting:
    """Tokenizer, corpus, cuts: built once."""

    def __init__(self, args: argparse.Namespace):
        from backend.services.continuation.corpus import build_corpus, dev_split
        from backend.services.continuation.evaluation import make_cuts
        from backend.services.continuation.tokenizer import Tokenizer

        self.tok = Tokenizer.from_file(str(DATA / "tokenizer.model"))
        self.corpus = build_corpus()
        sentences = self.corpus.heldout if args.split == "test" else dev_split()
        self.cuts = make_cuts(self.tok, sentences, args.m, seed=0)
        if args.limit:
            self.cuts = self.cuts[: args.limit]
        self.n_sentences = len(sentences)
        self._texts = [s.text for s in self.corpus.train]

    def ngram(self, sampler: str | None = None, alpha: float = 0.1, seed: int = 0):
        from tqdm import tqdm

        from backend.services.continuation.segsample import SegmentationSampler
        from backend.services.continuation.training import encode_sentences, train_ngram

        if sampler is None:
            seqs = encode_sentences(self.tok, self._texts)
        else:
            seg = SegmentationSampler(self.tok, alpha, sampler)
            rng = np.random.default_rng([seed, 0])  # the first pass of the GPT of the same seed
            texts = tqdm(self._texts, desc=f"segment ({sampler}, alpha={alpha:g}, seed {seed})", mininterval=2)
            seqs = encode_sentences(self.tok, texts, lambda s: seg.sample_ids(s, rng))
        return train_ngram(self.tok, seqs)


def evaluate_model(setting: Setting, name: str, lm, systems, reference: str, args, path: Path) -> dict:
    """Records of every system on ``lm`` plus its reference ("exact", "is" or "none"), cached in ``path``."""
    from tqdm import tqdm

    from backend.services.continuation.evaluation import System, evaluate_system, exact_references

    if path.exists():
        return json.loads(path.read_text())
    t0 = time.time()
    out: dict = {"model": name, "systems": {}, "n_cuts": len(setting.cuts)}
    with tqdm(total=len(systems) * len(setting.cuts), desc=f"evaluate {name}", mininterval=2) as bar:
        for label, method, rule in systems:
            rec = evaluate_system(setting.tok, System(label, lm, method, rule), setting.cuts, args.m,
                                  progress=bar.update)
            out["systems"][label] = rec.to_dict()
    if reference == "exact":
        with tqdm(total=len(setting.cuts), desc=f"exact reference {name}", mininterval=2) as bar:
            # exact character-level greedy decoding only for the canonical n-gram (its table row)
            out["exact"] = exact_references(setting.tok, lm, setting.cuts, args.m, progress=bar.update,
                                            greedy=name == "ngram")
    if reference == "is" or (reference == "exact" and name == "ngram" and args.is_check):
        # the GPTs on every k-th cut; the canonical n-gram on the first --is-check of those, to check the estimator
        picked = every_kth(setting.cuts, args.is_every)
        if reference == "exact":
            picked = every_kth(setting.cuts, max(1, len(setting.cuts) // max(1, args.is_check)))
        out["is"] = importance_sampling(setting, name, lm, picked, args)
    out["seconds"] = round(time.time() - t0, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out))
    return out


def every_kth(cuts, k: int) -> list[int]:
    """Every k-th cut within each (language, kind) group, so that a subset keeps the groups' proportions."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, c in enumerate(cuts):
        groups.setdefault((c.lang, c.kind), []).append(i)
    return sorted(i for idx in groups.values() for i in idx[::k])


def importance_sampling(setting: Setting, name: str, lm, picked: list[int], args: argparse.Namespace) -> dict:
    """Importance-sampled log P(gold | prompt text) per character on the cuts ``picked`` (nan elsewhere)."""
    from tqdm import tqdm

    from backend.services.continuation.marginal import LatticeProposal, conditional_estimate

    proposal = LatticeProposal.for_tokenizer(setting.tok)
    n = len(setting.cuts)
    est: dict[str, list] = {"ll": [float("nan")] * n, "se": [float("nan")] * n, "ess": [float("nan")] * n}
    for i in tqdm(picked, desc=f"importance sampling {name}", mininterval=2):
        c = setting.cuts[i]
        gold = c.gold[:20]
        rng = np.random.default_rng([12345, i])  # per cut: the same draws whatever else is evaluated
        r = conditional_estimate(lm, proposal, c.prompt.encode(), gold.encode(), args.is_samples, rng)
        est["ll"][i] = r.log_prob / max(1, len(gold))
        est["se"][i] = r.se / max(1, len(gold))
        est["ess"][i] = r.ess
    est["samples"] = args.is_samples
    return est


def load_gpt(path: Path, tok):
    from backend.services.continuation.gpt import GPTLM, load_checkpoint

    model, meta = load_checkpoint(str(path))
    return GPTLM(model, tok.bos_id), meta


# ------------------------------------------------------------------------------------------ main


def study_checkpoint(args: argparse.Namespace, run: str) -> Path:
    """A study checkpoint: the runs folder's, else the copy shipped in data/ (seed 0 of each kind)."""
    trained = Path(args.runs) / f"{run}.pt"
    shipped = DATA / f"gpt_{run}.pt"
    return trained if trained.exists() or not shipped.exists() else shipped


def model_list(args: argparse.Namespace, alpha: float, seeds: list[int]) -> list[tuple[str, str, object]]:
    """(record name, family, how to build) in evaluation order; GPTs whose checkpoint is missing are skipped."""
    out: list[tuple[str, str, object]] = []
    families = args.models.split(",")
    if "ngram" in families:
        out.append(("ngram", "ngram", ("canonical", None, 0)))
        for sampler in ("exact", "legacy"):
            for s in seeds:
                out.append((f"ngram-randseg-{sampler}-a{alpha:g}-s{s}", "ngram", ("randseg", sampler, s)))
    if "gpt" in families:
        out.append(("gpt", "gpt", DATA / "gpt.pt"))
        b = args.gpt_steps
        for s in seeds:
            out.append((f"gpt{b}-canonical-s{s}", "gpt", study_checkpoint(args, f"canonical_s{s}_n{b}")))
        for sampler in ("exact", "legacy"):
            for s in seeds:
                out.append((f"gpt{b}-randseg-{sampler}-a{alpha:g}-s{s}", "gpt",
                            study_checkpoint(args, f"randseg_{sampler}_a{alpha:g}_s{s}_n{b}")))
    return out


def main() -> None:
    args = parse()
    import torch

    torch.set_num_threads(args.threads)
    alpha = args.alpha if args.alpha is not None else tuned_alpha()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    setting = Setting(args)
    from backend.services.continuation.evaluation import KINDS

    print(f"{args.split}: {setting.n_sentences} sentences -> {len(setting.cuts)} cuts: " + ", ".join(
        f"{KINDS[k]} {sum(c.kind == k for c in setting.cuts)}" for k in KINDS), flush=True)
    folder = Path(args.records) / (args.split + (f"-limit{args.limit}" if args.limit else ""))
    if args.tune_alpha:
        tune(setting, args, folder, [float(a) for a in args.tune_alpha.split(",")])
        return

    results: dict[str, dict] = {}
    only = {n for n in args.only.split(",") if n}
    for name, family, source in model_list(args, alpha, seeds):
        path = folder / f"{name}.json"
        if only and name not in only and not path.exists():
            continue
        if path.exists() or args.report:
            if path.exists():
                results[name] = json.loads(path.read_text())
            continue
        if family == "ngram":
            kind, sampler, s = source
            lm = setting.ngram() if kind == "canonical" else setting.ngram(sampler, alpha, s)
            systems = CANONICAL_SYSTEMS if kind == "canonical" else RANDSEG_SYSTEMS
            results[name] = evaluate_model(setting, name, lm, systems, "exact", args, path)
        else:
            if not Path(source).exists():
                print(f"  {name}: no checkpoint {source} (train it with scripts/train_continuation.py)", flush=True)
                continue
            lm = load_gpt(Path(source), setting.tok)[0]
            systems = CANONICAL_SYSTEMS if name == "gpt" else RANDSEG_SYSTEMS
            results[name] = evaluate_model(setting, name, lm, systems, "is", args, path)

    from backend.services.continuation.report import full_report

    report = full_report(setting.cuts, results, args.m, alpha, seeds, args.gpt_steps)
    print(report)
    if args.readme:
        write_between_markers(Path(args.readme), "eval", report)
    if args.readme_summary:
        from backend.services.continuation.report import summary_table

        write_between_markers(Path(args.readme_summary), "continuation-eval",
                              summary_table(setting.cuts, results, args.m))


def write_between_markers(path: Path, name: str, text: str) -> None:
    """Replace what lies between <!-- name:start --> and <!-- name:end --> in ``path`` (the README's tables)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    doc = path.read_text(encoding="utf-8")
    if start not in doc or end not in doc:
        raise SystemExit(f"{path}: the markers {start} and {end} are missing")
    head, rest = doc.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{text}\n{end}{tail}", encoding="utf-8")
    print(f"wrote the tables into {path}")


def tune(setting: Setting, args: argparse.Namespace, folder: Path, alphas: list[float]) -> None:
    """Alpha of the random-segmentation baseline, chosen on the dev split with the n-gram (seed 0)."""
    from backend.services.continuation.report import tuning_table

    results = {}
    base = folder / "tune-ngram.json"
    results["canonical"] = evaluate_model(setting, "ngram", setting.ngram(), [CANONICAL_SYSTEMS[0]], "none",
                                          args, base)
    for a in alphas:
        name = f"ngram-randseg-exact-a{a:g}-s0"
        path = folder / f"tune-{name}.json"
        lm = None if path.exists() else setting.ngram("exact", a, 0)
        results[a] = evaluate_model(setting, name, lm, [RANDSEG_SYSTEMS[0]], "none", args, path)
    text, best = tuning_table(setting.cuts, results, alphas)
    print(text)
    if args.readme and args.split == "dev" and not args.limit:
        write_between_markers(Path(args.readme), "tune", text)
    if args.split == "dev" and not args.limit:
        TUNED.write_text(json.dumps({"alpha": best, "criterion": f"dev exact@{args.m}, all cuts pooled, naive "
                                     "decoding, n-gram; the largest alpha not resolved worse than the best (paired 95% interval contains 0)",
                                     "alphas": alphas}, indent=1) + "\n")
        print(f"tuned alpha = {best:g} (written to {TUNED.relative_to(ROOT)})")


if __name__ == "__main__":
    main()
