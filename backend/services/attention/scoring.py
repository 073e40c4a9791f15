"""The trained models and stored experiment results in a data folder, for the service (no Flask here)."""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

import torch

from backend.services.attention.evaluate import score_text
from backend.services.attention.experiment import MODELS, N_TRAIN, VARIANTS, VARIANTS_BY_NAME
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
        """The stored experiment: accuracy/loss rows, training curves and run settings."""
        try:
            with (self.folder / "exp_results.csv").open(newline="") as f:
                rows = list(csv.DictReader(f))
            with (self.folder / "exp_train_log.csv").open(newline="") as f:
                log = list(csv.DictReader(f))
            summary = json.loads((self.folder / "exp_summary.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataMissing(f"stored experiment results are missing from {self.folder}: {exc}") from None
        results = [
            {
                "variant": r["variant"],
                "label": r["label"],
                "model": r["model"],
                "set": r["set"],
                "T": int(r["T"]),
                "acc": float(r["acc"]),
                "loss": float(r["loss"]),
                "acc_second_half": float(r["acc_second_half"]),
                "acc_buckets": [float(x) for x in r["acc_buckets"].split()],
                "loss_buckets": [float(x) for x in r["loss_buckets"].split()],
            }
            for r in rows
        ]
        curves: dict[str, list[tuple[int, float]]] = {}
        for r in log:
            curves.setdefault(r["model"], []).append((int(r["step"]), float(r["smooth_loss"])))
        return {"summary": summary, "results": results, "train_curves": curves}


def variant_names() -> list[str]:
    return [v.name for v in VARIANTS]


__all__ = ["DEFAULT_DATA", "DEFAULT_VARIANTS", "MODELS", "DataMissing", "ModelStore", "variant_names"]
