"""The length-extrapolation experiment's models and inference variants (shared by the script and the service).

Spec section 5: byte-level LMs, 6 layers, trained at N = 128. HWFA's window 16 satisfies
(w - 1)(L - 1) + 1 = 76 <= 0.75 N; HWFA2 uses window layers of 32 and, at inference, ReRoPE w = 64 = N/2 in its
full layers (Su: 256 = N/2 at N = 512).
"""

from __future__ import annotations

from backend.services.attention.evaluate import Variant
from backend.services.attention.model import InferencePos, LayerSpec, plan

N_TRAIN = 128
N_LAYERS = 6
HWFA_WINDOW = 16  # (16 - 1) * 5 + 1 = 76 <= 0.75 * 128
HWFA2_WINDOW = 32
RE_W = 64  # ReRoPE window used by HWFA2's full layers at inference (N/2, like Su's 256 at N = 512)

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
    "leaky_w32_k32": None,
    "leaky_w32_k32_logn": ("Leaky ReRoPE-w128-k32-log n", 49.40, 85.31, 49.03),
    "hwfa": ("HWFA (w=16)", 48.70, 80.84, 48.15),
    "hwfa2_f1_rope": None,
    "hwfa2_f1": ("HWFA-ReRoPE-w128-f1", 49.21, 80.18, 48.99),
    "hwfa2_f2_rope": None,
    "hwfa2_f2": ("HWFA-ReRoPE-w128-f2", 49.35, 83.09, 48.97),
}
