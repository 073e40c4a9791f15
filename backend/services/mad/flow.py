"""A small learned generator for the loops: a RealNVP normalizing flow (torch), R chains trained at once.

Why: the Gaussian, GMM and KDE models are fitted in closed form or by EM, and the Gaussian and GMM are
correctly specified for their targets, so they cannot show the paper's deep-model effects (artifacts amplified
from one generation to the next, slow degradation with a fixed real set). A flow is a smooth bijection of a
Gaussian: it cannot represent a target with separated modes exactly (mass stays on thin bridges between them),
and it is trained by stochastic gradient descent for a fixed budget, like the paper's networks.

Architecture (paper App. B.4 uses GLOW on 2-D data with 8 coupling layers, hidden width 64, 20 epochs of
1e4 points at batch 256, i.e. ~800 steps): a fixed per-chain standardisation, then ``layers`` affine coupling layers that alternate which
half of the coordinates they transform; each conditioner is an MLP (half -> hidden -> hidden -> 2 x other
half, ReLU) whose last layer starts at zero, so an untrained flow is the identity. Log-scales are bounded
by 2 tanh(./2). Sampling bias lam is the paper's flow setting: latent z ~ N(0, lam I).

All R chains live in the same tensors with a leading chain axis (batched matmuls). The loss is the sum over
chains of each chain's mean negative log-likelihood and Adam works elementwise, so the chains train exactly
as R independent runs would, each on its own data, initialisation and minibatch order. Everything random
comes from the numpy generator passed in, so a seed fixes the run (for a fixed torch thread count).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class FlowSettings:
    layers: int = 8
    hidden: int = 64
    steps: int = 800  # Adam steps per fit, whatever the training-set size (the paper: 20 epochs of 1e4 points)
    batch: int = 256
    lr: float = 1e-3
    moment_samples: int = 4096  # samples per chain behind the Monte-Carlo mean and covariance


def _torch():
    import torch  # imported lazily: the rest of the simulator needs numpy/scipy only

    return torch


def _halves(d: int, layer: int) -> tuple[slice, slice]:
    """(conditioning, transformed) coordinates of coupling layer ``layer``: the halves swap every layer."""
    k = d // 2
    first, second = slice(0, k), slice(k, d)
    return (first, second) if layer % 2 == 0 else (second, first)


def _width(s: slice, d: int) -> int:
    return len(range(d)[s])


@dataclass
class Flow:
    """R trained flows: per-chain standardisation (shift, scale: (R, d)) and coupling parameters."""

    shift: np.ndarray
    scale: np.ndarray
    params: list[dict]  # per layer: W1 (R, a, H), b1 (R, 1, H), W2 (R, H, H), b2, W3 (R, H, 2b), b3 (R, 1, 2b)
    seed: int  # seeds the Monte-Carlo moment samples
    moment_samples: int = 4096
    _moments: dict = field(default_factory=dict, repr=False)

    @property
    def dim(self) -> int:
        return self.shift.shape[1]

    @property
    def chains(self) -> int:
        return self.shift.shape[0]

    # --- transforms (torch tensors, (R, n, d)) ---
    def _conditioner(self, layer: dict, a):
        torch = _torch()
        h = torch.relu(torch.baddbmm(layer["b1"], a, layer["W1"]))
        h = torch.relu(torch.baddbmm(layer["b2"], h, layer["W2"]))
        out = torch.baddbmm(layer["b3"], h, layer["W3"])
        half = out.shape[-1] // 2
        log_s = 2 * torch.tanh(out[..., :half] / 2)
        return log_s, out[..., half:]

    def _to_latent(self, x):
        """z = f(x) and log |det df/dx| per point."""
        torch = _torch()
        shift = torch.as_tensor(self.shift, dtype=x.dtype)[:, None, :]
        scale = torch.as_tensor(self.scale, dtype=x.dtype)[:, None, :]
        u = (x - shift) / scale
        logdet = -torch.log(scale).sum(-1).expand(u.shape[:2])
        d = self.dim
        for i, layer in enumerate(self.params):
            cond, moved = _halves(d, i)
            log_s, t = self._conditioner(layer, u[..., cond])
            parts = [None, None]
            new = u[..., moved] * torch.exp(log_s) + t
            parts[0 if cond.start == 0 else 1] = u[..., cond]
            parts[1 if cond.start == 0 else 0] = new
            u = torch.cat(parts, dim=-1)
            logdet = logdet + log_s.sum(-1)
        return u, logdet

    def _from_latent(self, z):
        torch = _torch()
        d = self.dim
        u = z
        for i in reversed(range(len(self.params))):
            cond, moved = _halves(d, i)
            log_s, t = self._conditioner(self.params[i], u[..., cond])
            old = (u[..., moved] - t) * torch.exp(-log_s)
            parts = [None, None]
            parts[0 if cond.start == 0 else 1] = u[..., cond]
            parts[1 if cond.start == 0 else 0] = old
            u = torch.cat(parts, dim=-1)
        shift = torch.as_tensor(self.shift, dtype=z.dtype)[:, None, :]
        scale = torch.as_tensor(self.scale, dtype=z.dtype)[:, None, :]
        return u * scale + shift

    def _log_prob_tensor(self, x):
        z, logdet = self._to_latent(x)
        return -0.5 * (z**2).sum(-1) - 0.5 * self.dim * LOG_2PI + logdet

    # --- the model interface of the loops (numpy in, numpy out) ---
    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """log density of points x (R, n, d) under each chain's flow: (R, n)."""
        torch = _torch()
        with torch.no_grad():
            out = self._log_prob_tensor(torch.as_tensor(np.asarray(x), dtype=torch.float32))
        return out.double().numpy()

    def sample(self, rng: np.random.Generator, n: int, lam: float = 1.0) -> np.ndarray:
        z = rng.standard_normal((self.chains, n, self.dim)) * math.sqrt(lam)
        return self._decode(z)

    def _decode(self, z: np.ndarray) -> np.ndarray:
        torch = _torch()
        with torch.no_grad():
            x = self._from_latent(torch.as_tensor(z, dtype=torch.float32))
        return x.double().numpy()

    def _moment_sample(self, lam: float) -> tuple[np.ndarray, np.ndarray]:
        """Monte-Carlo mean (R, d) and covariance (R, d, d) of the sampler with bias lam (cached)."""
        if lam not in self._moments:
            z = np.random.default_rng([self.seed, 7]).standard_normal((self.chains, self.moment_samples, self.dim))
            x = self._decode(z * math.sqrt(lam))
            mu = x.mean(axis=1)
            xc = x - mu[:, None, :]
            self._moments[lam] = (mu, np.swapaxes(xc, 1, 2) @ xc / (x.shape[1] - 1))
        return self._moments[lam]

    def mean(self) -> np.ndarray:
        return self._moment_sample(1.0)[0]

    def cov(self, lam: float = 1.0) -> np.ndarray:
        return self._moment_sample(lam)[1]

    def trace(self) -> np.ndarray:
        return np.trace(self.cov(), axis1=1, axis2=2)

    def logdet(self) -> np.ndarray:
        sign, value = np.linalg.slogdet(self.cov())
        return np.where(sign > 0, value, -np.inf)

    def head(self, count: int) -> Flow:
        """The first ``count`` chains."""
        params = [{k: v[:count] for k, v in layer.items()} for layer in self.params]
        return Flow(self.shift[:count], self.scale[:count], params, self.seed, self.moment_samples)


