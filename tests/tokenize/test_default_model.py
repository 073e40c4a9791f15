"""The shipped default model keeps common English and Chinese words whole on held-out text (issue goal).

The same check as ``scripts/train_tokenizer.py``'s report (definitions in ``coverage.py``); it parses the
docstrings of the installed packages, hence slow.
"""

from __future__ import annotations

import pytest

from backend.services.tokenize import get_model, viterbi
from backend.services.tokenize.corpus import chinese_lines, english_lines, split_heldout
from backend.services.tokenize.coverage import chinese_coverage, english_coverage, jieba_top_words
from backend.services.tokenize.models import jieba_dict_path


@pytest.mark.slow
def test_default_model_keeps_common_words_whole_on_heldout_text():
    vocab = get_model("default")
    _, en_heldout = split_heldout(english_lines())
    _, zh_heldout = split_heldout(chinese_lines())
    en = english_coverage(vocab, en_heldout)
    assert en.words == 1000 and en.occurrences > 20_000
    assert en.fraction >= 0.90, en.line("English")
    words = jieba_top_words(jieba_dict_path())
    assert len(words) == 1000 and all(len(w) >= 2 for w in words)
    zh = chinese_coverage(vocab, zh_heldout, words, get_model("jieba"))
    assert zh.occurrences > 10_000
    assert zh.fraction >= 0.70, zh.line("Chinese")


def test_coverage_check_can_fail():
    """A character-level vocabulary with no multi-character pieces keeps no word whole."""
    from backend.services.tokenize import Vocab

    chars = Vocab({c: -3.0 for c in "abcdefghijklmnopqrstuvwxyz 的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年"},
                  unk_logprob=-9.0)
    lines = ["the cat and the dog and the bird", "我们在中国"]
    en = english_coverage(chars, lines, top=3)
    assert en.words == 3 and en.one_piece == 0 and en.occurrences == 6
    zh = chinese_coverage(chars, lines, ["我们", "中国"], get_model("jieba"))
    assert zh.one_piece == 0 and zh.occurrences == 2
    whole = Vocab({"the": -1.0, " the": -1.0, " and": -1.0, "我们": -1.0, "中国": -1.0, "在": -1.0}, unk_logprob=-9.0)
    assert english_coverage(whole, lines, top=2).one_piece == 2  # "the" (line start or " the") and "and"
    assert chinese_coverage(whole, lines, ["我们", "中国"], get_model("jieba")).one_piece == 2
    assert viterbi("我们在中国", whole)[0] == ["我们", "在", "中国"]
