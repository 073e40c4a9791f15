"""Draw the extension's icons (extension/icons/icon{16,32,48,128}.png) deterministically.

A blue rounded square with a white paper sheet and an orange arrow ("redirect"). Each size is drawn
at 8x and downsampled, so small sizes stay smooth. Run: .venv/bin/python scripts/make_extension_icons.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

SIZES = (16, 32, 48, 128)
BLUE = (47, 111, 179, 255)
WHITE = (255, 255, 255, 255)
ORANGE = (245, 158, 11, 255)
SCALE = 8


def draw_icon(size: int) -> Image.Image:
    big = size * SCALE
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    u = big / 16  # one unit of a 16-unit grid
    d.rounded_rectangle([0, 0, big - 1, big - 1], radius=3 * u, fill=BLUE)
    # paper sheet with a folded corner
    left, top, right, bottom, fold = 3.5 * u, 2.5 * u, 11 * u, 13.5 * u, 2.5 * u
    d.polygon([(left, top), (right - fold, top), (right, top + fold), (right, bottom), (left, bottom)], fill=WHITE)
    d.polygon([(right - fold, top), (right - fold, top + fold), (right, top + fold)], fill=(200, 214, 232, 255))
    # text lines on the sheet (only where they stay visible)
    if size >= 32:
        for i in range(3):
            y = top + (4 + 2 * i) * u
            d.rectangle([left + 1.2 * u, y, right - 1.6 * u - (i == 2) * 2 * u, y + 0.6 * u], fill=(160, 182, 210, 255))
    # arrow pointing right, overlapping the sheet's lower right
    cy, x0, x1 = 10.8 * u, 6.5 * u, 14.6 * u
    d.rectangle([x0, cy - 1.2 * u, x1 - 2.8 * u, cy + 1.2 * u], fill=ORANGE)
    d.polygon([(x1 - 3.4 * u, cy - 3 * u), (x1, cy), (x1 - 3.4 * u, cy + 3 * u)], fill=ORANGE)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "extension" / "icons")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for size in SIZES:
        path = args.out / f"icon{size}.png"
        draw_icon(size).save(path, format="PNG", optimize=True)
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
