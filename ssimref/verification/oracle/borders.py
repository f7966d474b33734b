"""Padding and downsampling as other SSIM implementations do them, written as index loops.

Images are nested lists ``[row][col][channel]``. Padding reads, for every position of the
padded image, the source pixel NumPy's ``np.pad`` would read (:func:`source_index`);
downsampling averages blocks the way Wang's ``ssim.m`` (box filter with symmetric borders,
then every ``f``-th pixel) or piq (``avg_pool2d``: disjoint blocks, remainder dropped)
does. See :mod:`ssimref.verification.conventions` for the knobs these serve.
"""

from __future__ import annotations

__all__ = ["source_index", "pad_image", "downsample_image"]


def source_index(i, n, mode):
    """Index into an axis of length ``n`` that position ``i`` (possibly outside 0..n-1) of
    a padded axis reads, or ``None`` for a zero ("constant") pixel. NumPy's np.pad modes."""
    if 0 <= i < n:
        return i
    if mode == "constant":
        return None
    if mode == "edge":
        return 0 if i < 0 else n - 1
    if mode == "reflect":  # d c b | a b c d | c b a: the edge pixel is not repeated
        period = 2 * (n - 1)
        if period == 0:
            return 0
        i = i % period
        return i if i < n else period - i
    if mode == "symmetric":  # c b a | a b c d | d c b: the edge pixel is repeated
        period = 2 * n
        i = i % period
        return i if i < n else period - 1 - i
    raise ValueError(f"unknown padding mode {mode!r}")


def pad_image(img, pad, mode, zero=0):
    """Pad a nested-list image ``[row][col][channel]`` by ``pad`` pixels on every side."""
    height, width = len(img), len(img[0])
    channels = len(img[0][0])
    out = []
    for i in range(-pad, height + pad):
        si = source_index(i, height, mode)
        row = []
        for j in range(-pad, width + pad):
            sj = source_index(j, width, mode)
            if si is None or sj is None:
                row.append([zero] * channels)
            else:
                row.append(list(img[si][sj]))
        out.append(row)
    return out


def downsample_image(img, method, factor):
    """Downsample a nested-list image by ``factor`` as ``method`` ("ssim.m" or "avgpool")
    does (see :mod:`ssimref.verification.conventions`)."""
    if factor == 1:
        return img
    height, width, channels = len(img), len(img[0]), len(img[0][0])
    f2 = factor * factor
    if method == "avgpool":
        return [[[sum(img[r * factor + a][c * factor + b][ch]
                      for a in range(factor) for b in range(factor)) / f2
                  for ch in range(channels)]
                 for c in range(width // factor)]
                for r in range(height // factor)]
    if method == "ssim.m":
        # imfilter(img, ones(f)/f^2, 'symmetric', 'same') correlates with the kernel's
        # centre at 1-based index floor((f + 1) / 2), so output pixel i averages input
        # pixels i - lead .. i - lead + f - 1 with lead = floor((f - 1) / 2); then
        # img(1:f:end, 1:f:end) keeps every f-th pixel from the first.
        lead = (factor - 1) // 2
        out = []
        for r in range(0, height, factor):
            row = []
            for c in range(0, width, factor):
                pixel = []
                for ch in range(channels):
                    total = 0
                    for a in range(factor):
                        for b in range(factor):
                            sr = source_index(r - lead + a, height, "symmetric")
                            sc = source_index(c - lead + b, width, "symmetric")
                            total = total + img[sr][sc][ch]
                    pixel.append(total / f2)
                row.append(pixel)
            out.append(row)
        return out
    raise ValueError(f"unknown downsampling method {method!r}")