class _Adam:
    """Adam (Kingma & Ba; torch.optim.Adam's defaults and update, bit for bit), written out because constructing
    torch.optim.Adam imports torch._dynamo on first use: 3 s on an idle core, 20 s on a busy one, paid by the
    first flow request of every process."""

    def __init__(self, params: list, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        torch = _torch()
        self.params, self.lr, self.betas, self.eps, self.t = params, lr, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        torch = _torch()
        self.t += 1
        b1, b2 = self.betas
        correction1, correction2 = 1 - b1**self.t, math.sqrt(1 - b2**self.t)
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v, strict=True):
                m.lerp_(p.grad, 1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                p.addcdiv_(m, (v.sqrt() / correction2).add_(self.eps), value=-self.lr / correction1)


def _init_params(r: int, d: int, settings: FlowSettings, gen) -> list[dict]:
    torch = _torch()

    def uniform(shape, fan_in):
        bound = 1.0 / math.sqrt(fan_in)
        return (torch.rand(shape, generator=gen) * 2 - 1) * bound

    params = []
    h = settings.hidden
    for i in range(settings.layers):
        cond, moved = _halves(d, i)
        a, b = _width(cond, d), _width(moved, d)
        params.append({
            "W1": uniform((r, a, h), a), "b1": uniform((r, 1, h), a),
            "W2": uniform((r, h, h), h), "b2": uniform((r, 1, h), h),
            # Zero last layer: the untrained flow is the identity (a standard, stable start).
            "W3": torch.zeros((r, h, 2 * b)), "b3": torch.zeros((r, 1, 2 * b)),
        })
    for layer in params:
        for tensor in layer.values():
            tensor.requires_grad_(True)
    return params


def fit_flow(x: np.ndarray, rng: np.random.Generator, settings: FlowSettings = FlowSettings()) -> Flow:
    """Train one flow per chain from scratch on x (R, n, d), d >= 2: ``settings.steps`` Adam steps on the mean NLL."""
    torch = _torch()
    r, n, d = x.shape
    if d < 2:
        raise ValueError("a coupling flow needs dim >= 2")
    seed = int(rng.integers(2**62))
    gen = torch.Generator().manual_seed(seed)
    shift = x.mean(axis=1)
    # A collapsed training set must not divide by zero: floor the per-chain scale.
    scale = np.maximum(x.std(axis=1), 1e-6 * np.maximum(1.0, np.abs(shift)))
    params = _init_params(r, d, settings, gen)
    flow = Flow(shift, scale, params, seed, settings.moment_samples)
    data = torch.as_tensor(x, dtype=torch.float32)
    opt = _Adam([t for layer in params for t in layer.values()], lr=settings.lr)
    batch = min(settings.batch, n)
    per_epoch = n // batch  # full batches only: every step sees the same number of points
    step = 0
    while step < settings.steps:
        # Each chain shuffles its own data every epoch (sampling without replacement within an epoch).
        order = torch.argsort(torch.rand((r, n), generator=gen), dim=1)
        for b in range(min(per_epoch, settings.steps - step)):
            idx = order[:, b * batch : (b + 1) * batch]
            xb = torch.gather(data, 1, idx[..., None].expand(-1, -1, d))
            loss = -flow._log_prob_tensor(xb).mean(dim=1).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
    for layer in params:
        for key in layer:
            layer[key] = layer[key].detach()
    return flow


def parameters_per_chain(d: int, settings: FlowSettings) -> int:
    """Trainable numbers of one chain's flow."""
    total = 0
    h = settings.hidden
    for i in range(settings.layers):
        cond, moved = _halves(d, i)
        a, b = _width(cond, d), _width(moved, d)
        total += a * h + h + h * h + h + h * 2 * b + 2 * b
    return total


def elements_per_chain(d: int, settings: FlowSettings) -> int:
    """Numbers one chain holds while training: parameters, gradients and Adam's two moments, plus the
    activations a minibatch keeps for the backward pass (about 4 hidden-sized tensors per layer)."""
    activations = settings.batch * settings.layers * (4 * settings.hidden + 4 * d)
    return 4 * parameters_per_chain(d, settings) + activations
