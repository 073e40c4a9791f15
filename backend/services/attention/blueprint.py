"""HTTP for the attention service: per-position loss under each trained model, relative-position matrices,
the stored length-extrapolation results, and the ``/attention`` page.

One score request runs at most len(VARIANTS) forward passes of a 330k-parameter model over at most
ATTENTION_MAX_SCORE_LENGTH bytes (about a second on one core), so it runs inline rather than as a job.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from flask import current_app, render_template, send_file
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from backend.services.attention.experiment import N_TRAIN, SU_TABLE, VARIANTS
from backend.services.attention.positions import rel_pos
from backend.services.attention.scoring import DEFAULT_DATA, DEFAULT_VARIANTS, DataMissing, ModelStore
from backend.web.api import ApiBlueprint
from backend.web.caps import capped_by, fmt, refuse
from backend.web.errors import ApiError
from backend.web.pages import register_page

bp = ApiBlueprint("attention", __name__, template_folder="templates", static_folder="static",
                  static_url_path="/static/attention")
register_page("HWFA + ReRoPE", "attention.page",
              "length extrapolation of small byte LMs: RoPE, PI, ReRoPE, Leaky ReRoPE, HWFA and HWFA2")

VariantName = Literal[tuple(v.name for v in VARIANTS)]  # type: ignore[valid-type]

EXAMPLE = '''def read_config(path):
    """Read a key = value file into a dict, skipping comments."""
    result = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, _, value = line.partition("=")
            result[key.strip()] = value.strip()
    return result


def write_config(path, config):
    """Write a dict back as key = value lines, sorted by key."""
    with open(path, "w", encoding="utf-8") as f:
        for key in sorted(config):
            f.write(f"{key} = {config[key]}\\n")
'''


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, description="text to score as UTF-8 bytes: at least 2 and at most "
                      "ATTENTION_MAX_SCORE_LENGTH bytes (the models were trained on 128-byte windows)")
    variants: list[VariantName] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(DEFAULT_VARIANTS), min_length=1, max_length=len(VARIANTS),
        description="which model + position-encoding variants to score with (see GET /api/attention/results)")

    def check_caps(self, settings: Mapping[str, Any]) -> None:
        """The text is capped in UTF-8 bytes (what the byte-level models read), not characters."""
        size = len(self.text.encode("utf-8", "surrogatepass"))
        limit = settings["ATTENTION_MAX_SCORE_LENGTH"]
        refuse("ATTENTION_MAX_SCORE_LENGTH", size, settings, noun="bytes", field="text",
               said=f"a text of {fmt(size)} bytes (UTF-8)", fix=f"shorten it to at most {fmt(limit)} bytes")


class VariantScore(BaseModel):
    name: str
    label: str
    model: str = Field(description="the trained checkpoint the variant runs")
    losses: list[float] = Field(description="loss (nats) of byte t + 1 given bytes 0..t, for every t")
    mean_loss: float
    bucket_mean_loss: list[float] = Field(description="mean loss over positions [0, 128), [128, 256), ...")


class ScoreResponse(BaseModel):
    bytes: int = Field(description="length of the text in UTF-8 bytes")
    train_len: int = Field(description="the models' training length N")
    variants: list[VariantScore]


class RelposRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["rope", "rerope", "leaky"] = Field(description="rope: i - j; rerope: min(i - j, w); "
                                                     "leaky: i - j inside the window, w + (i - j - w) / k past it")
    n: int = Field(
        ge=1, description="sequence length: the matrix is n x n (at most ATTENTION_RELPOS_MAX_N)",
        json_schema_extra=capped_by("ATTENTION_RELPOS_MAX_N", "positions"),
    )
    window: int | None = Field(None, ge=1, le=1_000_000, validate_default=True,
                               description="w, required for rerope and leaky")
    k: float | None = Field(None, ge=1e-3, le=1e6, allow_inf_nan=False, validate_default=True,
                            description="leaky slope divisor (slope 1/k past the window; k < 1 is steeper, as in "
                            "InvLeaky's k = 1/16), required for leaky")

    @field_validator("window")
    @classmethod
    def _window_needed(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is None and info.data.get("mode") in ("rerope", "leaky"):
            raise ValueError(f"window is required for mode {info.data['mode']!r}")
        return value

    @field_validator("k")
    @classmethod
    def _k_needed(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is None and info.data.get("mode") == "leaky":
            raise ValueError("k is required for mode 'leaky'")
        return value


class RelposResponse(BaseModel):
    mode: str
    n: int
    window: int | None
    k: float | None
    matrix: list[list[float | None]] = Field(description="P_ij for j <= i (4 decimals); null above the diagonal, "
                                             "where a causal model never looks")
    max: float = Field(description="the largest relative position any pair sees")
    distinct: int = Field(description="how many distinct values the causal entries take")


class ResultRow(BaseModel):
    variant: str
    label: str
    model: str
    set: Literal["rep", "non-rep"]
    T: int
    seeds: int = Field(description="training seeds averaged")
    windows: int = Field(description="test windows (the same for every variant and seed)")
    acc: float = Field(description="per-token accuracy, mean over seeds and windows")
    acc_low: float = Field(description="95% bootstrap interval over windows (seeds averaged)")
    acc_high: float
    acc_seeds: list[float] = Field(description="the mean accuracy of each seed")
    loss: float
    loss_low: float
    loss_high: float
    acc_second_half: float = Field(description="accuracy on positions T/2..T-1 (on rep: the copied half)")
    acc_second_half_low: float
    acc_second_half_high: float


class ClaimRow(BaseModel):
    claim: str
    text: str
    a: str
    b: str
    set: Literal["rep", "non-rep"]
    T: int
    metric: str
    seeds: int
    windows: int
    difference: float = Field(description="a - b in accuracy points, mean over seeds and windows")
    low: float = Field(description="95% paired bootstrap interval (windows resampled, seeds averaged)")
    high: float
    per_seed: list[float]
    words: str = Field(description="higher / lower / about equal / not resolved")
    su: float | None = Field(description="Su's a - b in the matching published rows")
    su_rows: str
    against_su: str


class SuRow(BaseModel):
    variant: str
    su_row: str
    train: float
    rep: float
    non_rep: float


class ResultsResponse(BaseModel):
    summary: dict = Field(description="the run's settings (exp_summary.json)")
    results: list[ResultRow]
    claims: list[ClaimRow] = Field(description="the README's sentences checked with paired intervals")
    train_curves: dict[str, list[tuple[int, float]]] = Field(
        description="EMA training loss by step, per model (mean over seeds)")
    model_labels: dict[str, str] = Field(description="readable names of the trained models")
    su_table: list[SuRow] = Field(description="Su's published row for each variant that has one (N=512, at 4096)")


_stores: dict[str, ModelStore] = {}
_stores_lock = threading.Lock()


def _folder() -> Path:
    return Path(current_app.config["ATTENTION_DATA_PATH"] or DEFAULT_DATA)


def _store() -> ModelStore:
    key = str(_folder())
    with _stores_lock:
        if key not in _stores:
            _stores[key] = ModelStore(key)
        return _stores[key]


def _su_rows() -> list[SuRow]:
    return [SuRow(variant=name, su_row=row[0], train=row[1], rep=row[2], non_rep=row[3])
            for name, row in SU_TABLE.items() if row is not None]


# Seconds per scored byte and variant (scripts/calibrate_costs.py, 2-core machine, loaded; one torch thread).
SECONDS_PER_BYTE_VARIANT = 3e-4  # measured ~1.6e-4; x2 for a busier machine


def estimated_seconds(body: ScoreRequest) -> float:
    return 0.1 + SECONDS_PER_BYTE_VARIANT * len(body.text.encode("utf-8", "surrogatepass")) * len(set(body.variants))


def relpos_seconds(body: RelposRequest) -> float:
    return 0.02 + 2e-6 * body.n * body.n


@bp.api("POST", "/api/attention/score", body=ScoreRequest, response=ScoreResponse,
        cost=estimated_seconds, fix="score a shorter text or fewer variants",
        summary="Per-position loss of a text under each trained model variant",
        errors={422: "text shorter than 2 bytes or over ATTENTION_MAX_SCORE_LENGTH, or an unknown variant",
                503: "the checkpoints are missing from ATTENTION_DATA_PATH"})
def score(body: ScoreRequest) -> ScoreResponse:
    try:
        data = body.text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate such as "\ud800" in the JSON string
        raise ApiError(422, "text is not valid Unicode (it contains a lone surrogate)", field="text") from None
    if len(data) < 2:
        raise ApiError(422, "text must be at least 2 bytes long (one byte is predicted from the ones before it)",
                       field="text")
    threads = torch.get_num_threads()
    torch.set_num_threads(current_app.config["ATTENTION_TORCH_THREADS"])
    try:
        scored = _store().score(data, list(dict.fromkeys(body.variants)))
    except DataMissing as exc:
        raise ApiError(503, f"{exc}; build it with scripts/exp_extrapolation.py", code="model_unavailable") from None
    finally:
        torch.set_num_threads(threads)
    return ScoreResponse(bytes=len(data), train_len=N_TRAIN, variants=[VariantScore(**s) for s in scored])


@bp.api("POST", "/api/attention/relpos", body=RelposRequest, response=RelposResponse,
        cost=relpos_seconds, fix="use a smaller n",
        summary="The relative-position matrix P of RoPE, ReRoPE or Leaky ReRoPE",
        errors={422: "n out of range (over ATTENTION_RELPOS_MAX_N), or window / k missing or out of range"})
def relpos(body: RelposRequest) -> RelposResponse:
    P = rel_pos(body.n, body.n, body.mode, body.window, body.k)
    lower = torch.tril(torch.ones(body.n, body.n, dtype=torch.bool))
    rounded = P.round(decimals=4)
    matrix = [[v if j <= i else None for j, v in enumerate(row)] for i, row in enumerate(rounded.tolist())]
    return RelposResponse(mode=body.mode, n=body.n, window=body.window, k=body.k, matrix=matrix,
                          max=float(rounded[lower].max()), distinct=int(rounded[lower].unique().numel()))


@bp.api("GET", "/api/attention/results", response=ResultsResponse,
        summary="The stored length-extrapolation experiment (accuracy and loss by eval length) and Su's table",
        errors={503: "the stored results are missing from ATTENTION_DATA_PATH"})
def results() -> ResultsResponse:
    try:
        stored = _store().results()
    except DataMissing as exc:
        raise ApiError(503, str(exc), code="results_unavailable") from None
    return ResultsResponse(**stored, su_table=_su_rows())


@bp.get("/attention/experiment.png")
def experiment_plot():
    path = _folder() / "exp_extrapolation.png"
    if not path.is_file():
        raise ApiError(404, f"no stored plot in {_folder()}")
    return send_file(path, mimetype="image/png", max_age=300)


def _table(stored: dict) -> list[dict]:
    """Rows of the comparison table: our accuracies (mean and 95% interval, %) at N and 8N beside Su's row."""
    by = {(r["variant"], r["set"], r["T"]): r for r in stored["results"]}
    t_max = max(r["T"] for r in stored["results"])

    def cell(row: dict, metric: str) -> tuple[float, float, float]:
        return 100 * row[metric], 100 * row[f"{metric}_low"], 100 * row[f"{metric}_high"]

    rows = []
    for v in VARIANTS:
        if (v.name, "non-rep", N_TRAIN) not in by:
            continue
        rep = by[(v.name, "rep", t_max)]
        cells = [cell(by[(v.name, "non-rep", N_TRAIN)], "acc"), cell(rep, "acc"), cell(rep, "acc_second_half"),
                 cell(by[(v.name, "non-rep", t_max)], "acc")]
        rows.append({"name": v.name, "label": v.label, "cells": cells, "su": SU_TABLE.get(v.name)})
    return rows


@bp.get("/attention")
def page():
    try:
        stored = _store().results()
        error = None
    except DataMissing as exc:
        stored, error = None, str(exc)
    return render_template(
        "attention/index.html",
        stored=stored,
        error=error,
        table=_table(stored) if stored else [],
        not_run=[v.label for v in VARIANTS if stored and v.name not in {r["variant"] for r in stored["results"]}],
        claims=stored["claims"] if stored else [],
        t_max=max(r["T"] for r in stored["results"]) if stored else None,
        variants=VARIANTS,
        default_variants=DEFAULT_VARIANTS,
        example=EXAMPLE,
        max_bytes=current_app.config["ATTENTION_MAX_SCORE_LENGTH"],
        max_n=current_app.config["ATTENTION_RELPOS_MAX_N"],
        train_len=N_TRAIN,
    )
