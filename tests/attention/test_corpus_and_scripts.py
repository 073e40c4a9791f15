"""The local corpus, the evaluation helpers, and smoke runs of the experiment and benchmark scripts."""

from __future__ import annotations

import csv
import json
import runpy
import sys
import sysconfig
from pathlib import Path

import pytest
import torch

from backend.services.attention.corpus import (
    SKIP_PARTS,
    eval_windows,
    load_corpus,
    mixed_batch,
    random_batch,
    repeated_windows,
    stdlib_files,
)
from backend.services.attention.evaluate import bucket_means, score_text, token_stats
from backend.services.attention.experiment import MODELS, SU_TABLE, VARIANTS
from backend.services.attention.model import LM, ModelConfig

ROOT = Path(__file__).resolve().parents[2]


def test_corpus_split_is_by_file_and_deterministic():
    root = Path(sysconfig.get_paths()["stdlib"])
    rel = [f.relative_to(root).as_posix() for f in stdlib_files()]
    assert rel == sorted(rel) and "json/decoder.py" in rel
    assert not any(set(Path(r).parts) & SKIP_PARTS for r in rel)
    train, test = load_corpus()
    assert train.dtype == torch.uint8 and len(train) > 10 * len(test) > 0
    again, _ = load_corpus.__wrapped__()  # a fresh read, not the memoised one
    assert torch.equal(train, again)


def test_batches_and_eval_sets():
    data = torch.arange(256, dtype=torch.uint8).repeat(20)
    x, y = random_batch(data, 4, 16, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 16) and torch.equal(x[:, 1:], y[:, :-1])
    rows = eval_windows(data, 5, 32)
    assert rows.shape == (5, 33)
    rep = repeated_windows(data, 3, 32)
    assert rep.shape == (3, 33) and torch.equal(rep[:, :16], rep[:, 16:32])


def test_token_stats_and_score_text():
    torch.manual_seed(0)
    model = LM(ModelConfig(MODELS["hwfa"], d_model=16, n_heads=2)).eval()
    rows = torch.randint(0, 256, (3, 20))
    loss, hit = token_stats(model, rows, micro_batch=2)
    assert loss.shape == hit.shape == (3, 19) and set(hit.unique().tolist()) <= {0.0, 1.0}
    assert bucket_means(torch.ones(2, 10), 4) == [1.0, 1.0, 1.0]
    scores = score_text(model, b"hello world")
    expected, _ = token_stats(model, torch.tensor([list(b"hello world")]))
    assert len(scores) == 10 and scores == expected[0].tolist()
    with pytest.raises(ValueError):
        score_text(model, b"x")


def test_every_variant_has_a_model_and_a_su_entry():
    assert {v.model for v in VARIANTS} == set(MODELS)
    assert set(SU_TABLE) == {v.name for v in VARIANTS}


def _run_script(monkeypatch, script: str, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", [script, *args])
    before = torch.get_num_threads()
    try:
        runpy.run_path(str(ROOT / "scripts" / script), run_name="__main__")
    finally:
        torch.set_num_threads(before)


def test_experiment_script_smoke(monkeypatch, tmp_path, capsys):
    runs = tmp_path / "runs"
    _run_script(monkeypatch, "exp_extrapolation.py", "all", "--steps", "3", "--out", str(tmp_path), "--runs", str(runs),
                "--eval-count", "2", "--models", "baseline", "hwfa", "--seeds", "0", "1", "--d-model", "16",
                "--lengths", "128", "256")
    rows = list(csv.DictReader((tmp_path / "exp_results.csv").open()))
    names = {r["variant"] for r in rows}
    assert "hwfa" in names and "rerope_w64" in names and "hwfa2_f1" not in names
    assert {r["T"] for r in rows} == {"128", "256"}
    assert all(r["seeds"] == "2" and r["windows"] == "2" and len(r["acc_seeds"].split()) == 2 for r in rows)
    assert all(float(r["acc_low"]) <= float(r["acc"]) <= float(r["acc_high"]) for r in rows)
    claims = list(csv.DictReader((tmp_path / "exp_claims.csv").open()))
    assert claims and all({r["a"], r["b"]} <= names for r in claims)  # only claims whose variants were trained
    summary = json.loads((tmp_path / "exp_summary.json").read_text())
    assert summary["steps"] == 3 and summary["seeds"] == [0, 1] and summary["repeat_fraction"] == 0.75
    # seed 0's checkpoints are the service's; every seed's stay in the runs folder
    assert (tmp_path / "ckpt_hwfa.pt").stat().st_size < 200_000 and (runs / "ckpt_hwfa_s1.pt").exists()
    assert not (tmp_path / "ckpt_hwfa_s1.pt").exists() and (tmp_path / "exp_extrapolation.png").exists()
    out = capsys.readouterr().out
    assert "| HWFA (w=16) |" in out and "| PI (k = 8) ruins the training length |" in out


def test_mixed_batch_repeats_chunks_deterministically():
    data = torch.arange(256, dtype=torch.uint8).repeat(40)
    x, y = mixed_batch(data, 8, 32, torch.Generator().manual_seed(3), repeat_fraction=0.5, periods=(4, 6))
    x2, _ = mixed_batch(data, 8, 32, torch.Generator().manual_seed(3), repeat_fraction=0.5, periods=(4, 6))
    assert torch.equal(x, x2) and torch.equal(x[:, 1:], y[:, :-1])
    for row in torch.cat([x, y[:, -1:]], dim=1)[4:]:  # the repeated half: some period p in 4..6 fits the row
        assert any(torch.equal(row[p:], row[:-p]) for p in range(4, 7))
    for row in x[:4]:  # the rest are plain windows of the text (consecutive bytes here)
        assert torch.equal((row[1:] - row[:-1]) % 256, torch.ones(31, dtype=torch.long))


def test_benchmark_script_smoke(monkeypatch, capsys):
    _run_script(monkeypatch, "bench_attention.py", "--sizes", "128", "256", "--stack-sizes", "128",
                "--rounds", "1", "--repeats", "1", "--core-n", "256")
    out = capsys.readouterr().out
    assert "prefill n=  256 window_w64" in out and "BAR window-attention memory" in out
    assert "stack prefill n=  128" in out and "decode cached=  256 per token" in out
    assert "BAR HWFA2 attention cores at n=256" in out and "core window_w64" in out


def test_claims_pair_on_the_seeds_both_variants_have():
    script = runpy.run_path(str(ROOT / "scripts" / "exp_extrapolation.py"), run_name="not_main")
    by_seed = {0: [0.5, 0.6, 0.7], 1: [0.4, 0.5, 0.6], 2: [0.9, 0.9, 0.9]}
    # rerope_w64 has seeds 0, 1, 2; hwfa only seed 1 (its other seeds not trained): hwfa - rerope_w64 pairs seed 1
    windows = {
        ("rerope_w64", "non-rep", 1024, "acc"): ((0, 1, 2), torch.tensor(list(by_seed.values())).numpy()),
        ("hwfa", "non-rep", 1024, "acc"): ((1,), torch.tensor([[0.6, 0.7, 0.8]]).numpy()),
    }
    rows = {r["claim"]: r for r in script["claims"](windows)}
    assert set(rows) == {"hwfa_vs_rerope"}
    row = rows["hwfa_vs_rerope"]
    assert row["seeds"] == 1 and row["windows"] == 3
    assert row["difference"] == pytest.approx(20.0) and row["per_seed"] == "+20.00"
