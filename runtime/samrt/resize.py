"""Pillow resizing of large RGB images, split across threads with bit-identical results.

Pillow resamples separably: a horizontal pass into an 8-bit intermediate, then a vertical pass.
Running the two passes as two ``resize`` calls gives the same bytes as one call, and each pass
splits exactly — the horizontal pass by rows, the vertical pass by columns — because a pass only
mixes pixels along its own axis. Pillow releases the GIL while it resamples, so the strips run in
parallel. NEAREST (not separable in Pillow) and small resizes take the plain single call.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image

from .parallel import parallel_map, split_range, worker_count

__all__ = ["resize_rgb"]

# Below this many source + resized pixels, thread hand-off costs more than it saves. The work
# follows the resized size too, so even a 200 x 200 image resized to 1024 x 1024 gains
# (measured on 2 cores: 5.9 -> 4.4 ms; 640 x 480: 6.0 -> 4.1 ms).
_PARALLEL_MIN_PIXELS = 250_000


def resize_rgb(
    image: Image.Image,
    size: tuple[int, int],
    resample: int,
    consume: Callable[[int, Image.Image], None],
) -> None:
    """Resize ``image`` to ``size`` = (width, height) and hand the result to ``consume(x0, strip)``
    as column strips that together form exactly ``image.resize(size, resample)``; ``consume`` runs
    on the worker threads, once per strip."""
    width, height = size
    parts = worker_count()
    if (parts == 1 or resample == Image.Resampling.NEAREST
            or image.width * image.height + width * height < _PARALLEL_MIN_PIXELS):
        consume(0, image.resize(size, resample=resample) if size != image.size else image)
        return
    if width != image.width:
        rows = split_range(image.height, parts)
        strips = parallel_map(
            lambda yy: image.crop((0, yy[0], image.width, yy[1])).resize((width, yy[1] - yy[0]), resample=resample),
            rows,
        )
        horizontal = Image.new("RGB", (width, image.height))
        for (y0, _), strip in zip(rows, strips, strict=True):
            horizontal.paste(strip, (0, y0))
    else:
        horizontal = image

    def vertical(xx: tuple[int, int]) -> None:
        strip = horizontal.crop((xx[0], 0, xx[1], horizontal.height))
        consume(xx[0], strip.resize((xx[1] - xx[0], height), resample=resample) if height != image.height else strip)

    parallel_map(vertical, split_range(width, parts))
