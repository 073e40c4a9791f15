"""The importance-sampling estimate of P(gold | prompt text) against the exact marginal on tiny models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from backend.services.continuation.exact import PrefixDP, conditional_logprob
from backend.services.continuation.gpt import GPT, GPTLM, GPTConfig
from backend.services.continuation.marginal import LatticeProposal, conditional_estimate
from tests.continuation.test_exact import EOS, TINY, brute_prefix_prob, tiny_lm

CASES = [(b"ab", b"ba"), (b"aab", b"a"), (b"babab", b"bb"), (b"a", b"b"), (b"bba", b"aab")]


def proposal() -> LatticeProposal:
    return LatticeProposal(TINY, np.zeros(len(TINY)), alphas=(0.5, 1.0))


def test_proposal_probabilities_sum_to_one_over_every_segmentation():
    prop = proposal()
    tab = prop.tables(b"abab")
    # enumerate every (j, segmentation of text[:j]) the lattice allows and add up q
    total = 0.0

    def walk(pos: int, tokens: list[int]) -> None:
        nonlocal total
        if pos in tab.finals:
            total += math.exp(prop.log_q(tab, pos, tokens))
        for t, b in enumerate(TINY):
            if b and b"abab"[pos:].startswith(b) and pos + len(b) <= 3:
                walk(pos + len(b), [*tokens, t])

    walk(0, [])
    assert total == pytest.approx(1.0)


@pytest.mark.parametrize("prompt, gold", CASES)
def test_estimates_agree_with_the_exact_dp_on_a_tiny_ngram(prompt, gold):
    lm = tiny_lm(0)
    dp = PrefixDP(lm, TINY, eos_id=EOS)
    log_px, exact = conditional_logprob(dp, prompt, gold)
    est = conditional_estimate(lm, proposal(), prompt, gold, 400, np.random.default_rng(0))
    assert abs(est.log_prob - exact) < 4 * est.se + 1e-9  # within the stated standard error
    assert est.se < 0.3 and est.ess > 20
    assert est.log_prompt == pytest.approx(log_px, abs=4 * est.se_prompt + 1e-9)


def test_the_prompt_estimate_is_unbiased():
    # mean of many small-sample estimates of P(prompt) converges to the exact value
    lm = tiny_lm(1)
    dp = PrefixDP(lm, TINY, eos_id=EOS)
    log_px, _ = conditional_logprob(dp, b"abba", b"a")
    values = [math.exp(conditional_estimate(lm, proposal(), b"abba", b"a", 8, np.random.default_rng(s)).log_prompt)
              for s in range(300)]
    assert np.mean(values) == pytest.approx(math.exp(log_px), rel=3 * np.std(values) / np.sqrt(300) / np.mean(values))


def test_estimates_agree_with_brute_force_on_a_tiny_gpt():
    # a random tiny GPT has a long context, so the exact answer comes from enumerating token sequences
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(TINY), block_size=16, n_layer=1, n_head=2, n_embd=16)).eval()
    with torch.no_grad():
        model.tok_emb.weight.mul_(40)  # a peaked model, so that segmentations matter
    lm = GPTLM(model, bos_id=0)
    for prompt, gold in [(b"ab", b"ba"), (b"aba", b"b")]:
        exact = math.log(brute_prefix_prob(lm, TINY, prompt + gold)) - math.log(brute_prefix_prob(lm, TINY, prompt))
        est = conditional_estimate(lm, proposal(), prompt, gold, 300, np.random.default_rng(1))
        assert abs(est.log_prob - exact) < 4 * est.se + 1e-9


def test_rejects_empty_texts():
    with pytest.raises(ValueError):
        conditional_estimate(tiny_lm(0), proposal(), b"", b"a", 4, np.random.default_rng(0))
