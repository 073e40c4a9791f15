"""HTTP tests of /api/attention/* and the /attention page: success and every kind of bad input."""

from __future__ import annotations

import html as html_lib
import json
import json.decoder
import math
from pathlib import Path

import pytest
import torch

from backend import create_app
from backend.services.attention.experiment import CLAIMS, MODELS, N_TRAIN, SEEDS, VARIANTS
from backend.services.attention.model import LM, ModelConfig, save_checkpoint
from backend.services.attention.scoring import DEFAULT_DATA, DEFAULT_VARIANTS
from tests.conftest import config_for_tests as app_config


@pytest.fixture
def shipped(tmp_path):
    """The app reading the shipped checkpoints and results."""
    app = create_app(app_config(tmp_path, ATTENTION_DATA_PATH=str(DEFAULT_DATA)))
    return app.test_client()


@pytest.fixture
def tiny_data(tmp_path):
    """A data folder of tiny random models (fast, and independent of the shipped training run)."""
    folder = tmp_path / "attention_data"
    folder.mkdir()
    for name, layers in MODELS.items():
        torch.manual_seed(0)
        save_checkpoint(LM(ModelConfig(layers, d_model=16, n_heads=2, train_len=N_TRAIN)), str(folder / f"ckpt_{name}.pt"))
    return folder


@pytest.fixture
def client(tmp_path, tiny_data):
    app = create_app(app_config(tmp_path, ATTENTION_DATA_PATH=str(tiny_data), ATTENTION_MAX_SCORE_LENGTH=300))
    return app.test_client()


