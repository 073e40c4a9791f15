"""HTTP for the tokenize service: POST /api/tokenize, the page's distribution endpoint, and /tokenize."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from flask import Flask, current_app, render_template
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from backend.services.tokenize import BUILTIN_MODELS, SegmentationError, Vocab, get_model, sample, warm_up
from backend.services.tokenize.summary import summarize
from backend.web.api import ApiBlueprint
from backend.web.caps import capped_by, fmt, refuse
from backend.web.errors import ApiError
from backend.web.pages import register_page

log = logging.getLogger(__name__)

bp = ApiBlueprint("tokenize", __name__, template_folder="templates")
register_page("Random tokenization", "tokenize.page",
              "sample segmentations of a text: Viterbi Sampling, its exact correction, FFBS")

ALPHA_LIMIT = 1000.0
ModelName = Literal["default", "jieba"]
# bounded so that alpha * score stays finite for any allowed alpha and text length
LogProb = Annotated[float, Field(ge=-1e4, le=1e4, allow_inf_nan=False)]
ERRORS = {
    400: "the body is not JSON",
    413: "the body is over MAX_JSON_BYTES",
    415: "the body is not application/json",
    422: "invalid field, a cap exceeded, or a text the vocabulary cannot segment",
}


# ---------------------------------------------------------------- models (these are the OpenAPI document)
class _Segmenting(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(
        min_length=1, description="the text to segment (at most TOKENIZE_MAX_TEXT_CHARS characters)",
        json_schema_extra=capped_by("TOKENIZE_MAX_TEXT_CHARS", "characters"),
    )
    method: Literal["viterbi", "sample", "legacy-sample", "ffbs"] = Field(
        "sample",
        description="sample: corrected one-pass Viterbi Sampling (exact); legacy-sample: the original Viterbi "
        "Sampling (biased, for comparison); ffbs: forward-filtering backward-sampling (exact); viterbi: best",
    )
    alpha: float = Field(
        0.1, ge=-ALPHA_LIMIT, le=ALPHA_LIMIT, allow_inf_nan=False, strict=True,
        description="inverse temperature: P(seg) ~ exp(alpha * score); < 0 deterministic (Viterbi), 0 uniform",
    )
    seed: int | None = Field(None, ge=0, le=2**63 - 1, strict=True,
                             description="same seed, same samples; omitted: fresh randomness")
    vocab: dict[str, LogProb] | None = Field(
        None,
        description="character-level vocabulary {piece: log-prob in [-1e4, 1e4]} (at most "
        "TOKENIZE_MAX_VOCAB_PIECES entries, pieces of at most TOKENIZE_MAX_PIECE_CHARS characters); give this or model",
     json_schema_extra=capped_by("TOKENIZE_MAX_VOCAB_PIECES", "vocabulary pieces"))
    model: ModelName | None = Field(None, description="a built-in vocabulary (default: 'default')")

    @model_validator(mode="after")
    def _one_vocabulary(self):
        if self.vocab is not None and self.model is not None:
            raise ValueError("give either vocab or model, not both")
        if self.vocab is not None:
            if not self.vocab:
                raise ValueError("vocab must have at least one piece")
            if "" in self.vocab:
                raise ValueError("vocab: the empty string cannot be a piece")
        return self

    def check_caps(self, settings: Mapping[str, Any]) -> None:
        """Joint caps: the longest piece of a sent vocabulary; samples x characters (compute and answer size)."""
        if self.vocab:
            longest = max(len(p) for p in self.vocab)
            refuse("TOKENIZE_MAX_PIECE_CHARS", longest, settings, noun="characters", field="vocab",
                   said=f"a vocabulary piece of {fmt(longest)} characters",
                   fix=f"split pieces longer than {fmt(settings['TOKENIZE_MAX_PIECE_CHARS'])} characters")
        samples = getattr(self, "samples", 1)
        budget = settings["TOKENIZE_MAX_SAMPLE_CHARS"]
        most = max(1, budget // len(self.text))
        refuse("TOKENIZE_MAX_SAMPLE_CHARS", samples * len(self.text), settings, noun="sampled characters",
               field="samples", budget=True,
               said=f"{fmt(samples)} samples x {fmt(len(self.text))} characters",
               fix=f"use at most {fmt(most)} samples, or a shorter text" if len(self.text) <= budget
               else "use a shorter text")


class TokenizeIn(_Segmenting):
    samples: int = Field(1, ge=1, le=1000, strict=True, description="how many segmentations to draw")


class TokenizeOut(BaseModel):
    samples: list[list[str]] = Field(description="each sample: its tokens, which join back to the text")
    log_partition: float = Field(
        description="log sum over segmentations of exp(alpha * score); the best score for viterbi or alpha < 0"
    )


class DistributionIn(_Segmenting):
    samples: int = Field(
        2000, ge=1, strict=True, description="samples drawn (at most TOKENIZE_MAX_PAGE_SAMPLES)",
        json_schema_extra=capped_by("TOKENIZE_MAX_PAGE_SAMPLES", "samples"),
    )
    top: int = Field(12, ge=1, le=50, strict=True,
                     description="how many segmentations to compare: the most probable ones by exact probability")


class SegmentationOut(BaseModel):
    tokens: list[str] = Field(description="the segmentation (empty for the row of all other segmentations)")
    count: int = Field(description="how many samples were this segmentation")
    frequency: float = Field(description="count / samples")
    interval: tuple[float, float] = Field(description="95% Clopper-Pearson interval of the frequency")
    probability: float = Field(description="exact P_alpha of this segmentation (0/1 when deterministic)")
    score: float | None = Field(description="sum of the tokens' log-probs (null for the row of the others)")

    @field_validator("score", mode="before")
    @classmethod
    def _nan_is_none(cls, v):
        return None if isinstance(v, float) and math.isnan(v) else v


class ChiSquareOut(BaseModel):
    statistic: float
    df: int
    p_value: float


class BoundariesOut(BaseModel):
    exact: list[float] = Field(description="P(token boundary at position i), i = 0..n, by forward-backward")
    frequency: list[float] = Field(description="share of the samples with a boundary at position i")
    lower: list[float] = Field(description="95% Clopper-Pearson interval of the frequency, lower ends")
    upper: list[float] = Field(description="95% Clopper-Pearson interval of the frequency, upper ends")


class DistributionOut(BaseModel):
    log_partition: float
    log_segmentations: float = Field(description="natural log of the number of segmentations of the text")
    samples: int
    distinct: int = Field(description="distinct segmentations among the samples")
    top: list[SegmentationOut] = Field(
        description="the most probable segmentations by exact probability (not the most frequent samples), best first"
    )
    rest: SegmentationOut = Field(description="all other segmentations together")
    best: SegmentationOut = Field(description="the Viterbi segmentation")
    boundaries: BoundariesOut = Field(description="per-position boundary probability: exact against sampled")
    chi_square: ChiSquareOut | None = Field(
        description="Pearson test of the samples against the exact law (shown segmentations + the rest)"
    )


class ModelOut(BaseModel):
    name: str
    description: str


class ModelsOut(BaseModel):
    models: list[ModelOut]


# ---------------------------------------------------------------- helpers
def _vocabulary(body: _Segmenting) -> Vocab:
    if body.vocab is None:
        return get_model(body.model or "default")
    try:
        return Vocab(body.vocab, level="char", name="request")
    except ValueError as exc:
        raise ApiError(422, f"vocab: {exc}", field="vocab") from None


# Seconds per sampled character and per vocabulary piece sent, and a fixed part (scripts/calibrate_costs.py,
# measured on the 2-core development machine while loaded; slow side).
SECONDS_PER_SAMPLED_CHAR = 2e-6
SECONDS_PER_VOCAB_PIECE = 2e-5


def estimated_seconds(body: _Segmenting) -> float:
    """The compute budget's estimate of one request (``backend.web.budget``)."""
    samples = getattr(body, "samples", 1)
    return (0.15 + SECONDS_PER_SAMPLED_CHAR * samples * len(body.text)
            + SECONDS_PER_VOCAB_PIECE * len(body.vocab or ()))


