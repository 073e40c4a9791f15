"""Closed-form expectations for the Gaussian model (spec Sec. 2; derivations there, MC-checked in tests).

Notation: Sigma0 = target covariance, n_1 = n_ini (real samples of generation 1), lam = sampling bias,
``ddof`` = 1 for the unbiased covariance, 0 for the MLE. Arrays are indexed by generation t = 1..T.
Every loop below keeps E[Sigma_t] = s_t Sigma0 and E[(mu_t - mu0)(mu_t - mu0)^T] = m_t Sigma0.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln

LOOPS = ("fully_synthetic", "synthetic_augmentation", "fresh_data")


def _check_sizes(loop: str, n_ini: int, n_real: int, n_synth: int) -> None:
    if loop not in LOOPS:
        raise ValueError(f"unknown loop {loop!r}")
    if n_ini < 2 or n_synth < 1 or (loop == "fresh_data" and n_real < 1):
        raise ValueError("sample sizes too small for the closed forms")
    if loop == "fully_synthetic" and n_synth < 2:
        raise ValueError("the fully synthetic loop needs n_synth >= 2")


def moment_recursion(
    loop: str, n_ini: int, n_real: int, n_synth: int, lam: float, generations: int, ddof: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """(s_t, m_t) for t = 1..generations, with the last-model synthetic source.

    Fully synthetic: s_t = lam (n-1)/(n-ddof) s_{t-1}, m_t = m_{t-1} + lam s_{t-1}/n.
    Fresh data (p = n_r/n, a = n_s/n): s_t = ((n-1)(p + a lam s_{t-1}) + n p a m_{t-1})/(n-ddof),
    m_t = a^2 m_{t-1} + (p + a lam s_{t-1})/n.
    Synthetic augmentation (fixed real set of size n_r = n_ini, q_t = E[d_t d_t^T]/Sigma0 with
    d_t = real mean - mu_t): s_t = ((n_r-1) + (n-1) a lam s_{t-1} + n p a q_{t-1})/(n-ddof),
    q_t = a^2 q_{t-1} + a lam s_{t-1}/n, m_t = 1/n_r + q_t.
    """
    _check_sizes(loop, n_ini, n_real, n_synth)
    s = np.empty(generations)
    m = np.empty(generations)
    s[0] = (n_ini - 1) / (n_ini - ddof)
    m[0] = 1.0 / n_ini
    if loop == "fully_synthetic":
        n = n_synth
        for t in range(1, generations):
            s[t] = lam * (n - 1) / (n - ddof) * s[t - 1]
            m[t] = m[t - 1] + lam * s[t - 1] / n
    elif loop == "fresh_data":
        n = n_real + n_synth
        p, a = n_real / n, n_synth / n
        for t in range(1, generations):
            s[t] = ((n - 1) * (p + a * lam * s[t - 1]) + n * p * a * m[t - 1]) / (n - ddof)
            m[t] = a * a * m[t - 1] + (p + a * lam * s[t - 1]) / n
    else:
        n_r = n_ini
        n = n_r + n_synth
        p, a = n_r / n, n_synth / n
        q = 0.0
        for t in range(1, generations):
            q_prev = q
            q = a * a * q_prev + a * lam * s[t - 1] / n
            s[t] = ((n_r - 1) + (n - 1) * a * lam * s[t - 1] + n * p * a * q_prev) / (n - ddof)
            m[t] = 1.0 / n_r + q
    return s, m


def fresh_fixed_point(n_real: int, n_synth: int, lam: float, ddof: int = 1) -> tuple[float, float]:
    """Limit (s*, m*) of the fresh-data recursion (independent of n_ini): a 2x2 linear system."""
    n = n_real + n_synth
    p, a = n_real / n, n_synth / n
    # s (n-ddof) = (n-1)(p + a lam s) + n p a m ;  m (1 - a^2) = (p + a lam s)/n
    lhs = np.array([[(n - ddof) - (n - 1) * a * lam, -n * p * a], [-a * lam / n, 1 - a * a]])
    rhs = np.array([(n - 1) * p, p / n])
    s, m = np.linalg.solve(lhs, rhs)
    return float(s), float(m)


def fresh_fixed_point_spec(n_real: int, n_synth: int, lam: float) -> tuple[float, float]:
    """The spec's explicit formula for the unbiased fixed point (equal to ``fresh_fixed_point``)."""
    n = n_real + n_synth
    p, a = n_real / n, n_synth / n
    s = p * (1 + a / ((n - 1) * (1 + a))) / (1 - a * lam - a * a * lam / ((n - 1) * (1 + a)))
    m = (p + a * lam * s) / (n_real * (1 + a))
    return s, m


def augmentation_limit(n_real: int, n_synth: int, lam: float, ddof: int = 1) -> float:
    """c with E[Sigma_inf] = c * (fixed-set covariance), synthetic-augmentation loop (needs lam*a < 1)."""
    n = n_real + n_synth
    p, a = n_real / n, n_synth / n
    # s (n-ddof) = (n_r-1) + (n-1) a lam s + n p a q ;  q (1-a^2) = a lam s / n
    q_per_s = a * lam / (n * (1 - a * a))
    return float((n_real - 1) / ((n - ddof) - (n - 1) * a * lam - n * p * a * q_per_s))


def chi_mean_factor(k: float) -> float:
    """c(k) = E sqrt(chi2_k / k) = sqrt(2/k) Gamma((k+1)/2) / Gamma(k/2)."""
    return float(np.sqrt(2.0 / k) * np.exp(gammaln((k + 1) / 2) - gammaln(k / 2)))


