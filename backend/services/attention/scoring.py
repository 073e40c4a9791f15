"""The trained models and stored experiment results in a data folder, for the service (no Flask here)."""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

import torch

from backend.services.attention.evaluate import score_text
from backend.services.attention.experiment import MODEL_LABELS, MODELS, N_TRAIN, VARIANTS, VARIANTS_BY_NAME
from backend.services.attention.model import LM, InferencePos, load_checkpoint

DEFAULT_DATA = Path(__file__).resolve().parent / "data"
DEFAULT_VARIANTS = ["rope", "rope_logn_dagger", "pi_k8", "rerope_w64", "leaky_w32_k32", "hwfa", "hwfa2_f1", "hwfa2_f2"]


class DataMissing(Exception):
    """A checkpoint or result file is not in the data folder."""


class ModelStore:
    """Lazily loaded checkpoints (one CPU copy each) and the stored experiment files of one folder."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._models: dict[str, LM] = {}
        self._lock = threading.Lock()  # a model's inference mode is switched per variant: one request at a time

    def _model(self, name: str) -> LM:
        if name not in self._models:
            path = self.folder / f"ckpt_{name}.pt"
            if not path.is_file():
                raise DataMissing(f"checkpoint {path.name} is missing from {self.folder}")
            self._models[name], _ = load_checkpoint(str(path))
        return self._models[name]

    def score(self, data: bytes, variants: list[str]) -> list[dict]:
        """Per-position loss of ``data`` under each named variant (see experiment.VARIANTS)."""
        out = []
        with self._lock, torch.no_grad():
            for name in variants:
                variant = VARIANTS_BY_NAME[name]
                model = self._model(variant.model).set_inference(variant.pos)
                try:
                    losses = score_text(model, data)
                finally:
                    model.set_inference(InferencePos())
                buckets = [losses[s : s + N_TRAIN] for s in range(0, len(losses), N_TRAIN)]
                out.append({
                    "name": name,
                    "label": variant.label,
                    "model": variant.model,
                    "losses": [round(x, 4) for x in losses],
                    "mean_loss": round(sum(losses) / len(losses), 4),
                    "bucket_mean_loss": [round(sum(b) / len(b), 4) for b in buckets],
                })
        return out

    def results(self) -> dict:
        """The stored experiment: accuracy/loss rows with intervals, the claims, training curves, run settings."""
        try:
            with (self.folder / "exp_results.csv").open(newline="") as f:
                rows = list(csv.DictReader(f))
            claims_path = self.folder / "exp_claims.csv"
            claim_rows = list(csv.DictReader(claims_path.open(newline=""))) if claims_path.exists() else []
            with (self.folder / "exp_train_log.csv").open(newline="") as f:
                log = list(csv.DictReader(f))
            summary = json.loads((self.folder / "exp_summary.json").read_text())
            results = [_result_row(r) for r in rows]
            claims = [_claim_row(r) for r in claim_rows]
        except (OSError, json.JSONDecodeError, KeyError, ValueError) as exc:
            raise DataMissing(f"stored experiment results are missing or unreadable in {self.folder}: {exc}") from None
        by_step: dict[str, dict[int, list[float]]] = {}
        for r in log:
            by_step.setdefault(r["model"], {}).setdefault(int(r["step"]), []).append(float(r["smooth_loss"]))
        curves = {model: [(step, round(sum(v) / len(v), 5)) for step, v in sorted(steps.items())]
                  for model, steps in by_step.items()}
        return {"summary": summary, "results": results, "claims": claims, "train_curves": curves,
                "model_labels": dict(MODEL_LABELS)}


_FLOATS = ("acc", "acc_low", "acc_high", "loss", "loss_low", "loss_high", "acc_second_half", "acc_second_half_low",
           "acc_second_half_high")


def _result_row(r: dict) -> dict:
    row = {"variant": r["variant"], "label": r["label"], "model": r["model"], "set": r["set"], "T": int(r["T"]),
           "seeds": int(r["seeds"]), "windows": int(r["windows"])}
    row.update({key: float(r[key]) for key in _FLOATS})
    row["acc_seeds"] = [float(x) for x in r["acc_seeds"].split()]
    return row


def _claim_row(r: dict) -> dict:
    row = dict(r)
    for key in ("T", "seeds", "windows"):
        row[key] = int(r[key])
    for key in ("difference", "low", "high"):
        row[key] = float(r[key])
    row["per_seed"] = [float(x) for x in r["per_seed"].split()]
    row["su"] = float(r["su"]) if r["su"] != "" else None
    return row


def variant_names() -> list[str]:
    return [v.name for v in VARIANTS]


__all__ = ["DEFAULT_DATA", "DEFAULT_VARIANTS", "MODELS", "DataMissing", "ModelStore", "variant_names"]
