"""Decode and normalise user images to uint8 RGB arrays [H, W, 3].

What each input becomes:
  * ``str`` / ``Path``: opened with Pillow, EXIF orientation applied, then as a PIL image.
  * PIL image: modes RGB, RGBA, LA, L, P, CMYK, YCbCr, ... -> ``convert("RGB")`` (alpha is
    dropped, not composited: transformers does the same); ``I;16`` / ``I`` (16/32-bit
    integers) -> scaled to 0..255 by their type's range (``I`` assumed 16-bit data, clipped);
    ``F`` -> taken as [0, 1] and scaled by 255.
  * numpy arrays, [H, W], [H, W, 1], [H, W, 3] or [H, W, 4] (4th channel dropped):
    uint8 as is; uint16 scaled by 255/65535; bool as 0/255; float taken as [0, 1] (values
    outside are clipped), scaled by 255. Other dtypes are refused.
Scaling rounds to the nearest integer. Refused with :class:`InvalidInputError`: empty images, a
0-sized axis, NaN / inf pixels, other channel counts, images over Pillow's decompression-bomb
limit (checked from the header, before decoding).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from .errors import InvalidInputError

__all__ = ["to_rgb_uint8", "to_rgb_image", "max_image_pixels"]


def max_image_pixels() -> int:
    """Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``; 0/None disables it)."""
    return Image.MAX_IMAGE_PIXELS or 0


def to_rgb_uint8(image: Any, *, argument: str = "images") -> np.ndarray:
    """Any supported image -> C-contiguous uint8 [H, W, 3]."""
    if isinstance(image, (str, os.PathLike)):
        image = _open_path(Path(image), argument)
    if isinstance(image, Image.Image):
        return _from_pil(image, argument)
    if isinstance(image, np.ndarray):
        return _from_array(image, argument)
    raise InvalidInputError(argument, type(image).__name__, "a PIL image, a numpy array or a file path")


def to_rgb_image(image: Any, *, argument: str = "images") -> Image.Image:
    """Any supported image -> a PIL image in mode RGB (no pixel copy for an RGB PIL image).

    Preprocessing resizes this directly: converting a large PIL image to NumPy costs more than
    resizing it. Images that need NumPy scaling (16/32-bit, float, arrays) go through
    :func:`to_rgb_uint8`."""
    if isinstance(image, (str, os.PathLike)):
        image = _open_path(Path(image), argument)
    if isinstance(image, Image.Image) and image.mode not in (*_INTEGER_MODES, "F"):
        _check_pixels(image.height, image.width, argument)
        _load(image, argument)
        return image if image.mode == "RGB" else image.convert("RGB")
    return Image.fromarray(to_rgb_uint8(image, argument=argument))


_INTEGER_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _check_pixels(height: int, width: int, argument: str) -> None:
    if height <= 0 or width <= 0:
        raise InvalidInputError(argument, (height, width), "an image with both sides >= 1 pixel")
    limit = max_image_pixels()
    if limit and height * width > 2 * limit:
        raise InvalidInputError(
            argument, (height, width),
            f"at most {2 * limit} pixels (Pillow's decompression-bomb limit, Image.MAX_IMAGE_PIXELS)",
        )


def _open_path(path: Path, argument: str) -> Image.Image:
    if path.exists() and not path.is_file():  # a FIFO, a device or a directory: open() could block forever
        raise InvalidInputError(argument, str(path), "a regular image file (not a directory, FIFO or device)")
    try:
        image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise InvalidInputError(argument, str(path), f"an image under Pillow's size limit ({exc})") from exc
    except (OSError, ValueError) as exc:
        raise InvalidInputError(argument, str(path), f"a readable image file ({exc})") from exc
    _check_pixels(image.height, image.width, argument)
    try:
        image.load()
        return ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidInputError(argument, str(path), f"a decodable image file ({exc})") from exc


def _load(image: Image.Image, argument: str) -> None:
    """Decode a lazily opened PIL image now, once, on this thread: later steps read it from
    several threads at once, and a lazy image decodes its file on each first access."""
    try:
        image.load()
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InvalidInputError(argument, type(image).__name__, f"a decodable image ({exc})") from exc


def _from_pil(image: Image.Image, argument: str) -> np.ndarray:
    _check_pixels(image.height, image.width, argument)
    _load(image, argument)
    if image.mode in _INTEGER_MODES:
        data = np.asarray(image.convert("I"), dtype=np.float64)
        return _scaled(np.clip(data, 0, 65535) * (255.0 / 65535.0), argument)
    if image.mode == "F":
        return _from_array(np.asarray(image, dtype=np.float32), argument)
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def _scaled(values: np.ndarray, argument: str) -> np.ndarray:
    if not np.isfinite(values).all():
        raise InvalidInputError(argument, "NaN/inf pixels", "finite pixel values")
    gray = np.rint(values).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2)) if gray.ndim == 2 else gray


def _from_array(array: np.ndarray, argument: str) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        channels = array.shape[2]
    elif array.ndim == 2:
        channels = 0
    else:
        raise InvalidInputError(argument, f"array of shape {array.shape}",
                                "[H, W], [H, W, 1], [H, W, 3] or [H, W, 4]")
    _check_pixels(array.shape[0], array.shape[1], argument)
    if channels == 4:
        array = array[:, :, :3]
    elif channels == 1:
        array = array[:, :, 0]
    if array.dtype == np.uint8:
        out = array
    elif array.dtype == np.bool_:
        out = array.astype(np.uint8) * 255
    elif array.dtype == np.uint16:
        out = np.rint(array.astype(np.float32) * (255.0 / 65535.0)).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise InvalidInputError(argument, "NaN/inf pixels", "finite pixel values")
        out = np.rint(np.clip(array.astype(np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
    else:
        raise InvalidInputError(argument, f"array of dtype {array.dtype}", "uint8, uint16, bool or float pixels")
    if out.ndim == 2:
        out = np.repeat(out[:, :, None], 3, axis=2)
    return np.ascontiguousarray(out)
