"""Image compression at equal parameter budgets: rank-r SVD against (block-rank-c) Monarch.

A grayscale n x n image, n = m^2, is a matrix A. The Monarch layout of block rank c (``square_layout(n, c)``)
holds 2 c n^1.5 numbers and the rank-r SVD 2 n r, so c = 1, 2, ... is matched exactly by r = c m.
Both error curves come from one SVD each: Eckart-Young for the SVD, the per-block tails for Monarch.
c = m/2 stores as many numbers as the image and both are still approximations; only c = m (rank n, twice the
image's storage) is exact for every image.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from backend.services.matrix.monarch import monarch_to_dense, project, square_layout
from backend.web.caps import fmt, refuse

BUILTIN_IMAGES = ("hopper", "pattern")


class ImageError(ValueError):
    """An image that cannot be read, with a message saying what to send instead."""


def _hopper_path() -> Path | None:
    # Shipped with matplotlib (mpl-data/sample_data); nothing is downloaded.
    try:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        return None
    return path if path.is_file() else None


def pattern_image(n: int) -> np.ndarray:
    """A deterministic synthetic test card in [0, 1]: gradients, rings, a checkerboard and sharp-edged shapes."""
    y, x = np.mgrid[0:n, 0:n] / n
    img = 0.35 * x + 0.15 * y
    img += 0.25 * (np.sin(40 * np.hypot(x - 0.3, y - 0.3)) > 0) * (np.hypot(x - 0.3, y - 0.3) < 0.22)
    img += 0.3 * (((np.floor(x * 16) + np.floor(y * 16)) % 2) * (x > 0.6) * (y > 0.6))
    img += 0.4 * ((np.abs(x - 0.75) + np.abs(y - 0.25)) < 0.15)
    img += 0.2 * (np.abs(y - 0.5 - 0.2 * np.sin(9 * x)) < 0.02)
    return np.clip(img, 0.0, 1.0)


def builtin_image(name: str, n: int) -> np.ndarray:
    """A built-in grayscale n x n image in [0, 1]."""
    if name == "pattern":
        return pattern_image(n)
    if name == "hopper":
        path = _hopper_path()
        if path is None:
            return pattern_image(n)
        with Image.open(path) as im:
            return _to_square_gray(im, n)
    raise ImageError(f"unknown built-in image {name!r}; choose one of {', '.join(BUILTIN_IMAGES)}")


def _to_square_gray(im: Image.Image, n: int) -> np.ndarray:
    gray = im.convert("L")
    w, h = gray.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2  # centre crop: Monarch M^(n) needs a square matrix
    gray = gray.crop((left, top, left + side, top + side)).resize((n, n), Image.Resampling.LANCZOS)
    return np.asarray(gray, dtype=np.float64) / 255.0


def load_image(data: bytes, n: int, *, max_pixels: int) -> np.ndarray:
    """Decode PNG/JPEG/GIF/BMP bytes into a centre-cropped grayscale n x n image in [0, 1]."""
    if not data:
        raise ImageError("the uploaded file is empty; choose a PNG, JPEG, GIF or BMP image")
    try:
        with Image.open(io.BytesIO(data)) as im:
            pixels = im.width * im.height
            refuse("MATRIX_IMAGE_MAX_PIXELS", pixels, {"MATRIX_IMAGE_MAX_PIXELS": max_pixels}, noun="pixels",
                   field="image", said=f"a {fmt(im.width)} x {fmt(im.height)} image ({fmt(pixels)} pixels)",
                   fix="scale it down before uploading")
            im.load()
            return _to_square_gray(im, n)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        # PIL's own message names a BytesIO object; say what the user can do instead.
        raise ImageError("the uploaded file is not an image this page can read; upload a PNG, JPEG, GIF or BMP "
                         "file") from None


def png_data_url(img: np.ndarray) -> str:
    """A data: URL of the image clipped to [0, 1] as an 8-bit grayscale PNG."""
    buf = io.BytesIO()
    Image.fromarray(np.round(np.clip(img, 0.0, 1.0) * 255).astype(np.uint8), mode="L").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass
class Compression:
    n: int
    block_rank: int
    svd_rank: int
    params: int  # of each approximation (equal by construction)
    dense_params: int
    svd_image: np.ndarray
    monarch_image: np.ndarray
    svd_error: float  # relative Frobenius error
    monarch_error: float
    curve_svd: list[tuple[int, float]]  # (parameters, relative error), rank 1 .. n
    curve_monarch: list[tuple[int, float]]  # (parameters, relative error), block rank 1 .. m


def compress(img: np.ndarray, block_rank: int) -> Compression:
    """Rank-(c m) SVD and block-rank-c Monarch approximations of a square n = m^2 image, with both error curves."""
    n = img.shape[0]
    if img.ndim != 2 or img.shape[1] != n:
        raise ImageError(f"image must be square, got {img.shape}")
    m = math.isqrt(n)
    if m * m != n:
        raise ImageError(f"image side {n} must be a perfect square")
    if not 1 <= block_rank <= m:
        raise ImageError(f"block rank must be between 1 and sqrt(n) = {m}")
    a = np.asarray(img, dtype=np.float64)
    norm = float(np.linalg.norm(a)) or 1.0
    # SVD: one decomposition serves the image and the whole curve
    u, s, vt = np.linalg.svd(a)
    r = block_rank * m
    svd_img = (u[:, :r] * s[:r]) @ vt[:r]
    tails = np.sqrt(np.maximum(np.cumsum((s**2)[::-1])[::-1], 0.0))  # tails[i] = ||A - A_i||_F
    curve_svd = [(2 * n * k, float(tails[k]) / norm if k < n else 0.0) for k in range(1, n + 1)]
    # Monarch: the block-rank-c error is the per-block tail beyond c, for every c from one batched SVD
    w1_shape, w2_shape = square_layout(n, block_rank)
    proj = project(a, w1_shape, w2_shape)
    bsv = proj.block_singular_values.reshape(-1, proj.block_singular_values.shape[-1]) ** 2
    block_tails = np.cumsum(bsv[:, ::-1], axis=1)[:, ::-1].sum(axis=0)  # block_tails[c] = error^2 at block rank c
    block_tails = np.append(block_tails, 0.0)  # block rank m keeps every singular value of every block
    curve_monarch = [(2 * c * m**3, math.sqrt(max(float(block_tails[c]), 0.0)) / norm) for c in range(1, m + 1)]
    monarch_img = monarch_to_dense(proj.w1, proj.w2)
    return Compression(
        n=n, block_rank=block_rank, svd_rank=r, params=2 * n * r, dense_params=n * n,
        svd_image=svd_img, monarch_image=monarch_img,
        svd_error=float(tails[r]) / norm if r < n else 0.0, monarch_error=proj.error_fro / norm,
        curve_svd=curve_svd, curve_monarch=curve_monarch,
    )
