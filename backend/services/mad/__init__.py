"""Self-consuming generative loops ("Self-Consuming Generative Models Go MAD"): simulator, metrics, theory.

Pure numpy/scipy core (no Flask; torch only for the optional flow model): ``SimConfig`` + ``simulate`` run
the three loops for R replicate chains; ``theory`` holds the Gaussian closed forms; ``effective`` the effective
sample size n_e; ``cost`` the calibrated run-time estimate (``estimate_seconds``).
"""

from backend.services.mad.cost import estimate_seconds, estimate_work
from backend.services.mad.effective import effective_sample_size, real_only_fd_curve
from backend.services.mad.loops import SimConfig, SimResult, iterate, simulate
from backend.services.mad.targets import GaussianTarget, MixtureTarget, gaussian, grid25, ring

__all__ = [
    "GaussianTarget",
    "MixtureTarget",
    "SimConfig",
    "SimResult",
    "effective_sample_size",
    "estimate_seconds",
    "estimate_work",
    "gaussian",
    "grid25",
    "iterate",
    "real_only_fd_curve",
    "ring",
    "simulate",
]
