"""The fix and its baselines on the shipped tokenizer with a tiny n-gram (and the shipped GPT where it matters)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.services.continuation.decoding import (
    INCONSISTENT,
    METHODS,
    NOT_CHARACTERS,
    Constraint,
    char_rank,
    choose_backoff,
    continue_prompt,
    next_char_distribution,
    score_gold,
)
from backend.services.continuation.tokenizer import utf8_complete_prefix

FIXES = ("backoff", "backoff-multi")
ALPHABET = "广州的白云机场山路太阳能 import numpy as np😀é\u2581\n"


def test_the_setting_has_the_long_pieces_of_the_post(tok):
    assert [tok.display(i) for i in tok.encode("白云机场")] == ["白云机场"]
    ext = {tok.display(i) for i in tok.index.extensions("白云".encode())}
    assert {"白云", "白云山", "白云机场"} <= ext  # Su's example: all three are tokens
    assert any(" " in tok.display(i).strip() for i in range(tok.vocab_size))  # multi-word English pieces


def test_naive_cannot_finish_the_word_but_backoff_can(tok, ngram):
    prompt = "我们明天从白云"
    naive = continue_prompt(ngram, tok, prompt, "naive", max_new_tokens=4)
    fixed = continue_prompt(ngram, tok, prompt, "backoff", max_new_tokens=4)
    assert not naive.continuation.startswith(("机场", "山", "路"))
    assert fixed.continuation.startswith("机场")  # the most frequent place in the template corpus
    assert fixed.removed and fixed.generated.startswith(fixed.removed)
    assert dict((tok.display(t), p) for t, p in fixed.candidates)  # the renormalised q over C
    # Su: one forward pass scores every candidate; the constrained step replaces the first ordinary step.
    assert fixed.constrained_steps == 1


def test_gold_probability_rises_by_orders_of_magnitude(tok, ngram):
    prompt, gold = "我们明天从白云", "机场出发。"
    naive = score_gold(ngram, tok, prompt, gold, "naive")
    fixed = score_gold(ngram, tok, prompt, gold, "backoff")
    assert fixed.logprob > naive.logprob + np.log(100)
    assert fixed.first_rank == 1 and naive.first_rank > 1


@pytest.mark.parametrize("method, rule", [("backoff", "original"), ("backoff-multi", "original"),
                                          ("backoff-multi", "prefixes")])
@pytest.mark.parametrize("seed", range(4))
def test_output_starts_with_the_removed_text(tok, ngram, method, rule, seed):
    for prompt in ["广州的白云", "The flight leaves from Baiy", "import num", "太阳", "Use import numpy a", "白云😀"]:
        c = continue_prompt(ngram, tok, prompt, method, max_new_tokens=3, temperature=1.0, seed=seed, multi_rule=rule)
        assert c.generated.startswith(c.removed)
        assert c.consistent and c.kept + c.removed == prompt
        assert c.generated[len(c.removed) :].startswith(c.continuation[: len(c.generated) - len(c.removed)])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from(list(ALPHABET)), min_size=1, max_size=14),
       method=st.sampled_from(METHODS), seed=st.integers(0, 5))
def test_property_new_text_only_and_prefix_kept(tok, ngram, text, method, seed):
    c = continue_prompt(ngram, tok, text, method, max_new_tokens=2, temperature=1.0, seed=seed)
    if method != "heal":
        assert c.consistent and c.generated.startswith(c.removed)
        # the continuation is exactly what follows the prompt in prompt + continuation
        assert c.removed == "" or text.endswith(c.removed)
        assert tok.decode(tok.encode(text)) == text
    total = sum(p for _, p in c.candidates)
    assert total <= 1 + 1e-9


def test_no_op_when_the_last_token_has_no_extensions(tok, ngram):
    prompt = "太阳能电池板装在屋顶上。"
    last = tok.encode(prompt)[-1]
    assert tok.index.extensions(tok.piece_bytes[last]) == [last]
    for seed in range(3):
        naive = continue_prompt(ngram, tok, prompt, "naive", max_new_tokens=5, temperature=1.0, seed=seed)
        for method in FIXES:
            fixed = continue_prompt(ngram, tok, prompt, method, max_new_tokens=5, temperature=1.0, seed=seed)
            assert fixed.tokens == naive.tokens and fixed.continuation == naive.continuation
            assert fixed.removed == "" and fixed.backed_off == 0


@pytest.mark.parametrize("method", METHODS)
def test_never_backs_off_across_special_tokens(tok, ngram, method):
    # A prompt ending in a special token: nothing to heal.
    assert choose_backoff(tok, tok.encode("广州的白云</s>"), method) == 0
    c = continue_prompt(ngram, tok, "广州的白云<fim_middle>", method, max_new_tokens=2)
    assert c.backed_off == 0 and c.removed == ""
    # Right after a special token: the dynamic rule may not reach across it.
    ids = tok.encode("</s>白云")
    assert ids[0] == tok.eos_id
    k = choose_backoff(tok, ids, method)
    assert k <= len(ids) - 1
    c = continue_prompt(ngram, tok, "</s>白云", method, max_new_tokens=2)
    assert "</s>" not in c.removed


@pytest.mark.parametrize("rule", ["original", "prefixes"])
def test_candidates_never_include_special_tokens(tok, rule):
    for text in ["", "白", " ", "<", "</", "a</s>"]:
        cands = Constraint(tok, tok.encode(text), True, rule).candidates()
        assert not set(cands) & tok.special_ids


@pytest.mark.parametrize("method", METHODS)
def test_byte_tokens_that_split_a_character(tok, ngram, method):
    prompt = "广州的白云😀"
    ids = tok.encode(prompt)
    assert all(tok.is_byte_token[i] for i in ids[-4:])  # the emoji is spelled by four byte-fallback tokens
    k = choose_backoff(tok, ids, method)
    assert k in (0, 4) or k > 4  # never 1-3: that would cut the character in half
    c = continue_prompt(ngram, tok, prompt, method, max_new_tokens=3, temperature=1.0, seed=1)
    assert "\ufffd" not in c.removed and "\ufffd" not in c.continuation
    if method != "heal":
        assert c.generated.startswith(c.removed)


def test_multi_and_a_byte_spelled_character(tok, ngram):
    # Nothing extends the emoji's bytes: with the "original" rule the only path re-spells it, so it is a no-op.
    c = continue_prompt(ngram, tok, "白云😀", "backoff-multi", max_new_tokens=1)
    naive = continue_prompt(ngram, tok, "白云😀", "naive", max_new_tokens=1)
    assert c.backed_off == 0 and c.tokens == naive.tokens
    # The llama.cpp rule lets byte tokens (prefixes) regenerate the character one byte at a time.
    c = continue_prompt(ngram, tok, "白云😀", "backoff-multi", max_new_tokens=1, multi_rule="prefixes")
    assert c.removed.endswith("😀") and c.generated.startswith(c.removed)
    assert c.constrained_steps >= 4


def test_utf8_complete_prefix():
    s = "a😀é白".encode()
    for cut in range(len(s) + 1):
        kept = utf8_complete_prefix(s[:cut])
        kept.decode("utf-8")  # never raises
        assert s.startswith(kept) and cut - len(kept) < 4


@pytest.mark.parametrize("method", ["backoff", "backoff-multi", "naive"])
def test_candidate_probabilities_sum_to_one(tok, ngram, method):
    c = continue_prompt(ngram, tok, "去广州的白云", method, max_new_tokens=1)
    probs = [p for _, p in c.candidates]
    if method == "naive":  # a full next-token distribution, shown as its top entries
        assert 0 < sum(probs) <= 1 + 1e-9
        full = ngram.next_token_probs(tok.encode("去广州的白云"))
        assert full.sum() == pytest.approx(1.0)
    else:
        assert sum(probs) == pytest.approx(1.0)
        assert all(tok.piece_bytes[t].startswith(c.removed.encode()) for t, _ in c.candidates if method == "backoff")
    assert probs == sorted(probs, reverse=True)


def test_heal_is_a_soft_bias_with_one_greedy_step_and_strips_the_prompt(tok, ngram):
    c = continue_prompt(ngram, tok, "我们明天从白云", "heal", max_new_tokens=2)
    assert c.constrained_steps == 1 and c.continuation.startswith("机场")
    # the bias is soft: tokens outside the extension set keep some probability
    outside = [p for t, p in c.candidates if not tok.piece_bytes[t].startswith("白云".encode())]
    assert outside and 0 < sum(outside) < 1
    # stripping: a trailing space is removed from the prompt, so the result may no longer extend it
    spaced = continue_prompt(ngram, tok, "import numpy ", "heal", max_new_tokens=2)
    assert spaced.removed and not spaced.removed.endswith(" ")


def test_multi_backs_off_two_tokens_for_import_numpy(tok, ngram):
    ids = tok.encode("Use import numpy")
    k = choose_backoff(tok, ids, "backoff-multi")
    assert k >= 2  # one token is not enough (Su's example)
    c = continue_prompt(ngram, tok, "Use import numpy", "backoff-multi", max_new_tokens=2)
    assert c.continuation.startswith(" as np")


def test_gpt_continuation(tok, gpt):
    prompt = "Return the number of by"
    naive = continue_prompt(gpt, tok, prompt, "naive", max_new_tokens=3)
    fixed = continue_prompt(gpt, tok, prompt, "backoff", max_new_tokens=3)
    assert fixed.continuation.startswith("tes")
    assert not naive.continuation.startswith("tes")
    # one forward pass per constrained step scores every candidate at once; then the same ordinary steps
    assert fixed.forward_passes <= naive.forward_passes + fixed.constrained_steps
    assert sum(p for _, p in fixed.candidates) == pytest.approx(1.0)


def test_unknown_method(tok, ngram):
    with pytest.raises(ValueError):
        continue_prompt(ngram, tok, "x", "guess")


def test_next_character_distribution_of_naive_groups_the_next_token_distribution(tok, ngram):
    prompt = "我们明天从白云"
    dist = next_char_distribution(ngram, tok, prompt, "naive")
    p = ngram.next_token_probs(tok.encode(prompt))
    jichang = sum(p[i] for i, b in enumerate(tok.piece_bytes) if i not in tok.special_ids and b.startswith("机".encode()))
    assert dist["机"] == pytest.approx(jichang)
    assert sum(dist.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["backoff", "backoff-multi", "heal"])
def test_next_character_distribution_of_the_fixes(tok, ngram, method):
    prompt = "我们明天从白云"
    dist = next_char_distribution(ngram, tok, prompt, method)
    assert sum(dist.values()) == pytest.approx(1.0)
    # the first character after the prompt under the fix: 机 (airport) most likely, as the greedy decoding says
    assert max((c for c in dist if c not in NOT_CHARACTERS), key=dist.get) == "机"
    assert char_rank(dist, "机") == 1
    if method == "backoff":  # q over C, then the next step after the removed token itself
        ids = tok.encode(prompt)
        lp = ngram.next_token_logprobs(ids[:-1])
        cands = tok.index.extensions(tok.piece_bytes[ids[-1]])
        q = np.exp(lp[cands] - np.logaddexp.reduce(lp[cands]))
        by_char = sum(qi for t, qi in zip(cands, q, strict=True) if tok.piece_bytes[t][len("白云".encode()):]
                      .startswith("机".encode()))
        after_r = ngram.next_token_probs(ids)
        tail = q[cands.index(ids[-1])] * sum(after_r[i] for i, b in enumerate(tok.piece_bytes)
                                              if i not in tok.special_ids and b.startswith("机".encode()))
        assert dist["机"] == pytest.approx(by_char + tail)


def test_char_rank_counts_only_characters():
    dist = {"a": 0.5, "b": 0.2, INCONSISTENT: 0.25, "</s>": 0.05}
    assert char_rank(dist, "a") == 1 and char_rank(dist, "b") == 2 and char_rank(dist, "z") == 4