def _unsegmentable(exc: SegmentationError) -> ApiError:
    return ApiError(422, str(exc), code="unsegmentable", field="text")


# ---------------------------------------------------------------- endpoints
@bp.api("POST", "/api/tokenize", body=TokenizeIn, response=TokenizeOut, errors=ERRORS,
        summary="Segment a text: Viterbi decoding or exact / legacy sampling", cost=estimated_seconds,
        fix="ask for fewer samples or send a shorter text")
def tokenize(body: TokenizeIn) -> TokenizeOut:
    vocab = _vocabulary(body)
    try:
        samples, log_z = sample(body.text, vocab, body.alpha, body.seed, n_samples=body.samples, method=body.method)
    except SegmentationError as exc:
        raise _unsegmentable(exc) from None
    return TokenizeOut(samples=samples, log_partition=log_z)


@bp.api("POST", "/api/tokenize/distribution", body=DistributionIn, response=DistributionOut, errors=ERRORS,
        summary="Sampled against exact: the most probable segmentations and per-position boundary probabilities",
        cost=estimated_seconds, fix="ask for fewer samples or send a shorter text")
def distribution(body: DistributionIn) -> DistributionOut:
    vocab = _vocabulary(body)
    try:
        result = summarize(body.text, vocab, body.alpha, n_samples=body.samples, method=body.method, top=body.top,
                           seed=body.seed)
    except SegmentationError as exc:
        raise _unsegmentable(exc) from None
    return DistributionOut.model_validate(result, from_attributes=True)


@bp.api("GET", "/api/tokenize/models", response=ModelsOut, summary="The built-in vocabularies")
def models() -> ModelsOut:
    return ModelsOut(models=[ModelOut(name=k, description=v) for k, v in BUILTIN_MODELS.items()])


@bp.get("/tokenize")
def page():
    return render_template("tokenize/index.html", models=BUILTIN_MODELS, alpha_limit=ALPHA_LIMIT,
                           max_text=current_app.config["TOKENIZE_MAX_TEXT_CHARS"],
                           max_samples=current_app.config["TOKENIZE_MAX_PAGE_SAMPLES"])


def init_app(app: Flask) -> None:
    """Compile the kernels and load the default model in the background, so the first request is quick."""
    if not app.config["TOKENIZE_WARM_UP"] or app.testing:
        return

    def run() -> None:
        try:
            warm_up()
            get_model("default")
        except Exception:  # a failed warm-up only costs the first request its latency
            log.exception("tokenize warm-up failed")

    threading.Thread(target=run, name="tokenize-warm-up", daemon=True).start()
