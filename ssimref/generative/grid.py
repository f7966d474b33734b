"""PNG grids of small grayscale images, written with Pillow (no matplotlib needed)."""

from __future__ import annotations

import math

import numpy as np

from ..backend import to_numpy
from ..io import atomic_path

__all__ = ["grid_image", "save_grid", "save_panels"]


def grid_image(images, ncols=None, scale=4, pad=1, background=0.5):
    """Tile ``images`` ``(n, H, W)`` with values in [0, 1] into one uint8 array.

    Rows are filled left to right; ``ncols`` defaults to ``ceil(sqrt(n))``. Each pixel is
    repeated ``scale`` times along both axes (nearest neighbour); ``pad`` pixels of
    ``background`` separate the tiles. Values outside [0, 1] are clipped.
    """
    images = np.clip(np.asarray(to_numpy(images), dtype=np.float64), 0.0, 1.0)
    if images.ndim != 3 or images.shape[0] == 0:
        raise ValueError(f"images must be a non-empty stack (n, H, W), got {images.shape}")
    n, h, w = images.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    canvas = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad), background)
    for k in range(n):
        r, c = divmod(k, ncols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        canvas[top:top + h, left:left + w] = images[k]
    canvas = np.kron(canvas, np.ones((scale, scale)))
    return np.round(canvas * 255.0).astype(np.uint8)


def save_grid(path, images, ncols=None, scale=4, force=False):
    """Write :func:`grid_image` of ``images`` as a PNG, atomically."""
    from PIL import Image

    array = grid_image(images, ncols=ncols, scale=scale)
    with atomic_path(path, force) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def save_panels(path, panels, columns=None, force=False, gap=12):
    """Write grids side by side with a title above each, ``columns`` per row (all in one
    row when None): ``panels`` is a list of ``(title, uint8 array)`` from
    :func:`grid_image`. Uses Pillow's built-in font."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    title_h = 16
    columns = columns or len(panels)
    rows = [panels[i:i + columns] for i in range(0, len(panels), columns)]
    cell_h = max(a.shape[0] for _, a in panels) + title_h + gap
    cell_w = max(a.shape[1] for _, a in panels) + gap
    canvas = Image.new("L", (columns * cell_w + gap, len(rows) * cell_h + gap), color=255)
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        for c, (title, array) in enumerate(row):
            left, top = gap + c * cell_w, gap + r * cell_h
            draw.text((left, top), title, fill=0, font=font)
            canvas.paste(Image.fromarray(array), (left, top + title_h))
    with atomic_path(path, force) as tmp:
        canvas.save(tmp, format="PNG")
