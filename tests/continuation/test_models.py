"""Tokenizer, prefix index, n-gram, GPT, the random-segmentation adapter, corpus and evaluation helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.services.continuation.corpus import Sentence, chinese_sentences, template_sentences
from backend.services.continuation.evaluation import (
    System,
    evaluate_system,
    exact_references,
    make_cuts,
    token_boundaries,
)
from backend.services.continuation.gpt import GPT, GPTLM, GPTConfig, load_checkpoint, save_checkpoint
from backend.services.continuation.ngram import NGramLM
from backend.services.continuation.segsample import SegmentationSampler
from backend.services.continuation.tokenizer import is_char_boundary
from backend.services.continuation.training import encode_sentences, pack, train_gpt


@pytest.mark.parametrize("text", ["", "a", "import numpy as np", "广州的白云机场😀", "  two  spaces ", "x</s>y<sep>",
                                  "a\u2581b", "tab\tnew\nline", "<unk><0x41>"])
def test_tokenizer_is_lossless(tok, text):
    ids = tok.encode(text)
    assert tok.decode(ids) == text


def test_special_spellings_become_special_tokens(tok):
    ids = tok.encode("a</s><fim_middle>b")
    assert tok.eos_id in ids and any(tok.piece_str[i] == "<fim_middle>" for i in ids)
    assert all(tok.piece_bytes[i] == b"" for i in tok.special_ids)


def test_prefix_index_matches_brute_force(tok):
    rng = np.random.default_rng(0)
    pieces = [b for b in tok.piece_bytes if b]
    for prefix in [b"", b" ", b"th", "白".encode(), b"\xe7", b"import", b"zzzz"] + [
        pieces[i][: 1 + rng.integers(len(pieces[i]))] for i in rng.integers(len(pieces), size=30)
    ]:
        brute = {i for i, b in enumerate(tok.piece_bytes) if b and i not in tok.special_ids and b.startswith(prefix)}
        assert set(tok.index.extensions(prefix)) == brute
        proper = {i for i, b in enumerate(tok.piece_bytes)
                  if b and i not in tok.special_ids and len(b) < len(prefix) and prefix.startswith(b)}
        assert set(tok.index.proper_prefixes(prefix)) == proper


def test_char_boundary():
    b = "a白".encode()
    assert [is_char_boundary(b, i) for i in range(len(b) + 1)] == [True, True, False, False, True]


def test_ngram_is_a_distribution_and_prefers_seen_continuations(tok):
    seqs = encode_sentences(tok, ["白云机场很大。", "白云山很高。", "白云机场很远。"])
    lm = NGramLM.train(seqs, tok.vocab_size, tok.bos_id)
    ctx = tok.encode("白云机场")
    p = lm.next_token_probs(ctx)
    assert p.sum() == pytest.approx(1.0) and (p > 0).all()
    assert int(np.argmax(p)) == tok.encode("很")[0]
    rows = lm.path_logprobs(ctx, tok.encode("很大"))
    assert rows.shape == (len(tok.encode("很大")), tok.vocab_size)


def test_gpt_checkpoint_roundtrip_and_one_pass_scoring(tmp_path):
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=50, block_size=16, n_layer=1, n_head=2, n_embd=16)
    model = GPT(cfg).eval()
    save_checkpoint(str(tmp_path / "m.pt"), model, {"note": "test"})
    loaded, meta = load_checkpoint(str(tmp_path / "m.pt"))
    assert meta == {"note": "test"}
    lm = GPTLM(loaded, bos_id=1)
    lp = lm.next_token_logprobs([3, 4, 5])
    assert np.exp(lp).sum() == pytest.approx(1.0)
    rows = lm.path_logprobs([3], [4, 5])  # teacher forcing equals step-by-step decoding
    assert np.allclose(rows[1], lm.next_token_logprobs([3, 4]), atol=1e-5)
    assert loaded.head.weight is loaded.tok_emb.weight  # tied, and stored once


def test_training_loop_reduces_the_loss(tok):
    torch.manual_seed(0)
    stream = pack(tok, encode_sentences(tok, [s.text for s in template_sentences(200)]))
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16)
    losses = []
    train_gpt(cfg, lambda e: stream, steps=30, batch_size=8, lr=1e-2, progress=lambda s, n, loss: losses.append(loss))
    assert losses[-1] < losses[0] - 0.5


def test_shipped_checkpoint_records_its_provenance(tok):
    from tests.continuation.conftest import DATA

    model, meta = load_checkpoint(str(DATA / "gpt.pt"))
    assert model.cfg.vocab_size == tok.vocab_size
    assert {"corpus_sha256", "tokenizer_sha256", "heldout_loss", "steps"} <= set(meta)
    # the GPT study's seed-0 models: the same characters read (--match text), so a random segmentation takes more
    # steps than the canonical run, and the legacy sampler (closer to the canonical segmentation) fewer than the exact
    study = {kind: load_checkpoint(str(DATA / f"gpt_{kind}_s0_n4000.pt"))[1]
             for kind in ("canonical", "randseg_exact_a0.1", "randseg_legacy_a0.1")}
    assert study["canonical"]["kind"] == "canonical" and study["canonical"]["steps"] == 4000
    for sampler in ("exact", "legacy"):
        meta_rs = study[f"randseg_{sampler}_a0.1"]
        assert meta_rs["randseg_sampler"] == sampler and meta_rs["randseg_alpha"] == 0.1
        assert meta_rs["match"] == "text" and meta_rs["train_chars"] == study["canonical"]["train_chars"]
        assert meta_rs["tokenizer_sha256"] == meta["tokenizer_sha256"]
    assert 4000 < study["randseg_legacy_a0.1"]["steps"] < study["randseg_exact_a0.1"]["steps"]


def test_random_segmentations_come_from_the_tokenize_service(tok):
    sampler = SegmentationSampler(tok, alpha=0.1)
    text = "Return the number of bytes in the string. 广州的白云机场😀"
    rng = np.random.default_rng(0)
    samples = [sampler.sample_ids(text, rng) for _ in range(30)]
    assert all(tok.decode(s) == text for s in samples)
    assert len({tuple(s) for s in samples}) > 5  # genuinely random
    assert tok.encode(text) != samples[0] or tok.encode(text) != samples[1]
    again = SegmentationSampler(tok, alpha=0.1).sample_ids(text, np.random.default_rng(0))
    assert again == samples[0]  # seeded


def test_chinese_corpus_word_boundaries(tmp_path):
    f = tmp_path / "data.txt"
    f.write_text("迈/b 向/e 充/b 满/e 希/b 望/e 的/s 新/s 世/b 纪/e 和/s 未/b 来/e 。/s 我/s 们/s\n", encoding="utf-8")
    (s,) = chinese_sentences(10_000, str(f))  # "我们" alone is too short to be a sentence
    assert s.text == "迈向充满希望的新世纪和未来。" and s.word_ends == [2, 4, 6, 7, 8, 10, 11, 13, 14]


def test_cuts_and_evaluation_records(tok, ngram):
    sent = Sentence("我们明天从白云机场出发。", "tpl", [2, 4, 5, 9, 11, 12])
    bounds = token_boundaries(tok, sent.text)
    cuts = make_cuts(tok, [sent], m=2)
    kinds = {c.kind: c for c in cuts}
    assert kinds["inside"].prompt + kinds["inside"].gold == sent.text
    assert len(kinds["inside"].prompt) not in bounds and len(kinds["token"].prompt) in bounds
    naive = evaluate_system(tok, System("naive", ngram, "naive"), cuts, m=2)
    fixed = evaluate_system(tok, System("fix", ngram, "backoff"), cuts, m=2)
    assert len(naive.exact) == len(fixed.rank) == len(cuts)
    inside = [i for i, c in enumerate(cuts) if c.kind == "inside"][0]
    assert fixed.rank[inside] <= naive.rank[inside] and fixed.cands[inside] > 0 and naive.cands[inside] == 0
    ref = exact_references(tok, ngram, cuts, m=2)
    # the exact conditional is a probability: at most 0 nats, and finite
    assert all(np.isfinite(v) and v <= 0 for v in ref["ll"]) and len(ref["rank"]) == len(cuts)


def test_the_legacy_sampler_is_available_seeded_and_lossless(tok):
    sampler = SegmentationSampler(tok, alpha=0.1, sampler="legacy")
    text = "Return the number of bytes in the string. 广州的白云机场"
    a = sampler.sample_ids(text, np.random.default_rng(3))
    assert tok.decode(a) == text and a == sampler.sample_ids(text, np.random.default_rng(3))
    with pytest.raises(ValueError):
        SegmentationSampler(tok, alpha=0.1, sampler="guess")


def test_report_tables_count_discordant_pairs(tok):
    from backend.services.continuation.evaluation import Cut
    from backend.services.continuation.report import methods_table, seeds_table

    cuts = [Cut("p", "g", "inside", "en")] * 4 + [Cut("p", "g", "token", "zh")] * 2

    def rec(exact, ll):
        n = len(exact)
        return {"exact": exact, "ll": ll, "top1": exact, "rank": [1] * n, "passes": [3] * n, "cands": [0] * n}

    model = {"systems": {"naive": rec([0, 0, 1, 0, 1, 0], [-2.0] * 6),
                         "fix": rec([1, 1, 1, 0, 1, 0], [-1.0] * 5 + [float("-inf")])}}
    table = methods_table(cuts, model, 5)
    fix_en = next(line for line in table.splitlines() if "| English |" in line and "| fix |" in line)
    assert "| 2 / 0 |" in fix_en and "| 75.0% |" in fix_en  # b = fix right and naive wrong on two cuts
    fix_zh = next(line for line in table.splitlines() if "| Chinese |" in line and "| fix |" in line)
    assert "| 0 / 0 |" in fix_zh
    two_seeds = seeds_table(cuts, {"a": [model, model], "b": [model, model]}, {"a": "A", "b": "B"}, 5, "a",
                            {"a": "naive", "b": "fix"}, {"a": "method", "b": "method"})
    line = next(row for row in two_seeds.splitlines() if "| English |" in row and "| B |" in row)
    assert "| 4 / 0 |" in line  # counted over (seed, cut) pairs


def test_default_method_table_pairs_the_default_against_each_method():
    from backend.services.continuation.evaluation import Cut
    from backend.services.continuation.report import default_method_table

    cuts = [Cut("p", "g", "inside", "en")] * 4 + [Cut("p", "g", "inside", "zh")] * 2 + [Cut("p", "g", "token", "en")]

    def rec(exact):
        return {"exact": exact}

    results = {"ngram": {"systems": {"naive": rec([0, 0, 0, 0, 0, 0, 1]), "multi": rec([1, 1, 0, 1, 0, 1, 0]),
                                     "su": rec([1, 0, 0, 0, 1, 0, 1])}}}
    table, best = default_method_table(cuts, results, 5, "multi")
    assert best == "multi"
    row = next(line for line in table.splitlines() if "| English |" in line and "| su |" in line)
    assert "| 4 | 75.0% | su | 25.0% |" in row and "| 2 / 0 |" in row  # the token-boundary cut is left out
    pooled = next(line for line in table.splitlines() if "| all |" in line and "| su |" in line)
    assert "| 6 |" in pooled and "| 3 / 1 |" in pooled
    _, best_su = default_method_table(cuts, {"ngram": {"systems": {"multi": rec([0] * 7), "su": rec([1] * 7)}}},
                                      5, "multi")
    assert best_su == "su"


def test_batched_sequence_scores_equal_one_pass_per_sequence():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=30, block_size=8, n_layer=1, n_head=2, n_embd=16)
    lm = GPTLM(GPT(cfg).eval(), bos_id=1)
    seqs = [[3, 4, 5], [6], [], [7, 8, 9, 10, 11, 12, 13, 14, 15, 16]]  # the last is longer than one window
    at = [[0, 3], [1], [0], [2, 10]]
    for seq, positions, (token_lp, dists) in zip(seqs, at, lm.score_sequences(seqs, at), strict=True):
        for k, t in enumerate(seq):
            assert token_lp[k] == pytest.approx(lm.next_token_logprobs(seq[:k])[t], abs=1e-5)
        for row, k in zip(dists, positions, strict=True):
            assert np.allclose(row, lm.next_token_logprobs(seq[:k]), atol=1e-5)
