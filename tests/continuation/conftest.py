"""Shared fixtures: the shipped tokenizer, a tiny n-gram trained in a second on template sentences, the GPT."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.services.continuation.corpus import template_sentences
from backend.services.continuation.ngram import NGramLM
from backend.services.continuation.tokenizer import Tokenizer
from backend.services.continuation.training import encode_sentences

DATA = Path(__file__).resolve().parents[2] / "backend" / "services" / "continuation" / "data"


@pytest.fixture(scope="session")
def tok() -> Tokenizer:
    return Tokenizer.from_file(str(DATA / "tokenizer.model"))


@pytest.fixture(scope="session")
def ngram(tok: Tokenizer) -> NGramLM:
    sentences = [s.text for s in template_sentences(600, seed=7)]
    return NGramLM.train(encode_sentences(tok, sentences), tok.vocab_size, tok.bos_id)


@pytest.fixture(scope="session")
def gpt(tok: Tokenizer):
    from backend.services.continuation.gpt import GPTLM, load_checkpoint

    model, _ = load_checkpoint(str(DATA / "gpt.pt"))
    return GPTLM(model, tok.bos_id)
