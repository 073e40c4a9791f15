"""Image compression at equal parameter budgets."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from backend.services.matrix.image import BUILTIN_IMAGES, ImageError, builtin_image, compress, load_image, png_data_url
from backend.web.caps import CapExceeded


@pytest.mark.parametrize("name", BUILTIN_IMAGES)
def test_builtin_images_are_square_grayscale_in_unit_range(name):
    img = builtin_image(name, 64)
    assert img.shape == (64, 64) and img.min() >= 0 and img.max() <= 1 and img.std() > 0.05


def test_compress_matches_direct_errors_and_equal_budgets():
    img = builtin_image("pattern", 64)
    res = compress(img, 2)
    norm = np.linalg.norm(img)
    assert res.svd_rank == 16 and res.params == 2 * 64 * 16 == 2 * 2 * 8**3
    assert res.svd_error == pytest.approx(np.linalg.norm(img - res.svd_image) / norm, rel=1e-9)
    assert res.monarch_error == pytest.approx(np.linalg.norm(img - res.monarch_image) / norm, rel=1e-9)
    # the chosen budget sits on both curves
    assert (res.params, pytest.approx(res.svd_error)) in [(p, pytest.approx(e)) for p, e in res.curve_svd]
    assert dict(res.curve_monarch)[res.params] == pytest.approx(res.monarch_error)
    assert len(res.curve_monarch) == 8 and len(res.curve_svd) == 64
    assert res.curve_monarch[-1] == (2 * 64 * 64, 0.0) and res.curve_svd[-1] == (2 * 64 * 64, 0.0)
    errs = [e for _, e in res.curve_monarch]
    assert errs == sorted(errs, reverse=True)  # more parameters, less error


def test_compress_rejects_bad_inputs():
    with pytest.raises(ImageError, match="perfect square"):
        compress(np.zeros((10, 10)), 1)
    with pytest.raises(ImageError, match="block rank"):
        compress(np.zeros((64, 64)), 9)
    with pytest.raises(ImageError, match="unknown"):
        builtin_image("nope", 64)


def test_load_image_crops_resizes_and_rejects_garbage():
    buf = io.BytesIO()
    Image.fromarray((np.arange(40 * 60).reshape(40, 60) % 256).astype(np.uint8)).convert("RGB").save(buf, "PNG")
    img = load_image(buf.getvalue(), 16, max_pixels=10_000)
    assert img.shape == (16, 16)
    with pytest.raises(CapExceeded, match="pixels") as over:
        load_image(buf.getvalue(), 16, max_pixels=100)
    assert over.value.over.setting == "MATRIX_IMAGE_MAX_PIXELS" and over.value.over.limit == 100
    with pytest.raises(ImageError, match="not an image this page can read"):
        load_image(b"not an image", 16, max_pixels=10_000)
    with pytest.raises(ImageError, match="empty"):
        load_image(b"", 16, max_pixels=10_000)
    assert png_data_url(img).startswith("data:image/png;base64,")


def test_full_block_rank_is_exact_and_half_is_not():
    img = builtin_image("hopper", 64)
    half, full = compress(img, 4), compress(img, 8)
    assert half.params == half.dense_params and half.svd_error > 1e-3 and half.monarch_error > 1e-3
    assert full.params == 2 * full.dense_params
    assert full.svd_error == 0.0 and full.monarch_error == 0.0
    np.testing.assert_allclose(full.svd_image, img, atol=1e-10)
    np.testing.assert_allclose(full.monarch_image, img, atol=1e-10)