def post(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


# --- /api/attention/score ---------------------------------------------------------------------------------

def test_score_default_variants(client):
    text = "for i in range(10):\n    print(i)\n" * 5
    r = post(client, "/api/attention/score", {"text": text})
    assert r.status_code == 200, r.json
    body = r.json
    n = len(text.encode())
    assert body["bytes"] == n and body["train_len"] == N_TRAIN
    assert [v["name"] for v in body["variants"]] == DEFAULT_VARIANTS
    for v in body["variants"]:
        assert len(v["losses"]) == n - 1
        assert all(math.isfinite(x) and x >= 0 for x in v["losses"])
        assert abs(v["mean_loss"] - sum(v["losses"]) / len(v["losses"])) < 1e-3
        assert len(v["bucket_mean_loss"]) == math.ceil((n - 1) / N_TRAIN)


def test_score_inside_training_length_rerope_equals_rope(client):
    """ReRoPE w=64 only differs from RoPE past the window: on 40 bytes the losses are identical."""
    r = post(client, "/api/attention/score", {"text": "x = 1\ny = 2\nprint(x + y)\n# done here!!", "variants": ["rope", "rerope_w64"]})
    assert r.status_code == 200
    a, b = r.json["variants"]
    assert a["losses"] == b["losses"]


def test_score_multibyte_text_counts_bytes(client):
    r = post(client, "/api/attention/score", {"text": "é€", "variants": ["hwfa"]})
    assert r.status_code == 200 and r.json["bytes"] == 5 and len(r.json["variants"][0]["losses"]) == 4


def test_score_shipped_models_extrapolate_better_with_rerope(shipped):
    """The shipped checkpoints: past 4N, ReRoPE and HWFA2 predict Python better than plain RoPE."""
    text = Path(json.decoder.__file__).read_text()[:1024]  # stdlib source, like the training text
    r = post(shipped, "/api/attention/score", {"text": text, "variants": ["rope", "rerope_w64", "hwfa2_f1"]})
    assert r.status_code == 200
    tail = {v["name"]: sum(v["bucket_mean_loss"][4:]) for v in r.json["variants"]}
    assert tail["rerope_w64"] < tail["rope"] and tail["hwfa2_f1"] < tail["rope"]


@pytest.mark.parametrize("body,field", [
    ({"text": ""}, "text"),
    ({"text": "a"}, "text"),
    ({"text": "x" * 301}, "text"),
    ({"text": "ab", "variants": []}, "variants"),
    ({"text": "ab", "variants": ["gpt4"]}, "variants.0"),
    ({"text": 5}, "text"),
    ({}, "text"),
])
def test_score_422(client, body, field):
    r = post(client, "/api/attention/score", body)
    assert r.status_code == 422, r.json
    assert r.json["field"] == field and r.json["error"]


def test_score_limit_message_names_the_limit(client):
    r = post(client, "/api/attention/score", {"text": "x" * 301})
    assert (r.json["limit"], r.json["limit_value"]) == ("ATTENTION_MAX_SCORE_LENGTH", 300)
    assert r.json["error"] == "a text of 301 bytes (UTF-8) is over the limit of 300 bytes; shorten it to at most 300 bytes"


def test_score_lone_surrogate_400(client):
    r = client.post("/api/attention/score", data='{"text": "ab\\ud800"}', content_type="application/json")
    assert r.status_code == 400 and "lone surrogate" in r.json["error"]


def test_score_bad_json_400(client):
    r = client.post("/api/attention/score", data="{not json", content_type="application/json")
    assert r.status_code == 400 and "JSON" in r.json["error"]
    r = client.post("/api/attention/score", data="", content_type="application/json")
    assert r.status_code == 400


def test_score_body_too_large_413(tmp_path, tiny_data):
    app = create_app(app_config(tmp_path, ATTENTION_DATA_PATH=str(tiny_data), MAX_JSON_BYTES=1000))
    r = post(app.test_client(), "/api/attention/score", {"text": "x" * 2000})
    assert r.status_code == 413


def test_score_missing_checkpoints_503(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    app = create_app(app_config(tmp_path, ATTENTION_DATA_PATH=str(empty)))
    r = post(app.test_client(), "/api/attention/score", {"text": "hello"})
    assert r.status_code == 503 and "ckpt_" in r.json["error"]


def test_score_restores_torch_threads(client):
    before = torch.get_num_threads()
    post(client, "/api/attention/score", {"text": "hello", "variants": ["rope"]})
    assert torch.get_num_threads() == before


# --- /api/attention/relpos --------------------------------------------------------------------------------

def test_relpos_modes(client):
    r = post(client, "/api/attention/relpos", {"mode": "rope", "n": 6})
    assert r.status_code == 200
    m = r.json["matrix"]
    assert m[5] == [5, 4, 3, 2, 1, 0] and m[0][1:] == [None] * 5 and r.json["max"] == 5
    r = post(client, "/api/attention/relpos", {"mode": "rerope", "n": 40, "window": 8})
    assert r.json["max"] == 8 and r.json["matrix"][39][0] == 8 and r.json["matrix"][39][35] == 4
    assert r.json["distinct"] == 9
    r = post(client, "/api/attention/relpos", {"mode": "leaky", "n": 40, "window": 8, "k": 4})
    assert r.json["max"] == 8 + (39 - 8) / 4 and r.json["matrix"][20][0] == 8 + 12 / 4


def test_relpos_largest_n(client):
    r = post(client, "/api/attention/relpos", {"mode": "rerope", "n": 512, "window": 128})
    assert r.status_code == 200 and len(r.json["matrix"]) == 512 and r.json["max"] == 128


@pytest.mark.parametrize("body,field", [
    ({"mode": "rope", "n": 0}, "n"),
    ({"mode": "rope", "n": 513}, "n"),
    ({"mode": "rope", "n": 2.5}, "n"),
    ({"mode": "alibi", "n": 8}, "mode"),
    ({"mode": "rerope", "n": 8}, "window"),
    ({"mode": "rerope", "n": 8, "window": 0}, "window"),
    ({"mode": "leaky", "n": 8, "window": 4}, "k"),
    ({"mode": "leaky", "n": 8, "window": 4, "k": 0}, "k"),
    ({"mode": "leaky", "n": 8, "window": 4, "k": -2}, "k"),
    ({"mode": "leaky", "n": 8, "window": 4, "k": 1e-300}, "k"),
    ({"mode": "rerope", "n": 8, "window": 10**7}, "window"),
    ({"n": 8}, "mode"),
])
def test_relpos_422(client, body, field):
    r = post(client, "/api/attention/relpos", body)
    assert r.status_code == 422, r.json
    assert r.json["field"] == field


def test_relpos_limit_from_config(tmp_path, tiny_data):
    app = create_app(app_config(tmp_path, ATTENTION_RELPOS_MAX_N=64))
    r = post(app.test_client(), "/api/attention/relpos", {"mode": "rope", "n": 65})
    assert r.status_code == 422 and r.json["limit"] == "ATTENTION_RELPOS_MAX_N"
    assert r.json["error"] == "65 positions is over the limit of 64 positions; use at most 64 positions"


def test_relpos_bad_json_400(client):
    assert client.post("/api/attention/relpos", data="[", content_type="application/json").status_code == 400


# --- results and page -------------------------------------------------------------------------------------

def test_results(shipped):
    """The shipped run is the whole protocol: every model of MODELS trained for all of its seeds (issue 18: >= 3),
    every variant and every claim evaluated on all seeds, >= 128 windows, and the score form's checkpoints are
    seed 0 of this run (not the earlier one)."""
    r = shipped.get("/api/attention/results")
    assert r.status_code == 200
    body = r.json
    summary = body["summary"]
    seeds = summary["seeds"]
    assert seeds == list(SEEDS) and len(seeds) >= 3
    assert set(body["train_curves"]) == set(MODELS) and set(body["model_labels"]) == set(MODELS)
    assert set(summary["train_seconds"]) == {f"{name}_s{seed}" for name in MODELS for seed in SEEDS}
    assert {row["variant"] for row in body["results"]} == {v.name for v in VARIANTS}
    assert {(row["variant"], row["set"], row["T"]) for row in body["results"]} == {
        (v.name, set_name, T) for v in VARIANTS for set_name in ("non-rep", "rep") for T in (128, 256, 512, 1024)}
    for row in body["results"]:
        assert row["seeds"] == len(seeds) == len(row["acc_seeds"]) and row["windows"] >= 128
        assert row["acc_low"] <= row["acc"] <= row["acc_high"]
        assert abs(sum(row["acc_seeds"]) / len(row["acc_seeds"]) - row["acc"]) < 1e-4
    assert [c["claim"] for c in body["claims"]] == [c.key for c in CLAIMS]
    for c in body["claims"]:
        assert c["seeds"] == len(seeds) and len(c["per_seed"]) == len(seeds) and c["windows"] >= 128
        assert c["low"] <= c["difference"] <= c["high"]
        assert c["words"] in ("higher", "lower", "about equal", "not resolved")
    assert any(row["su_row"] == "Baseline RoPE" and row["rep"] == 24.17 for row in body["su_table"])
    assert summary["train_len"] == N_TRAIN and summary["eval_count"] >= 128
    for name in MODELS:  # the score form's checkpoints: seed 0 of this run, same steps as the results
        extra = torch.load(DEFAULT_DATA / f"ckpt_{name}.pt", map_location="cpu", weights_only=True)["extra"]
        assert extra["seed"] == SEEDS[0] and extra["steps"] == summary["steps"], name


def test_results_unreadable_503(tmp_path, tiny_data):
    (tiny_data / "exp_results.csv").write_text("variant,label\nrope,Baseline RoPE\n")  # an old or cut file
    (tiny_data / "exp_train_log.csv").write_text("model,seed,step,loss,smooth_loss\n")
    (tiny_data / "exp_summary.json").write_text("{}")
    app = create_app(app_config(tmp_path, ATTENTION_DATA_PATH=str(tiny_data)))
    r = app.test_client().get("/api/attention/results")
    assert r.status_code == 503 and r.json["code"] == "results_unavailable"
    assert app.test_client().get("/attention").status_code == 200


def test_results_missing_503(client):
    r = client.get("/api/attention/results")
    assert r.status_code == 503 and r.json["code"] == "results_unavailable"


def test_page(shipped):
    r = shipped.get("/attention")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'id="results-table"' in html and "Baseline RoPE" in html and 'id="relpos-chart"' in html
    assert 'id="claims-table"' in html and 'for="score-text"' in html
    assert shipped.get("/static/attention/attention.js").status_code == 200
    assert shipped.get("/attention/experiment.png").mimetype == "image/png"


def test_page_without_results_still_renders(client):
    r = client.get("/attention")
    assert r.status_code == 200 and 'id="results-error"' in r.get_data(as_text=True)
    assert client.get("/attention/experiment.png").status_code == 404


def test_page_listed_on_home(shipped):
    assert "/attention" in shipped.get("/").get_data(as_text=True)


def test_page_names_the_variants_a_partial_run_left_out(tmp_path, tiny_data):
    rows = (DEFAULT_DATA / "exp_results.csv").read_text().splitlines()
    (tiny_data / "exp_results.csv").write_text("\n".join([rows[0], *[r for r in rows[1:] if r.startswith("rope,")]]))
    for name in ("exp_train_log.csv", "exp_summary.json"):
        (tiny_data / name).write_text((DEFAULT_DATA / name).read_text())
    app = create_app(app_config(tmp_path, ATTENTION_DATA_PATH=str(tiny_data)))
    page = app.test_client().get("/attention").get_data(as_text=True)
    assert page.count('<tr data-variant="') == 1 and '<tr data-variant="rope">' in page
    listed = page.split('id="not-run">', 1)[1].split("</p>", 1)[0]
    assert " ".join(html_lib.unescape(listed).split()).endswith(
        ": " + "; ".join(v.label for v in VARIANTS if v.name != "rope") + ".")