def _log_chi_mean(k: float) -> float:
    """E log(chi2_k / k)."""
    return float(digamma(k / 2) + np.log(2.0 / k))


def fully_synthetic_1d(
    n_ini: int, n: int, lam: float, generations: int, sigma0: float = 1.0, ddof: int = 1
) -> dict[str, np.ndarray]:
    """Exact 1-D fully synthetic moments: E mu_t^2, E sigma_t^2, E sigma_t, E sigma_t^4, E W2^2, E log sigma_t^2."""
    t = np.arange(generations)  # t - 1
    s, m = moment_recursion("fully_synthetic", n_ini, 0, n, lam, generations, ddof)
    shrink1 = (n_ini - 1) / (n_ini - ddof)  # MLE scales chi2/(k) by (k)/(k+1)
    shrink = (n - 1) / (n - ddof)
    e_sigma = (
        sigma0
        * lam ** (t / 2)
        * chi_mean_factor(n_ini - 1)
        * np.sqrt(shrink1)
        * (chi_mean_factor(n - 1) * np.sqrt(shrink)) ** t
    )
    e_sigma4 = sigma0**4 * (1 + 2 / (n_ini - 1)) * shrink1**2 * (lam**2 * (n + 1) / (n - 1) * shrink**2) ** t
    e_log = (
        np.log(sigma0**2)
        + _log_chi_mean(n_ini - 1)
        + np.log(shrink1)
        + t * (np.log(lam) + _log_chi_mean(n - 1) + np.log(shrink))
    )
    var0 = sigma0**2
    return {
        "mean_sq": m * var0,
        "var": s * var0,
        "sigma": e_sigma,
        "sigma4": e_sigma4,
        "w2sq": m * var0 + s * var0 - 2 * sigma0 * e_sigma + var0,
        "log_var": e_log,
    }


def logdet_drift(d: int, n: int, lam: float, ddof: int = 1) -> float:
    """E[log det Sigma_t - log det Sigma_{t-1}] in the fully synthetic loop (Bartlett; needs n > d)."""
    if n <= d:
        raise ValueError("the log-det drift needs n > d")
    i = np.arange(1, d + 1)
    return float(d * np.log(lam) + np.sum(digamma((n - i) / 2) + np.log(2 / (n - 1))) + d * np.log((n - 1) / (n - ddof)))


def expected_logdet_first(d: int, n_ini: int, logdet0: float, ddof: int = 1) -> float:
    """E log det Sigma_1 for a fit on n_ini real samples (needs n_ini > d)."""
    return logdet0 + logdet_drift(d, n_ini, 1.0, ddof)


def fd_real_only_approx(d: int, n: int) -> float:
    """Large-n approximation E FD(fit on n samples, N(0, I_d)) ~= d(d+5)/(4n)."""
    return d * (d + 5) / (4 * n)


def admissible_threshold(d: int, lam: float) -> float:
    """OUR phase-transition heuristic n_s* ~= (d+5)/(1-lam)^2 (independent of n_r; inf at lam = 1).

    Derived in the spec (Sec. 2.2, a leading-order balance for isotropic Gaussians with n_s << n_r), not in the
    paper: the paper's claim (Figs. 11-12) is only qualitative (the admissible n_s levels off as n_r grows and
    falls as lam decreases).
    """
    return float("inf") if lam >= 1 else (d + 5) / (1 - lam) ** 2


def theory_columns(
    *,
    model: str,
    loop: str,
    source: str,
    cov0: np.ndarray,
    lam: float,
    n_ini: int,
    n_real: int,
    n_synth: int,
    generations: int,
    ddof: int,
) -> dict[str, np.ndarray]:
    """Closed-form columns for a run, where they exist (Gaussian target and model, last-model source).

    trace_cov_theory and mean_err2_theory for all three loops; logdet_theory (full: Bartlett, needs
    n > d; diagonal: per coordinate) and fd_theory (exact, diagonal Sigma0 with the diagonal model or
    d = 1) for the fully synthetic loop.
    """
    out: dict[str, np.ndarray] = {}
    if model not in ("gaussian", "gaussian-diag") or source != "last":
        return out
    try:
        _check_sizes(loop, n_ini, n_real, n_synth)
    except ValueError:
        return out
    cov0 = np.asarray(cov0, dtype=float)
    d = cov0.shape[0]
    tr0 = float(np.trace(cov0))
    s, m = moment_recursion(loop, n_ini, n_real, n_synth, lam, generations, ddof)
    out["trace_cov_theory"] = s * tr0
    out["mean_err2_theory"] = m * tr0
    if loop != "fully_synthetic":
        return out
    diag0 = np.diag(cov0)
    diag_model = model == "gaussian-diag" or d == 1
    t = np.arange(generations)
    if diag_model and np.all(diag0 > 0):
        one = fully_synthetic_1d(n_ini, n_synth, lam, generations, 1.0, ddof)
        out["logdet_theory"] = np.sum(np.log(diag0)) + d * one["log_var"]
    elif not diag_model and n_ini > d and n_synth > d:
        sign, logdet0 = np.linalg.slogdet(cov0)
        if sign > 0:
            first = expected_logdet_first(d, n_ini, logdet0, ddof)
            out["logdet_theory"] = first + t * logdet_drift(d, n_synth, lam, ddof)
    if diag_model and np.allclose(cov0, np.diag(diag0)):
        one = fully_synthetic_1d(n_ini, n_synth, lam, generations, 1.0, ddof)
        # Coordinates are independent 1-D chains: E FD = sum_i sigma0_i^2 * E W2^2(unit chain).
        out["fd_theory"] = tr0 * one["w2sq"]
    return out
