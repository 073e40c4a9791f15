"""The length-extrapolation experiment's models, inference variants and claims (shared by the script and the service).

Spec section 5: byte-level LMs, 6 layers, trained at N = 128. HWFA's window 16 satisfies
(w - 1)(L - 1) + 1 = 76 <= 0.75 N; HWFA2 uses window layers of 32 and, at inference, ReRoPE w = 64 = N/2 in its
full layers (Su: 256 = N/2 at N = 512).
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.services.attention.evaluate import Variant
from backend.services.attention.model import InferencePos, LayerSpec, plan

N_TRAIN = 128
N_LAYERS = 6
HWFA_WINDOW = 16  # (16 - 1) * 5 + 1 = 76 <= 0.75 * 128
HWFA2_WINDOW = 32
RE_W = 64  # ReRoPE window used by HWFA2's full layers at inference (N/2, like Su's 256 at N = 512)

SEEDS = (0, 1, 2)
EVAL_LENGTHS = (128, 256, 512, 1024)  # 1x .. 8x N

MODEL_LABELS = {
    "baseline": "Baseline RoPE",
    "baseline_logn": "Baseline RoPE, trained with log n",
    "hwfa": f"HWFA (w={HWFA_WINDOW})",
    "hwfa2_f1": f"HWFA2-w{HWFA2_WINDOW}-f1",
    "hwfa2_f2": f"HWFA2-w{HWFA2_WINDOW}-f2",
}

MODELS: dict[str, list[LayerSpec]] = {
    "baseline": plan("baseline", N_LAYERS, N_TRAIN),
    "baseline_logn": plan("baseline", N_LAYERS, N_TRAIN, logn=True),
    "hwfa": plan("hwfa", N_LAYERS, N_TRAIN, window=HWFA_WINDOW),
    "hwfa2_f1": plan("hwfa2", N_LAYERS, N_TRAIN, window=HWFA2_WINDOW, n_full=1),
    "hwfa2_f2": plan("hwfa2", N_LAYERS, N_TRAIN, window=HWFA2_WINDOW, n_full=2),
}

VARIANTS = [
    Variant("rope", "baseline", InferencePos(), "Baseline RoPE"),
    Variant("rope_logn", "baseline_logn", InferencePos(), "Baseline-log n"),
    Variant("rope_logn_dagger", "baseline", InferencePos(logn_dagger=True), "Baseline-log n\u2020"),
    Variant("pi_k8", "baseline", InferencePos("pi", k=8), "PI-RoPE (k=8)"),
    Variant("rerope_w32", "baseline", InferencePos("rerope", 32), "ReRoPE-w32"),
    Variant("rerope_w64", "baseline", InferencePos("rerope", 64), "ReRoPE-w64"),
    Variant("rerope_w64_logn_dagger", "baseline", InferencePos("rerope", 64, logn_dagger=True), "ReRoPE-w64-log n\u2020"),
    Variant("rerope_w64_logn", "baseline_logn", InferencePos("rerope", 64), "ReRoPE-w64-log n"),
    Variant("rerope_w32_logn", "baseline_logn", InferencePos("rerope", 32), "ReRoPE-w32-log n"),
    Variant("leaky_w32_k32", "baseline", InferencePos("leaky", 32, 32), "Leaky ReRoPE-w32-k32"),
    Variant("leaky_w32_k32_logn", "baseline_logn", InferencePos("leaky", 32, 32), "Leaky ReRoPE-w32-k32-log n"),
    Variant("hwfa", "hwfa", InferencePos(), f"HWFA (w={HWFA_WINDOW})"),
    Variant("hwfa2_f1_rope", "hwfa2_f1", InferencePos(), f"HWFA2-w{HWFA2_WINDOW}-f1, full layer left RoPE"),
    Variant("hwfa2_f1", "hwfa2_f1", InferencePos("rerope", RE_W), f"HWFA-ReRoPE-w{HWFA2_WINDOW}-f1"),
    Variant("hwfa2_f2_rope", "hwfa2_f2", InferencePos(), f"HWFA2-w{HWFA2_WINDOW}-f2, full layers left RoPE"),
    Variant("hwfa2_f2", "hwfa2_f2", InferencePos("rerope", RE_W), f"HWFA-ReRoPE-w{HWFA2_WINDOW}-f2"),
]


VARIANTS_BY_NAME = {v.name: v for v in VARIANTS}

# Su's published numbers (posts 12-14, GAU ~100M, N = 512, tested at 4096 = 8N; per-token accuracy %) for the
# row that corresponds to each variant here: (Su's row, train, rep, non-rep). Windows map by their ratio to N
# (our 32 / 64 at N = 128 <-> his 128 / 256 at N = 512). None: no published counterpart.
SU_TABLE: dict[str, tuple[str, float, float, float] | None] = {
    "rope": ("Baseline RoPE", 49.41, 24.17, 23.16),
    "rope_logn": ("Baseline-log n", 49.40, 24.60, 24.02),
    "rope_logn_dagger": None,
    "pi_k8": ("PI-RoPE", 49.41, 15.04, 13.54),
    "rerope_w32": ("ReRoPE-w128", 49.41, 76.11, 47.82),
    "rerope_w64": ("ReRoPE-w256", 49.41, 77.90, 48.48),
    "rerope_w64_logn_dagger": ("ReRoPE-w256-log n\u2020", 49.41, 82.40, 48.85),
    "rerope_w64_logn": ("ReRoPE-w256-log n", 49.40, 85.12, 49.07),
    "rerope_w32_logn": ("ReRoPE-w128-log n", 49.40, 85.47, 48.87),
    "leaky_w32_k32": None,
    "leaky_w32_k32_logn": ("Leaky ReRoPE-w128-k32-log n", 49.40, 85.31, 49.03),
    "hwfa": ("HWFA (w=16)", 48.70, 80.84, 48.15),
    "hwfa2_f1_rope": None,
    "hwfa2_f1": ("HWFA-ReRoPE-w128-f1", 49.21, 80.18, 48.99),
    "hwfa2_f2_rope": None,
    "hwfa2_f2": ("HWFA-ReRoPE-w128-f2", 49.35, 83.09, 48.97),
}


@dataclass(frozen=True)
class Claim:
    """A sentence about two variants, checked with a paired interval of a - b (accuracy points).

    ``set``/``T`` say where it is measured: set "rep" or "non-rep" at eval length T; metric "acc" (all
    positions, Su's metric) or "acc_second_half" (rep: the copy). ``su`` is Su's a - b in the matching rows
    (posts 9, 12-14, N = 512, at 4096) when he published both, with the rows it comes from.
    """

    key: str
    text: str
    a: str
    b: str
    set: str
    T: int
    metric: str = "acc"
    su: float | None = None
    su_rows: str = ""
    su_tie: bool = False  # Su reads his own difference as a tie ("Leaky gains very little over ReRoPE")


CLAIMS = [
    Claim("rope_collapses", "ReRoPE-w64 beats RoPE past N (RoPE collapses)", "rerope_w64", "rope", "non-rep", 1024,
          su=48.48 - 23.16, su_rows="ReRoPE-w256 48.48 vs RoPE 23.16"),
    Claim("rope_collapses_rep", "ReRoPE-w64 beats RoPE past N on rep", "rerope_w64", "rope", "rep", 1024,
          su=77.90 - 24.17, su_rows="77.90 vs 24.17"),
    Claim("pi_worse", "PI (k = 8, no fine-tuning) is worse than RoPE at 8x", "pi_k8", "rope", "non-rep", 1024,
          su=13.54 - 23.16, su_rows="PI 13.54 vs RoPE 23.16"),
    Claim("pi_worse_in_dist", "PI (k = 8) ruins the training length", "pi_k8", "rope", "non-rep", 128),
    Claim("w_half_beats_quarter", "ReRoPE w = N/2 beats w = N/4", "rerope_w64", "rerope_w32", "non-rep", 1024,
          su=48.48 - 47.82, su_rows="w256 48.48 vs w128 47.82"),
    Claim("w_half_beats_quarter_rep", "ReRoPE w = N/2 beats w = N/4 on rep", "rerope_w64", "rerope_w32", "rep", 1024,
          su=77.90 - 76.11, su_rows="77.90 vs 76.11"),
    Claim("dagger_helps_rerope", "post-hoc log n\u2020 helps ReRoPE", "rerope_w64_logn_dagger", "rerope_w64", "non-rep",
          1024, su=48.85 - 48.48, su_rows="48.85 vs 48.48"),
    Claim("dagger_helps_rerope_rep", "post-hoc log n\u2020 helps ReRoPE on rep", "rerope_w64_logn_dagger", "rerope_w64",
          "rep", 1024, su=82.40 - 77.90, su_rows="82.40 vs 77.90"),
    Claim("trained_logn_best", "ReRoPE on a model trained with log n beats post-hoc log n\u2020", "rerope_w64_logn",
          "rerope_w64_logn_dagger", "non-rep", 1024, su=49.07 - 48.85, su_rows="49.07 vs 48.85"),
    Claim("trained_logn_best_rep", "ReRoPE on a model trained with log n beats log n\u2020 on rep", "rerope_w64_logn",
          "rerope_w64_logn_dagger", "rep", 1024, su=85.12 - 82.40, su_rows="85.12 vs 82.40"),
    Claim("logn_no_help_rope", "training with log n does not rescue plain RoPE", "rope_logn", "rope", "non-rep",
          1024, su=24.02 - 23.16, su_rows="24.02 vs 23.16"),
    Claim("leaky_vs_rerope", "Leaky ReRoPE (w32, k32) vs ReRoPE at the same window w32", "leaky_w32_k32", "rerope_w32",
          "non-rep", 1024),
    Claim("leaky_vs_rerope_logn", "Leaky ReRoPE-log n vs ReRoPE-log n at the same window (Su: a tie)",
          "leaky_w32_k32_logn", "rerope_w32_logn", "non-rep", 1024, su=49.03 - 48.87,
          su_rows="Leaky-w128-k32 49.03 vs ReRoPE-w128 48.87, both log n", su_tie=True),
    Claim("leaky_vs_rerope_logn_rep", "Leaky ReRoPE-log n vs ReRoPE-log n at the same window, rep",
          "leaky_w32_k32_logn", "rerope_w32_logn", "rep", 1024, su=85.31 - 85.47, su_rows="85.31 vs 85.47",
          su_tie=True),
    Claim("hwfa_below_in_dist", "HWFA is below the baseline in distribution", "hwfa", "rope", "non-rep", 128,
          su=48.70 - 49.41, su_rows="HWFA 48.70 vs RoPE 49.41 (train)"),
    Claim("hwfa_vs_rerope", "HWFA vs ReRoPE-w64 past N (Su: HWFA lower)", "hwfa", "rerope_w64", "non-rep", 1024,
          su=48.15 - 48.48, su_rows="48.15 vs 48.48"),
    Claim("hwfa_vs_rerope_rep", "HWFA vs ReRoPE-w64 past N on rep (Su: HWFA higher)", "hwfa", "rerope_w64", "rep",
          1024, su=80.84 - 77.90, su_rows="80.84 vs 77.90"),
    Claim("hwfa2_in_dist_vs_hwfa", "HWFA2-f1 keeps in-distribution accuracy better than HWFA", "hwfa2_f1", "hwfa",
          "non-rep", 128, su=49.21 - 48.70, su_rows="49.21 vs 48.70 (train)"),
    Claim("hwfa2_in_dist_vs_rope", "HWFA2-f1 vs the baseline in distribution (Su: slightly lower)", "hwfa2_f1", "rope",
          "non-rep", 128, su=49.21 - 49.41, su_rows="49.21 vs 49.41 (train)"),
    Claim("hwfa2_vs_rerope", "HWFA2-f1 vs ReRoPE-w64 past N (Su: HWFA2 higher)", "hwfa2_f1", "rerope_w64", "non-rep",
          1024, su=48.99 - 48.48, su_rows="HWFA-ReRoPE-w128-f1 48.99 vs ReRoPE-w256 48.48"),
    Claim("hwfa2_vs_rerope_rep", "HWFA2-f1 vs ReRoPE-w64 past N on rep", "hwfa2_f1", "rerope_w64", "rep", 1024,
          su=80.18 - 77.90, su_rows="80.18 vs 77.90"),
    Claim("hwfa2_vs_hwfa", "HWFA2-f1 vs HWFA past N (Su: HWFA2 higher)", "hwfa2_f1", "hwfa", "non-rep", 1024,
          su=48.99 - 48.15, su_rows="HWFA-ReRoPE-w128-f1 48.99 vs HWFA 48.15"),
    Claim("hwfa2_vs_rerope_dagger", "HWFA2-f1 vs the best post-hoc ReRoPE (w64, log n\u2020) past N", "hwfa2_f1",
          "rerope_w64_logn_dagger", "non-rep", 1024, su=48.99 - 48.85,
          su_rows="HWFA-ReRoPE-w128-f1 48.99 vs ReRoPE-w256-log n\u2020 48.85"),
    Claim("f2_vs_f1_in_dist", "HWFA2-f2 vs -f1 in distribution (Su: f2 higher)", "hwfa2_f2", "hwfa2_f1", "non-rep",
          128, su=49.35 - 49.21, su_rows="49.35 vs 49.21 (train)"),
    Claim("f2_vs_f1_rep", "HWFA2-f2 vs -f1 past N on rep (Su: f2 higher)", "hwfa2_f2", "hwfa2_f1", "rep", 1024,
          su=83.09 - 80.18, su_rows="83.09 vs 80.18"),
    Claim("hwfa2_rerope_switch", "switching HWFA2-f1's full layer to ReRoPE at inference matters", "hwfa2_f1",
          "hwfa2_f1_rope", "non-rep", 1024),
    Claim("hwfa2_f2_rerope_switch", "switching HWFA2-f2's full layers to ReRoPE at inference matters", "hwfa2_f2",
          "hwfa2_f2_rope", "non-rep", 1024),
    Claim("rerope_copies", "ReRoPE-w64 copies the repeated half past N (rep, second half) better than RoPE",
          "rerope_w64", "rope", "rep", 1024, metric="acc_second_half"),
    Claim("hwfa_copies", "HWFA copies past N (rep, second half) vs ReRoPE-w64", "hwfa", "rerope_w64", "rep", 1024,
          metric="acc_second_half"),
]
